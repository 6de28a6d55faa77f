"""The leakage audit (training.audit) applied to data: a training run's load and audit steps and the `audit`
command.

Both load the audit's rate columns (int_rate, installment, loan_amnt, term) besides the features where the
files have them (``load_with_audit_columns``) and log what the audit found. A training run's load
(``load_for_training``) takes the union of the files' columns and drops loans repeated across files.
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from training.audit import AUDIT_EXTRA_COLUMNS, assert_no_leaks, run_audit
from training.data import LoadedData, load_loans
from training.data.loading import drop_repeated_ids
from training.data.sources import short_names
from training.errors import DataError
from training.features import FeatureSet, add_derived_features, get_feature_set, raw_columns_for
from training.run_record import dropped_line


def audit_features(frame: pd.DataFrame, feature_set: FeatureSet, *, seed: int = 0,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the leakage audit; ConfigError for ``application`` when a feature is flagged (a) or (b)."""
    report = run_audit(frame, feature_set, seed=seed)
    log(f"leakage audit: {report['summary']}")
    rec = report["rate_reconstruction"]
    if rec.get("median_abs_error_pp") is not None:
        log(f"leakage audit: rate implied by installment/loan_amnt/term matches int_rate within "
            f"{rec['median_abs_error_pp']} pp (median), {rec['share_within_0_1pp']:.1%} of rows within 0.1 pp")
    assert_no_leaks(report, feature_set)
    return report


def load_with_audit_columns(data: Any, columns: list[str], *, max_bad_rows: float, **options: Any) -> LoadedData:
    """``load_loans`` of ``columns`` plus the audit's rate columns (int_rate, installment, loan_amnt, term)
    where the files have them; ``options``: load_loans' keyword arguments."""
    wanted = list(dict.fromkeys([*columns, *AUDIT_EXTRA_COLUMNS]))
    try:
        return load_loans(data, wanted, require_grade=True, max_bad_rows=max_bad_rows, **options)
    except DataError as exc:
        if "missing columns" not in str(exc):
            raise
    return load_loans(data, columns, require_grade=True, max_bad_rows=max_bad_rows, **options)


ERA_COLUMNS = ("id", "issue_d")   # read where present: repeated loans, per-year test metrics


def load_for_training(data: Any, columns: list[str], *, max_bad_rows: float,
                      log: Callable[[str], None] = print) -> LoadedData:
    """A training run's data: ``load_with_audit_columns`` over the union of the files' columns (a column some
    files lack is missing in their rows), plus ``id`` and ``issue_d`` where present; rows repeating an earlier
    row's ``id`` are dropped. One line each for absent columns and repeated loans."""
    loaded = load_with_audit_columns(data, columns, max_bad_rows=max_bad_rows, union_columns=True,
                                     optional=ERA_COLUMNS)
    absent = {c: uris for c, uris in loaded.filled.items() if c in columns}
    if absent:
        log(f"columns absent from some files, missing in their rows ({len(absent)}): "
            + "; ".join(f"{c} ({short_names(uris)})" for c, uris in absent.items()))
    if drop_repeated_ids(loaded):
        log(f"dropped {loaded.repeated_ids:,} rows whose id repeats an earlier row's (the same loan in several "
            f"files); run.json data.repeated_ids")
    return loaded


def audit_data(data: Any, feature_sets: list[str], *, max_bad_rows: float = 0.01, seed: int = 0,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """The leakage audit of each named feature set on a labelled data file (the `audit` command)."""
    sets = [get_feature_set(name) for name in feature_sets]
    columns = list(dict.fromkeys(["grade", *(c for fs in sets for c in raw_columns_for(fs.columns))]))
    loaded = load_with_audit_columns(data, columns, max_bad_rows=max_bad_rows)
    if loaded.dropped:
        log(dropped_line(loaded.dropped, "the --output report (dropped)"))
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
