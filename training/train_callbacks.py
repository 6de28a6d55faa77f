"""The Keras callbacks of a training run: epoch progress and history, a progress bar within epochs, TensorBoard
logs, stopping on an event, the fit's list."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np

from training import progress as progress_bars
from training.run_record import write_json

HISTORY_FILE = "spotgrade_history.json"  # the epoch history beside the BackupAndRestore checkpoint
TENSORBOARD_DIR = "tensorboard"          # a run's TensorBoard logs: <run dir>/tensorboard/{train,validation,test}/


class TrainingInterrupted(Exception):
    """Raised by train() when stop_event was set; `last_epoch` is the number of completed epochs."""

    def __init__(self, last_epoch: int):
        super().__init__(f"training interrupted after {last_epoch} completed epoch(s)")
        self.last_epoch = last_epoch


class EpochProgress(keras.callbacks.Callback):
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
            write_json(self.history, self.history_path)
        shown = " - ".join(f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                           if k in logs)
        self.log(f"epoch {epoch + 1}/{self.epochs} - {time.monotonic() - self._started:.1f}s - {shown}")

    def as_dict(self) -> dict[str, list[float]]:
        keys = sorted({k for entry in self.history for k in entry})
        return {k: [entry.get(k, float("nan")) for entry in self.history] for k in keys}

    def best_epoch(self) -> int | None:
        """The (1-based) epoch of the lowest validation loss, or None without one."""
        val_losses = self.as_dict().get("val_loss", [])
        return int(np.nanargmin(val_losses)) + 1 if val_losses else None


class StepProgressBar(keras.callbacks.Callback):
    """A progress bar of the steps of each epoch, on stderr where bars are shown (training.progress)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self._bar = epochs, None

    def on_epoch_begin(self, epoch, logs=None):
        self._bar = progress_bars.bar(total=self.params.get("steps"), desc=f"epoch {epoch + 1}/{self.epochs}",
                                      unit="step")

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TensorBoardLog(keras.callbacks.Callback):
    """Each epoch's metrics as TensorBoard scalars (``epoch_loss``, ``epoch_accuracy``, ...; ``val_`` ones under
    ``validation/``, the others under ``train/``, as Keras' TensorBoard callback names them), the step being the
    1-based epoch as in the log lines and history.png. No graph, histograms or profiling: nothing slows training.

    Resuming into a directory without logs (a fresh instance after a spot interruption), the epochs restored
    from the checkpoint (``progress``'s history) are written first, so the curves start at epoch 1.
    """

    def __init__(self, log_dir: Path, progress: EpochProgress):
        super().__init__()
        self.log_dir, self.progress = Path(log_dir), progress
        self._had_logs = any(self.log_dir.glob("*/events.out.tfevents.*"))
        self._writers: dict = {}
        self._begun = False

    def write_epoch(self, epoch: int, logs: dict) -> None:
        """The scalars of one (1-based) epoch, flushed."""
        import tensorflow as tf

        for key, value in logs.items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if split not in self._writers:
                self._writers[split] = tf.summary.create_file_writer(str(self.log_dir / split))
            with self._writers[split].as_default():
                tf.summary.scalar(f"epoch_{name}", float(value), step=epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_epoch_begin(self, epoch, logs=None):
        if not self._begun:
            self._begun = True
            if not self._had_logs:
                for number, entry in enumerate(self.progress.history[:epoch], 1):
                    self.write_epoch(number, entry)

    def on_epoch_end(self, epoch, logs=None):
        self.write_epoch(epoch + 1, logs or {})

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def write_tensorboard_image(log_dir: Path, png: Path, *, tag: str, step: int) -> None:
    """A PNG file (such as the test rows' confusion matrix) as a TensorBoard image under ``<log_dir>/test``."""
    import tensorflow as tf

    image = tf.image.decode_png(Path(png).read_bytes(), channels=4)[tf.newaxis]
    writer = tf.summary.create_file_writer(str(Path(log_dir) / "test"))
    with writer.as_default():
        tf.summary.image(tag, image, step=step)
    writer.close()


class StopOnEvent(keras.callbacks.Callback):
    """Raise TrainingInterrupted at the first batch or epoch end after stop_event is set.

    Raising (rather than model.stop_training) skips on_train_end, so BackupAndRestore keeps its checkpoint.
    """

    def __init__(self, stop_event: threading.Event, progress: EpochProgress):
        super().__init__()
        self.stop_event, self.progress = stop_event, progress

    def _check(self):
        if self.stop_event.is_set():
            raise TrainingInterrupted(self.progress.completed)

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()


def fit_callbacks(progress: EpochProgress, *, patience: int, lr_schedule: str, backup_dir: Path | None,
                  stop_event: threading.Event | None, extra: Sequence[keras.callbacks.Callback] = (),
                  tensorboard_dir: Path | None = None, weight_averages: bool = False
                  ) -> list[keras.callbacks.Callback]:
    """The callbacks of the fit, in order: checkpoint (with ``backup_dir``), a progress bar within epochs
    (where bars are shown), progress, TensorBoard scalars (with ``tensorboard_dir``), the weight averages swapped
    in (``weight_averages``: the optimizer keeps an EMA of the weights), early stopping on validation loss (best
    weights restored), ``extra``, LR on plateau (``lr_schedule`` "plateau"), stop.

    With ``weight_averages`` validation runs on the averages, and from the end of each epoch to the start of the
    next the model holds them: early stopping keeps (and restores) the best averages, while the checkpoint,
    before the swap, holds the weights the steps go on from (the optimizer's state holds the averages)."""
    callbacks: list[keras.callbacks.Callback] = []
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir)))
    if progress_bars.enabled():
        callbacks.append(StepProgressBar(progress.epochs))   # before the epoch's log line, which it clears for
    callbacks.append(progress)
    if tensorboard_dir is not None:
        callbacks.append(TensorBoardLog(tensorboard_dir, progress))
    if weight_averages:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks += [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
                  *extra]
    if lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=3,
                                                           min_lr=1e-5, verbose=0))
    if stop_event is not None:
        callbacks.append(StopOnEvent(stop_event, progress))
    return callbacks
