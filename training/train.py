"""One training run: load, split (stratified, fixed seed), fit with early stopping, evaluate, write artifacts.

Artifacts go to `<output_dir>/<run_id>/`: model.keras, metrics.json, confusion_matrix.png, history.png,
run.json. With `backup_dir`, Keras BackupAndRestore checkpoints every epoch there and a later call with
the same directory (and config) resumes; with `stop_event`, training stops after the current batch and
TrainingInterrupted is raised without writing artifacts.
"""
from __future__ import annotations

import json
import platform
import re
import secrets
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd

from training.errors import ConfigError, DataError
from training.evaluate import (GRADES, compute_metrics, majority_baseline, plot_confusion_matrix, plot_history,
                               write_json)
from training.assess import assess, audit_features, keras_predict_proba, load_with_audit_columns, time_split
from training.model import (HEAD_BATCHES_PER_ELEMENT, ModelConfig, build_model, gathered_dataset, make_dataset,
                            split_preprocessing)
from training.report import write_report

DEFAULT_SYNTHETIC_ROWS = 30_000
TEST_FRACTION = 0.15
VALIDATION_FRACTION = 0.15
MIN_ROWS = 20
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
HISTORY_FILE = "spotgrade_history.json"
SYNTHETIC_NOTE = ("Trained on the built-in SYNTHETIC sample (training.synthetic): Lending-Club-shaped rows "
                  "generated on the fly, not real loans; its metrics say nothing about real data.")
_VERSIONED_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "pyarrow", "scikit-learn",
                       "matplotlib", "boto3")


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
    split: str = "random"              # "time": train on older issue_d, test on the newest 20% (assess.time_split)
    mixed_precision: bool = False      # "mixed_float16" (GPU); fill, normalisation and output stay float32
    strategy: str | None = None        # "mirrored": tf.distribute.MirroredStrategy over every visible GPU


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    run_info: dict
    epochs_trained: int


STRATEGIES = (None, "mirrored")


@contextmanager
def device_settings(config: TrainConfig):
    """The precision policy and distribution strategy of one run; the global policy is restored after.

    Nothing here is CPU- or GPU-specific: the same code runs on a laptop and on a multi-GPU instance
    (MirroredStrategy replicates the model on every visible GPU, or runs on the CPU where there is none).
    """
    previous = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        if config.strategy == "mirrored":
            import tensorflow as tf

            with tf.distribute.MirroredStrategy().scope():
                yield
        else:
            yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class TrainingInterrupted(Exception):
    """Raised by train() when stop_event was set; `last_epoch` is the number of completed epochs."""

    def __init__(self, last_epoch: int):
        super().__init__(f"training interrupted after {last_epoch} completed epoch(s)")
        self.last_epoch = last_epoch


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
    # model-quality settings (training.assess / training.levers)
    checks += [
        (config.split in ("random", "time"), f"split must be 'random' or 'time', got {config.split!r}"),
        (config.strategy in STRATEGIES, f"strategy must be one of {sorted(map(str, STRATEGIES))}, got {config.strategy!r}"),
        (config.model.lr_schedule in ("constant", "plateau"),
         f"lr schedule must be 'constant' or 'plateau', got {config.model.lr_schedule!r}"),
        (config.model.quantile_bins >= 0, f"quantile bins must be 0 or more, got {config.model.quantile_bins}"),
        (config.model.bin_encoding in ("one_hot", "piecewise_linear"),
         f"bin encoding must be 'one_hot' or 'piecewise_linear', got {config.model.bin_encoding!r}"),
        (config.model.ensemble >= 1, f"ensemble must be 1 or more networks, got {config.model.ensemble}"),
        (config.model.weight_decay >= 0, f"weight decay must be 0 or more, got {config.model.weight_decay}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if config.data is not None and not config.data:
        raise ConfigError("data: give at least one file, glob or s3:// URI (or none for the synthetic sample)")


def _split(indices: np.ndarray, labels: np.ndarray, seed: int, **sizes) -> tuple[np.ndarray, np.ndarray]:
    """train_test_split, stratified by grade where every grade has enough rows, else plain random."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    if counts[counts > 0].min() >= 2:
        try:
            return train_test_split(indices, random_state=seed, stratify=labels, **sizes)
        except ValueError:  # a split too small to hold every grade
            pass
    return train_test_split(indices, random_state=seed, **sizes)


def split_rows(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, validation, test) row positions; the same seed gives the same split."""
    positions = np.arange(len(labels))
    rest, test = _split(positions, labels, seed, test_size=TEST_FRACTION)
    train, validation = _split(rest, labels[rest], seed, test_size=VALIDATION_FRACTION / (1 - TEST_FRACTION))
    return np.sort(train), np.sort(validation), np.sort(test)


def stratified_sample(frame: pd.DataFrame, labels: np.ndarray, rows: int, seed: int) -> pd.DataFrame:
    """A reproducible random sample of `rows` rows keeping the grade shares."""
    keep, _ = _split(np.arange(len(frame)), labels, seed, train_size=rows)
    return frame.iloc[np.sort(keep)].reset_index(drop=True)


def grade_labels(frame: pd.DataFrame) -> np.ndarray:
    return frame["grade"].map({g: i for i, g in enumerate(GRADES)}).to_numpy(dtype=np.int64)


def class_weight_for(labels: np.ndarray) -> dict[int, float]:
    """Balanced class weights (scikit-learn) for the grades present, 1.0 for absent ones."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    result = {i: 1.0 for i in range(len(GRADES))}
    result.update({int(c): float(w) for c, w in zip(present, weights)})
    return result


class _Progress(keras.callbacks.Callback):
    """One log line per epoch; keeps the full history (also across a BackupAndRestore resume)."""

    def __init__(self, log: Callable[[str], None], epochs: int, history_path: Path | None):
        super().__init__()
        self.log, self.epochs, self.history_path = log, epochs, history_path
        self.history: list[dict[str, float]] = []
        self.initial_epoch: int | None = None
        self.completed = 0
        self._started = 0.0
        if history_path is not None and history_path.is_file():
            self.history = json.loads(history_path.read_text())

    def on_epoch_begin(self, epoch, logs=None):
        if self.initial_epoch is None:
            self.initial_epoch = epoch
            self.history = self.history[:epoch]
            self.completed = epoch
            if epoch:
                self.log(f"resuming from the checkpoint after epoch {epoch}")
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.completed = epoch + 1
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.append(logs)
        if self.history_path is not None:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.history, self.history_path)  # type: ignore[arg-type]
        shown = " - ".join(f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                           if k in logs)
        self.log(f"epoch {epoch + 1}/{self.epochs} - {time.monotonic() - self._started:.1f}s - {shown}")

    def as_dict(self) -> dict[str, list[float]]:
        keys = sorted({k for entry in self.history for k in entry})
        return {k: [entry.get(k, float("nan")) for entry in self.history] for k in keys}


class _StopOnEvent(keras.callbacks.Callback):
    """Raise TrainingInterrupted at the first batch or epoch end after stop_event is set.

    Raising (rather than model.stop_training) skips on_train_end, so BackupAndRestore keeps its checkpoint.
    """

    def __init__(self, stop_event: threading.Event, progress: _Progress):
        super().__init__()
        self.stop_event, self.progress = stop_event, progress

    def _check(self):
        if self.stop_event.is_set():
            raise TrainingInterrupted(self.progress.completed)

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()


def _write_synthetic(path: Path, rows: int, seed: int) -> Path:
    from training import synthetic

    path.parent.mkdir(parents=True, exist_ok=True)
    return synthetic.write_raw_csv(path, rows, seed)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _devices() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices()]


def _config_dict(config: TrainConfig) -> dict:
    result = asdict(config)
    result["output_dir"] = str(config.output_dir)
    result["model"]["hidden_units"] = list(config.model.hidden_units)
    return result


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


def _member_fit(model: keras.Model, model_config: ModelConfig, train_ds, val_ds, class_weight: dict | None):
    """The ensemble's training view (training.model.ensemble_training_view) and datasets whose label (and
    class weight, as a sample weight) is repeated once per member."""
    import tensorflow as tf

    from training.model import ensemble_training_view

    k = model_config.ensemble
    weights = tf.constant([class_weight[i] for i in range(len(GRADES))] if class_weight else [1.0] * len(GRADES))

    def per_member(x, y):
        return x, (y,) * k, (tf.gather(weights, y),) * k

    return (ensemble_training_view(model, model_config), train_ds.map(per_member),
            val_ds.map(lambda x, y: (x, (y,) * k)))


FEATURE_BATCH_ROWS = 8192  # rows per batch when the preprocessing runs once over a split


def head_fit_inputs(split: tuple[keras.Model, keras.Model], train_frame: pd.DataFrame, y_train: np.ndarray,
                    val_ds, y_val: np.ndarray, cols: list[str], categorical: list[str],
                    config: TrainConfig, log: Callable[[str], None]):
    """(head, train dataset, validation dataset): the feature matrices of both splits computed once by the
    preprocessing part (no trainable weights: the same values every epoch), batched and shuffled as
    make_dataset would. The head shares the model's layers, so fitting it trains the saved model; it
    saves the per-batch fill, normalisation and string lookups of 46 inputs (bench/train.py).
    ``val_ds`` is the validation dataset already built for prediction: its inputs are not built twice."""
    preprocess, head = split
    started = time.monotonic()

    def features(batches, rows: int) -> np.ndarray:
        """The matrix filled batch by batch (no list of parts and a second, concatenated copy)."""
        matrix = np.empty((rows, head.input_shape[1]), dtype=np.float32)
        start = 0
        for batch in batches:
            part = keras.ops.convert_to_numpy(preprocess(batch, training=False))
            matrix[start:start + len(part)] = part
            start += len(part)
        return matrix

    x_train = features(make_dataset(train_frame, cols, batch_size=FEATURE_BATCH_ROWS, categorical=categorical),
                       len(train_frame))
    x_val = features((x for x, _ in val_ds), len(y_val))
    log(f"features computed once: {x_train.shape[1]} columns for {len(x_train)} + {len(x_val)} rows "
        f"in {time.monotonic() - started:.1f}s")
    # several batches per element (ChunkedHead); under a tf.distribute strategy, where each replica
    # would loop over its own share, one batch per element
    per_element = HEAD_BATCHES_PER_ELEMENT if config.strategy is None else 1
    head.batch_rows = config.batch_size if per_element > 1 else None
    train_ds = gathered_dataset(x_train, y_train, len(x_train), batch_size=config.batch_size * per_element,
                                shuffle=True, seed=config.seed)
    val_ds = gathered_dataset(x_val, y_val, len(x_val), batch_size=config.batch_size * per_element)
    return head, train_ds, val_ds


def train(config: TrainConfig, *, callbacks: Sequence[keras.callbacks.Callback] = (),
          backup_dir: Path | None = None, stop_event: threading.Event | None = None,
          log: Callable[[str], None] = print) -> TrainResult:
    """Run one training run and write its artifacts (see the module docstring)."""
    validate_config(config)
    with device_settings(config):
        return _train(config, callbacks=callbacks, backup_dir=backup_dir, stop_event=stop_event, log=log)


def _train(config: TrainConfig, *, callbacks: Sequence[keras.callbacks.Callback],
           backup_dir: Path | None, stop_event: threading.Event | None,
           log: Callable[[str], None]) -> TrainResult:
    from training.data import load_loans
    from training.features import add_derived_features, fit_fill_values, get_feature_set, raw_columns_for

    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    feature_set = get_feature_set(config.features)
    run_id = config.run_id or new_run_id()
    run_dir = Path(config.output_dir) / run_id
    keras.utils.set_random_seed(config.seed)

    synthetic = config.data is None
    if synthetic:
        rows = config.sample or DEFAULT_SYNTHETIC_ROWS
        data: list[str] = [str(_write_synthetic(run_dir / "data" / "synthetic.csv", rows, config.seed))]
        log(f"data: built-in synthetic sample, {rows} rows written to {data[0]} (not real loans)")
    else:
        data = [str(config.data)] if isinstance(config.data, (str, Path)) else [str(d) for d in config.data]
    columns = list(dict.fromkeys(["grade", *raw_columns_for(feature_set.columns),
                                  *(["issue_d"] if config.split == "time" else [])]))
    # the leakage audit also reads int_rate/installment/loan_amnt/term where the files have them
    loaded = load_with_audit_columns(data if len(data) > 1 else data[0], columns,
                                     max_bad_rows=config.max_bad_rows)
    frame = loaded.frame
    log(f"read {loaded.rows_read} rows from {len(loaded.files)} file(s)")
    for reason, count in loaded.dropped.items():
        log(f"dropped {count} rows: {reason}")
    if len(frame) < MIN_ROWS:
        raise DataError(f"{', '.join(data)}: only {len(frame)} usable labelled rows; need at least {MIN_ROWS}")
    labels = grade_labels(frame)
    if config.sample is not None and config.sample < len(frame):
        frame = stratified_sample(frame, labels, config.sample, config.seed)
        labels = grade_labels(frame)
        log(f"stratified sample: {len(frame)} rows (seed {config.seed})")
    elif config.sample is not None and config.sample > len(frame):
        log(f"sample {config.sample} is more than the {len(frame)} usable rows: using them all")

    frame = add_derived_features(frame)
    audit = audit_features(frame, feature_set, seed=config.seed, log=log)  # ConfigError: leaks in application
    if config.split == "time":
        train_pos, val_pos, test_pos = time_split(frame["issue_d"], labels, config.seed)
        log(f"time split: test rows issued {frame['issue_d'].iloc[test_pos].min():%Y-%m} or later")
    else:
        train_pos, val_pos, test_pos = split_rows(labels, config.seed)
    train_frame, val_frame, test_frame = (frame.iloc[p] for p in (train_pos, val_pos, test_pos))
    y_train, y_val, y_test = labels[train_pos], labels[val_pos], labels[test_pos]
    log(f"split: {len(train_pos)} train, {len(val_pos)} validation, {len(test_pos)} test rows")

    fill = fit_fill_values(train_frame, feature_set)
    values_filled = _values_filled(frame, feature_set.columns)
    if values_filled:
        log("missing values filled: " + ", ".join(f"{c} {n}" for c, n in sorted(values_filled.items())))
    for warning in fill.warnings:
        log(f"warning: {warning}")

    model = build_model(feature_set, train_frame, fill, config.model)
    cols, categorical = list(feature_set.columns), list(feature_set.categorical)
    val_ds = make_dataset(val_frame, cols, y_val, batch_size=config.batch_size, categorical=categorical)
    test_ds = make_dataset(test_frame, cols, batch_size=config.batch_size, categorical=categorical)

    progress = _Progress(log, config.epochs, Path(backup_dir) / HISTORY_FILE if backup_dir else None)
    fit_callbacks: list[keras.callbacks.Callback] = []
    if backup_dir is not None:
        fit_callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir)))
    fit_callbacks += [progress,
                      keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                                    restore_best_weights=True),
                      *callbacks]
    if config.model.lr_schedule == "plateau":
        fit_callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=3,
                                                               min_lr=1e-5, verbose=0))
    if stop_event is not None:
        if stop_event.is_set():
            raise TrainingInterrupted(0)
        fit_callbacks.append(_StopOnEvent(stop_event, progress))
    class_weight = class_weight_for(y_train) if config.class_weights else None
    split = split_preprocessing(model, config.model)  # None for an ensemble or trainable preprocessing
    if split is not None:  # preprocessing without weights: computed once, the dense head fitted on it
        fit_model, fit_train_ds, fit_val_ds = head_fit_inputs(split, train_frame, y_train, val_ds, y_val,
                                                              cols, categorical, config, log)
    else:
        train_ds = make_dataset(train_frame, cols, y_train, batch_size=config.batch_size, shuffle=True,
                                seed=config.seed, categorical=categorical)
        fit_model, fit_train_ds, fit_val_ds = model, train_ds, val_ds
        if config.model.ensemble > 1:  # each member with its own loss; the averaged `model` is what is saved
            fit_model, fit_train_ds, fit_val_ds = _member_fit(model, config.model, train_ds, val_ds,
                                                              class_weight)
            class_weight = None
    fit_model.fit(fit_train_ds, validation_data=fit_val_ds, epochs=config.epochs, verbose=0,
                  callbacks=fit_callbacks, shuffle=False, class_weight=class_weight)

    val_probs = model.predict(val_ds, verbose=0)
    test_probs = model.predict(test_ds, verbose=0)
    val_pred, test_pred = val_probs.argmax(axis=1), test_probs.argmax(axis=1)
    history = progress.as_dict()
    metrics = {
        "test": compute_metrics(y_test, test_pred),
        "validation": compute_metrics(y_val, val_pred),
        "rows": {"train": len(train_pos), "validation": len(val_pos), "test": len(test_pos)},
        "baselines": {"majority": majority_baseline(y_train, y_test)},
    }

    # extra metrics, baselines on the same rows, reliability/importance plots (training.assess)
    assess(predict_proba=keras_predict_proba(model, cols, categorical),
           test_probs=test_probs, val_probs=val_probs, metrics=metrics, train_frame=train_frame, y_train=y_train,
           test_frame=test_frame, y_test=y_test, y_val=y_val, feature_set=feature_set, fill=fill,
           seed=config.seed, run_dir=run_dir, log=log)

    run_dir.mkdir(parents=True, exist_ok=True)
    tmp_model = run_dir / "model.tmp.keras"
    model.save(tmp_model)
    tmp_model.replace(run_dir / "model.keras")
    write_json(metrics, run_dir / "metrics.json")
    plot_confusion_matrix(metrics["test"]["confusion_matrix"], run_dir / "confusion_matrix.png", title="Test rows")
    val_losses = history.get("val_loss", [])
    best_epoch = int(np.nanargmin(val_losses)) + 1 if val_losses else None
    plot_history(history, run_dir / "history.png", best_epoch=best_epoch)
    run_info = {
        "run_id": run_id,
        "synthetic": synthetic,
        "note": SYNTHETIC_NOTE if synthetic else "Trained on the data files listed under data.files.",
        "config": _config_dict(config),
        "feature_set": {"name": feature_set.name, "numeric": list(feature_set.numeric),
                        "categorical": list(feature_set.categorical)},
        "data": {
            "files": [asdict(f) for f in loaded.files],
            "rows_read": loaded.rows_read,
            "rows_dropped": dict(loaded.dropped),
            "rows_used": len(frame),
            "sample": config.sample,
        },
        "fill": {**fill.to_dict(), "values_filled": values_filled},
        "audit": audit,
        "epochs_trained": progress.completed,
        "best_epoch": best_epoch,
        "history": history,
        "versions": _versions(),
        "devices": _devices(),
        "git_commit": _git_commit(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(time.monotonic() - started, 2),
    }
    write_json(run_info, run_dir / "run.json")
    write_report(run_dir, metrics, run_info)
    return TrainResult(run_dir=run_dir, metrics=metrics, run_info=run_info, epochs_trained=progress.completed)


def summary_lines(result: TrainResult) -> list[str]:
    """Where the artifacts are and the headline test metrics against the majority-class baseline."""
    test, base = result.metrics["test"], result.metrics["baselines"]["majority"]
    artifacts = ", ".join(sorted(p.name for p in Path(result.run_dir).iterdir() if p.is_file()))
    lines = [f"artifacts: {result.run_dir}/ ({artifacts})",
             f"trained {result.epochs_trained} epochs on {result.metrics['rows']['train']} rows "
             f"(run took {result.run_info['wall_time_s']:.1f}s); held-out test rows: "
             f"{result.metrics['rows']['test']}",
             f"test accuracy {test['accuracy']:.4f} | weighted F1 {test['weighted_f1']:.4f} | "
             f"macro F1 {test['macro_f1']:.4f}",
             f"majority-class baseline: accuracy {base['accuracy']:.4f} | weighted F1 "
             f"{base['weighted_f1']:.4f} | macro F1 {base['macro_f1']:.4f}"]
    if result.run_info.get("synthetic"):
        lines.append("note: synthetic data (not real loans); pass --data to train on Lending Club files")
    return lines
