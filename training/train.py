"""One training run as named steps: load, sample, derive and audit, split, fill, model, score, write.

Artifacts go to `<output_dir>/<run_id>/`: model.keras, metrics.json, report.md, run.json and the plots
(confusion_matrix.png, history.png, reliability.png, importance.png). With `backup_dir`, Keras
BackupAndRestore checkpoints every epoch there and a later call with the same directory (and config)
resumes; with `stop_event`, training stops after the current batch and TrainingInterrupted is raised
without writing artifacts.
"""
from __future__ import annotations

import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import pyarrow as pa

from training import precision, run_record
from training.baselines import pop_search_records
from training.cloud.core.layout import RUN_ID_PATTERN
from training.data import GRADES, LoadedData
from training.data.cache_dir import using_cache
from training.data.sources import describe_files
from training.data_audit import audit_features, load_for_training
from training.errors import ConfigError, DataError
from training.features import (
    FALLBACK_VALUE,
    MISSING_CATEGORY,
    FeatureSet,
    FillValues,
    add_derived_features,
    fit_fill_values,
    get_feature_set,
    raw_columns_for,
)
from training.fitting import fit, predict_proba
from training.metrics import grade_labels
from training.model import ModelConfig, build_model
from training.plots import plot_subject, write_run_plots
from training.report import write_report
from training.scoring import score_run
from training.splits import split_rows, stratified_sample, time_split
from training.train_callbacks import (
    HISTORY_FILE,
    TENSORBOARD_DIR,
    EpochProgress,
    TrainingInterrupted,
    fit_callbacks,
    write_tensorboard_image,
)

DEFAULT_SYNTHETIC_ROWS = 30_000
MIN_ROWS = 20
IMPORTANCE_BATCH_ROWS = 8192  # rows per model call when the permutation importance predicts


@dataclass
class TrainConfig:
    data: list[str] | None = None      # None: the built-in synthetic sample
    sample: int | None = None
    features: str = "application"
    epochs: int = 30
    batch_size: int = 256
    patience: int = 5
    seed: int = 42
    output_dir: Path = Path("outputs")
    run_id: str | None = None
    class_weights: bool = False
    max_bad_rows: float = 0.01
    model: ModelConfig = field(default_factory=ModelConfig)
    split: str = "random"              # "time": train on older issue_d, test on the newest 20% (splits.time_split)
    precision: str = "float32"         # a Keras policy, or "auto" (training.precision); fill, normalisation
                                       # and output stay float32, and the saved model is float32
    strategy: str | None = None        # "mirrored": tf.distribute.MirroredStrategy over every visible GPU
    baselines: bool = True             # False (--no-baselines): metrics.json without a baselines block
    tuned_peer: bool = True            # False: the baselines leave out hist_gradient_boosting_tuned (its search)
    preset: str | None = None          # the training.presets name these settings came from (the CLI's), and why
    preset_why: str | None = None
    cache_dir: Path | None = None      # the parsed-data cache (training.data.cache); None: read without it


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    run_info: dict
    epochs_trained: int


STRATEGIES = (None, "mirrored")


@contextmanager
def device_settings(config: TrainConfig):
    """The precision policy and distribution strategy of one run; yields (policy, why it was chosen)
    (``training.precision.resolve``); the global policy is restored after.

    Nothing here is CPU- or GPU-specific: the same code runs on a laptop and on a multi-GPU instance
    (MirroredStrategy replicates the model on every visible GPU, or runs on the CPU where there is none).
    """
    previous = keras.mixed_precision.global_policy()
    chosen = precision.resolve(config.precision)
    keras.mixed_precision.set_global_policy(chosen[0])
    try:
        if config.strategy == "mirrored":
            import tensorflow as tf

            with tf.distribute.MirroredStrategy().scope():
                yield chosen
        else:
            yield chosen
    finally:
        keras.mixed_precision.set_global_policy(previous)


def new_run_id() -> str:
    """UTC timestamp plus a short random suffix, e.g. 20250101T120000Z-3f9a1c."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def validate_config(config: TrainConfig) -> None:
    """ConfigError naming the first bad setting."""
    checks = [
        (config.epochs >= 1, f"epochs must be at least 1, got {config.epochs}"),
        (config.batch_size >= 1, f"batch size must be at least 1, got {config.batch_size}"),
        (config.patience >= 0, f"patience must be 0 or more, got {config.patience}"),
        (config.sample is None or config.sample >= MIN_ROWS,
         f"sample must be at least {MIN_ROWS} rows, got {config.sample}"),
        (0 <= config.max_bad_rows <= 1, f"max bad rows must be a fraction in [0, 1], got {config.max_bad_rows}"),
        (len(config.model.hidden_units) >= 1 and all(u >= 1 for u in config.model.hidden_units),
         f"hidden units must be one or more positive sizes, got {config.model.hidden_units}"),
        (0 <= config.model.dropout < 1, f"dropout must be in [0, 1), got {config.model.dropout}"),
        (config.model.learning_rate > 0, f"learning rate must be positive, got {config.model.learning_rate}"),
        (config.model.max_norm > 0, f"max norm must be positive, got {config.model.max_norm}"),
        (config.run_id is None or RUN_ID_PATTERN.fullmatch(config.run_id) is not None,
         f"run id {config.run_id!r} must match {RUN_ID_PATTERN.pattern}"),
    ]
    # model-quality settings (training.splits, training.encoders)
    checks += [
        (config.split in ("random", "time"), f"split must be 'random' or 'time', got {config.split!r}"),
        (config.strategy in STRATEGIES,
         f"strategy must be one of {sorted(map(str, STRATEGIES))}, got {config.strategy!r}"),
        (config.precision in precision.CHOICES,
         f"precision must be one of {', '.join(precision.CHOICES)}, got {config.precision!r}"),
        (config.model.lr_schedule in ("constant", "plateau"),
         f"lr schedule must be 'constant' or 'plateau', got {config.model.lr_schedule!r}"),
        (config.model.quantile_bins >= 0, f"quantile bins must be 0 or more, got {config.model.quantile_bins}"),
        (config.model.bin_encoding in ("one_hot", "piecewise_linear"),
         f"bin encoding must be 'one_hot' or 'piecewise_linear', got {config.model.bin_encoding!r}"),
        (config.model.ensemble >= 1, f"ensemble must be 1 or more networks, got {config.model.ensemble}"),
        (config.model.weight_decay >= 0, f"weight decay must be 0 or more, got {config.model.weight_decay}"),
        (0 <= config.model.ema_momentum < 1,
         f"EMA momentum must be at least 0 (0: no weight averages) and below 1, got {config.model.ema_momentum}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if config.data is not None and not config.data:
        raise ConfigError("data: give at least one file, glob or s3:// URI (or none for the synthetic sample)")


def class_weight_for(labels: np.ndarray) -> dict[int, float]:
    """Balanced class weights (scikit-learn) for the grades present, 1.0 for absent ones."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    result = {i: 1.0 for i in range(len(GRADES))}
    result.update({int(c): float(w) for c, w in zip(present, weights)})
    return result


def train(config: TrainConfig, *, callbacks: Sequence[keras.callbacks.Callback] = (),
          backup_dir: Path | None = None, stop_event: threading.Event | None = None,
          log: Callable[[str], None] = print) -> TrainResult:
    """Run one training run and write its artifacts (see the module docstring)."""
    validate_config(config)
    with device_settings(config) as (policy, why):
        return _train(config, callbacks=callbacks, backup_dir=backup_dir, stop_event=stop_event, log=log,
                      policy=policy, policy_why=why)


@dataclass
class _Rows:
    """The split: frames and grade indices of the train, validation and test rows."""
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray


@dataclass
class _Fitted:
    """The model step's result: the model saved as model.keras and its probabilities."""
    model: keras.Model
    val_probs: np.ndarray
    test_probs: np.ndarray
    predict_proba: Callable[[pd.DataFrame], np.ndarray]


def _train(config: TrainConfig, *, callbacks: Sequence[keras.callbacks.Callback],
           backup_dir: Path | None, stop_event: threading.Event | None,
           log: Callable[[str], None], policy: str, policy_why: str) -> TrainResult:
    """The run's steps in order (see ``train``); ``policy``: the dtype policy in force, and why."""
    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    if config.preset:
        log(f"preset: {config.preset} ({config.preset_why})")
    if config.precision != "float32":
        log(f"precision: {policy} ({policy_why}); the saved model computes in float32")
    feature_set = get_feature_set(config.features)
    run_id = config.run_id or new_run_id()
    run_dir = Path(config.output_dir) / run_id
    keras.utils.set_random_seed(config.seed)

    loaded = _load(config, feature_set, run_dir, log)
    frame, labels = _sample(loaded.frame, config, log)
    loaded.frame = loaded.frame.iloc[:0]   # the rows live on in `frame` only
    frame = add_derived_features(frame)
    audit = audit_features(frame, feature_set, seed=config.seed, log=log)  # ConfigError: leaks in application
    rows = _split(frame, labels, config, log)
    fill, values_filled = _fill(rows.train, frame, feature_set, log)
    rows_used = len(frame)
    del frame   # from here the split's frames hold the rows: one copy of them in memory, not two
    pa.default_memory_pool().release_unused()   # the parsed columns that arrow's pool held go back to the OS

    progress = EpochProgress(log, config.epochs, Path(backup_dir) / HISTORY_FILE if backup_dir else None)
    fit_list = fit_callbacks(progress, patience=config.patience, lr_schedule=config.model.lr_schedule,
                             weight_averages=config.model.ema_momentum > 0, backup_dir=backup_dir,
                             stop_event=stop_event, extra=callbacks, tensorboard_dir=run_dir / TENSORBOARD_DIR)
    if stop_event is not None and stop_event.is_set():
        raise TrainingInterrupted(0)
    fitted = _fit_and_predict(feature_set, fill, rows, config, fit_list, log)
    metrics = score_run(predict_proba=fitted.predict_proba, val_probs=fitted.val_probs,
                        test_probs=fitted.test_probs, train_frame=rows.train, y_train=rows.y_train,
                        val_frame=rows.validation, y_val=rows.y_val, test_frame=rows.test, y_test=rows.y_test,
                        feature_set=feature_set, fill=fill, seed=config.seed, log=log, baselines=config.baselines,
                        tuned_peer=config.tuned_peer)
    baseline_search = pop_search_records(metrics.get("baselines", {}))   # run.json's, not metrics.json's

    subject = plot_subject(run_id, None if config.data is None else [f.uri for f in loaded.files])
    _write_artifacts(run_dir, fitted, metrics, progress, rows.y_test, subject)
    run_info = run_record.run_info(
        run_id=run_id, config=config, feature_set=feature_set, loaded=loaded, rows_used=rows_used, fill=fill,
        values_filled=values_filled, audit=audit, history=progress.as_dict(), epochs_trained=progress.completed,
        best_epoch=progress.best_epoch(), started=started, started_at=started_at, baseline_search=baseline_search,
        precision={"policy": policy, "why": policy_why})
    run_record.write_json(run_info, run_dir / "run.json")
    write_report(run_dir, metrics, run_info)
    return TrainResult(run_dir=run_dir, metrics=metrics, run_info=run_info, epochs_trained=progress.completed)


def _load(config: TrainConfig, feature_set: FeatureSet, run_dir: Path, log: Callable[[str], None]) -> LoadedData:
    """The load step: of ``config.data`` (or the built-in synthetic sample, written into the run directory)
    the grade, the features' raw columns (issue_d for the time split) and the audit's columns."""
    if config.data is None:
        from training import synthetic

        rows = config.sample or DEFAULT_SYNTHETIC_ROWS
        data = [str(synthetic.write_raw_csv(run_dir / "data" / "synthetic.csv", rows, config.seed))]
        log(f"data: built-in synthetic sample, {rows} rows written to {data[0]} (not real loans)")
    else:
        data = [str(config.data)] if isinstance(config.data, (str, Path)) else [str(d) for d in config.data]
    columns = list(dict.fromkeys(["grade", *raw_columns_for(feature_set.columns),
                                  *(["issue_d"] if config.split == "time" else [])]))
    with using_cache(config.cache_dir if config.data is not None else None, log=log):   # the sample: written anew
        loaded = load_for_training(data if len(data) > 1 else data[0], columns, max_bad_rows=config.max_bad_rows,
                                   log=log)
    log(f"read {loaded.rows_read:,} rows from {describe_files([f.uri for f in loaded.files])}")
    if loaded.dropped:
        log(run_record.dropped_line(loaded.dropped))
    if len(loaded.frame) < MIN_ROWS:
        raise DataError(f"{', '.join(data)}: only {len(loaded.frame)} usable labelled rows; need at least {MIN_ROWS}")
    return loaded


def _sample(frame: pd.DataFrame, config: TrainConfig,
            log: Callable[[str], None]) -> tuple[pd.DataFrame, np.ndarray]:
    """The sample step: (rows, grade indices), a stratified sample of ``config.sample`` rows where asked."""
    labels = grade_labels(frame)
    if config.sample is not None and config.sample < len(frame):
        frame = stratified_sample(frame, labels, config.sample, config.seed)
        log(f"stratified sample: {len(frame)} rows (seed {config.seed})")
        return frame, grade_labels(frame)
    if config.sample is not None and config.sample > len(frame):
        log(f"sample {config.sample} is more than the {len(frame)} usable rows: using them all")
    return frame, labels


def _split(frame: pd.DataFrame, labels: np.ndarray, config: TrainConfig, log: Callable[[str], None]) -> _Rows:
    """The split step: stratified at random, or the newest rows as test rows (``config.split`` "time")."""
    if config.split == "time":
        train_pos, val_pos, test_pos = time_split(frame["issue_d"], labels, config.seed)
        log(f"time split: test rows issued {frame['issue_d'].iloc[test_pos].min():%Y-%m} or later")
    else:
        train_pos, val_pos, test_pos = split_rows(labels, config.seed)
    log(f"split: {len(train_pos)} train, {len(val_pos)} validation, {len(test_pos)} test rows")
    return _Rows(frame.iloc[train_pos], frame.iloc[val_pos], frame.iloc[test_pos],
                 labels[train_pos], labels[val_pos], labels[test_pos])


def _fill(train_frame: pd.DataFrame, frame: pd.DataFrame, feature_set: FeatureSet,
          log: Callable[[str], None]) -> tuple[FillValues, dict[str, int]]:
    """The fill step: fill values fitted on the train rows, and the missing values per column of all rows."""
    fill = fit_fill_values(train_frame, feature_set)
    values_filled = _values_filled(frame, feature_set.columns)
    if fill.empty:
        log(f"warning: {len(fill.empty)} feature columns are entirely empty in the training split, filled with "
            f"{FALLBACK_VALUE} or {MISSING_CATEGORY!r} (nothing to learn from); listed in run.json "
            f"(fill.empty_columns)")
    partly = sorted(((n, c) for c, n in values_filled.items() if c not in fill.empty),
                    key=lambda nc: (-nc[0], nc[1]))
    if partly:
        most = ", ".join(f"{c} {n:,}" for n, c in partly[:3])
        log(f"missing values filled in {len(partly)} {'more ' if fill.empty else ''}feature columns "
            f"({sum(n for n, _ in partly):,} values; most: {most}); per column in run.json (fill.values_filled)")
    return fill, values_filled


def _values_filled(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, int]:
    """Missing (or non-finite) values per feature column: the model fills these (numeric) or maps them
    to "missing" (categorical)."""
    counts = {}
    for col in columns:
        values = frame[col]
        missing = values.isna()
        if pd.api.types.is_numeric_dtype(values):
            missing |= ~np.isfinite(values.astype(float).fillna(0.0))
        if int(missing.sum()):
            counts[col] = int(missing.sum())
    return counts


def _fit_and_predict(feature_set: FeatureSet, fill: FillValues, rows: _Rows, config: TrainConfig,
                     callbacks: list[keras.callbacks.Callback], log: Callable[[str], None]) -> _Fitted:
    """The model step: build, fit on the train rows (``callbacks``: early stopping on the validation rows),
    and the probabilities of the validation and test rows."""
    built = build_model(feature_set, rows.train, fill, config.model, batch_size=config.batch_size)
    class_weight = class_weight_for(rows.y_train) if config.class_weights else None
    fit(built, train_frame=rows.train, y_train=rows.y_train, val_frame=rows.validation, y_val=rows.y_val,
        batch_size=config.batch_size, epochs=config.epochs, seed=config.seed, strategy=config.strategy,
        class_weight=class_weight, callbacks=callbacks, log=log)
    precision.to_float32([m for m in (built.inference, built.feature_model, built.preprocess, built.head,
                                      built.members) if m is not None])
    model = built.feature_model   # on the feature set's columns, as the rows hold them (derived ones included)
    return _Fitted(built.inference, predict_proba(model, rows.validation, batch_size=config.batch_size),
                   predict_proba(model, rows.test, batch_size=config.batch_size),
                   lambda frame: predict_proba(model, frame, batch_size=IMPORTANCE_BATCH_ROWS))


def _write_artifacts(run_dir: Path, fitted: _Fitted, metrics: dict, progress: EpochProgress,
                     y_test: np.ndarray, subject: str) -> None:
    """The write step (before run.json and report.md): model.keras, metrics.json, the plots (``subject``,
    ``plots.plot_subject``, in their titles) and the confusion matrix as a TensorBoard image."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp_model = run_dir / "model.tmp.keras"
    fitted.model.save(tmp_model)
    tmp_model.replace(run_dir / "model.keras")
    run_record.write_json(metrics, run_dir / "metrics.json")
    write_run_plots(run_dir, metrics=metrics, history=progress.as_dict(), best_epoch=progress.best_epoch(),
                    test_probs=fitted.test_probs, y_test=y_test, subject=subject)
    write_tensorboard_image(run_dir / TENSORBOARD_DIR, run_dir / "confusion_matrix.png",
                            tag="confusion_matrix", step=progress.completed)


def summary_lines(result: TrainResult) -> list[str]:
    """Where the artifacts are and the headline test metrics against the majority-class baseline (if computed)."""
    test, base = result.metrics["test"], result.metrics.get("baselines", {}).get("majority")
    run_dir = Path(result.run_dir)
    artifacts = ", ".join(sorted(p.name for p in run_dir.iterdir() if p.is_file()))
    lines = [f"artifacts: {run_dir}/ ({artifacts}; TensorBoard logs in {TENSORBOARD_DIR}/: "
             f"tensorboard --logdir {run_dir.parent})",
             f"trained {result.epochs_trained} epoch{'s' if result.epochs_trained != 1 else ''} on "
             f"{result.metrics['rows']['train']} rows "
             f"(run took {result.run_info['wall_time_s']:.1f}s); held-out test rows: "
             f"{result.metrics['rows']['test']}",
             f"test accuracy {test['accuracy']:.4f} | weighted F1 {test['weighted_f1']:.4f} | "
             f"macro F1 {test['macro_f1']:.4f}"]
    if base:
        lines.append(f"majority-class baseline: accuracy {base['accuracy']:.4f} | weighted F1 "
                     f"{base['weighted_f1']:.4f} | macro F1 {base['macro_f1']:.4f}")
    if result.run_info.get("synthetic"):
        lines.append("note: synthetic data (not real loans); pass --data to train on Lending Club files")
    return lines
