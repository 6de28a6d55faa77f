"""Model-quality steps of a training run, called by ``training.train.train``:

- ``audit_features``: the leakage audit (recorded in run.json), refusing leaks for ``application``;
- ``time_split``: train on the older ``issue_d``, test on the newest rows;
- ``assess``: ordinal and calibration metrics, the baselines on the same rows, permutation importance,
  the reliability and importance plots, and ``report.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from training.errors import ConfigError, DataError

if TYPE_CHECKING:
    from training.features import FeatureSet, FillValues

TIME_TEST_FRACTION = 0.2


def audit_features(frame: pd.DataFrame, feature_set: FeatureSet, *, seed: int = 0,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the leakage audit; ConfigError for ``application`` when a feature is flagged (a) or (b)."""
    from training.audit import assert_no_leaks, run_audit

    report = run_audit(frame, feature_set, seed=seed)
    log(f"leakage audit: {report['summary']}")
    rec = report["rate_reconstruction"]
    if rec.get("median_abs_error_pp") is not None:
        log(f"leakage audit: rate implied by installment/loan_amnt/term matches int_rate within "
            f"{rec['median_abs_error_pp']} pp (median), {rec['share_within_0_1pp']:.1%} of rows within 0.1 pp")
    assert_no_leaks(report, feature_set)
    return report


def time_split(issue_d: pd.Series, labels: np.ndarray, seed: int, *, test_fraction: float = TIME_TEST_FRACTION,
               validation_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) row positions: test = the newest ``test_fraction`` of rows by ``issue_d``
    (ties broken by row order), validation = a stratified random part of the older rows."""
    from sklearn.model_selection import train_test_split

    dates = pd.to_datetime(issue_d, errors="coerce")
    if dates.isna().all():
        raise DataError("issue_d: no parseable issue dates, needed by --split time; use --split random")
    order = np.argsort(dates.fillna(dates.min()).to_numpy(), kind="stable")
    n_test = max(1, int(round(len(order) * test_fraction)))
    older, test = order[:-n_test], order[-n_test:]
    if len(older) < 2:
        raise ConfigError(f"--split time: only {len(older)} rows older than the test rows")
    counts = np.bincount(labels[older])
    stratify = labels[older] if counts[counts > 0].min() >= 2 else None
    size = validation_fraction / (1 - test_fraction)
    try:
        train, validation = train_test_split(older, test_size=size, random_state=seed, stratify=stratify)
    except ValueError:
        train, validation = train_test_split(older, test_size=size, random_state=seed)
    return np.sort(train), np.sort(validation), np.sort(test)


def assess(*, predict_proba: Callable[[pd.DataFrame], np.ndarray], test_probs: np.ndarray,
           val_probs: np.ndarray | None, metrics: dict[str, Any], train_frame: pd.DataFrame,
           y_train: np.ndarray, test_frame: pd.DataFrame, y_test: np.ndarray, y_val: np.ndarray | None,
           feature_set: FeatureSet, fill: FillValues, seed: int, run_dir: Path,
           log: Callable[[str], None] = print, importance_rows: int = 3000) -> dict[str, Any]:
    """Add extra metrics, baselines and permutation importance to ``metrics`` (in place) and write plots."""
    from training.baselines import fit_baselines, headline
    from training.calibration import plot_reliability
    from training.importance import permutation_importance, plot_importance
    from training.quality import extra_metrics

    metrics["test"].update(extra_metrics(y_test, test_probs))
    if val_probs is not None and y_val is not None and "validation" in metrics:
        metrics["validation"].update(extra_metrics(y_val, val_probs))
    metrics["baselines"] = fit_baselines(train_frame, y_train, test_frame, y_test, feature_set, fill, seed)
    for line in headline(metrics["test"], metrics["baselines"]):
        log(line)
    run_dir.mkdir(parents=True, exist_ok=True)
    plot_reliability(test_probs, y_test, run_dir / "reliability.png")
    ranked = permutation_importance(predict_proba, test_frame, y_test, list(feature_set.columns),
                                    n_repeats=1, max_rows=importance_rows, seed=seed)
    metrics["permutation_importance"] = ranked
    plot_importance(ranked, run_dir / "importance.png")
    return metrics


def load_with_audit_columns(data: Any, columns: list[str], *, max_bad_rows: float):
    """``load_loans`` of ``columns`` plus the audit's rate columns (int_rate, installment, loan_amnt, term)
    where the files have them; returns the LoadedData."""
    from training.audit import AUDIT_EXTRA_COLUMNS
    from training.data import load_loans

    wanted = list(dict.fromkeys([*columns, *AUDIT_EXTRA_COLUMNS]))
    try:
        return load_loans(data, wanted, require_grade=True, max_bad_rows=max_bad_rows)
    except DataError as exc:
        if "missing columns" not in str(exc):
            raise
    return load_loans(data, columns, require_grade=True, max_bad_rows=max_bad_rows)


def audit_data(data: Any, feature_sets: list[str], *, max_bad_rows: float = 0.01, seed: int = 0,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """The leakage audit of each named feature set on a labelled data file (the `audit` command)."""
    from training.audit import run_audit
    from training.features import add_derived_features, get_feature_set, raw_columns_for

    sets = [get_feature_set(name) for name in feature_sets]
    columns = list(dict.fromkeys(["grade", *(c for fs in sets for c in raw_columns_for(fs.columns))]))
    loaded = load_with_audit_columns(data, columns, max_bad_rows=max_bad_rows)
    for reason, count in loaded.dropped.items():
        log(f"dropped {count} rows: {reason}")
    frame = add_derived_features(loaded.frame)
    reports = {}
    for fs in sets:
        report = run_audit(frame, fs, seed=seed)
        reports[fs.name] = report
        log(report["summary"])
        for column, info in report["features"].items():
            acc = info["single_feature_accuracy"]
            flags = "; ".join(info["reasons"]) or "ok"
            log(f"  {column:28s} one-feature accuracy {acc if acc is not None else 'n/a'}  {flags}")
    rec = next(iter(reports.values()))["rate_reconstruction"] if reports else {}
    if rec.get("median_abs_error_pp") is not None:
        log(f"rate implied by installment, loan_amnt and term vs int_rate: median abs error "
            f"{rec['median_abs_error_pp']} pp, {rec['share_within_0_1pp']:.1%} of rows within 0.1 pp")
    return {"data": [f.uri for f in loaded.files], "rows": len(frame), "dropped": dict(loaded.dropped),
            "feature_sets": reports}


def keras_predict_proba(model, columns: list[str], categorical: list[str], *,
                        batch_size: int = 8192) -> Callable[[pd.DataFrame], np.ndarray]:
    """``frame -> (rows, 7)`` probabilities by calling the model directly on tensors, in batches
    (much faster than ``model.predict`` for the many small calls of permutation importance)."""
    import tensorflow as tf

    from training.model import frame_to_inputs

    def predict_proba(frame: pd.DataFrame) -> np.ndarray:
        out = []
        for start in range(0, len(frame), batch_size):
            inputs = frame_to_inputs(frame.iloc[start:start + batch_size], columns, categorical)
            out.append(np.asarray(model({k: tf.constant(v) for k, v in inputs.items()}, training=False)))
        return np.concatenate(out) if out else np.zeros((0, 7))

    return predict_proba
