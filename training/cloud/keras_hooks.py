"""The runner's Keras callbacks: progress for the heartbeat, and a report of every epoch whose backup is complete.

Keras is imported when a callback is made, not with this module.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable

from training.cloud.core import env

BACKUP_METADATA = "training_metadata.json"  # written last by BackupAndRestore: uploaded last

log = logging.getLogger("spotgrade.runner")


def make_progress_callback(advance: Callable[[], None], stall_at_epoch: int | None = None) -> Any:
    """A Keras callback calling `advance()` on every training and validation batch.

    `stall_at_epoch` is a test hook (core/env.py's TEST_STALL_AT_EPOCH): the first batch of that epoch (0-based)
    blocks forever, as a stuck input pipeline or GPU would; nothing else changes.
    """
    import keras

    class ProgressCounter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            advance()

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            advance()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if stall_at_epoch is not None and epoch >= stall_at_epoch:
                log.warning("test hook %s=%d: blocking training", env.TEST_STALL_AT_EPOCH, stall_at_epoch)
                threading.Event().wait()

    return ProgressCounter()


def make_epoch_callback(backup_dir: Path, on_epoch: Callable[[int, dict, bool], None]) -> Any:
    """A Keras callback calling on_epoch(epoch, logs, ready) once per completed epoch.

    `ready` says the backup directory holds that epoch's state (BackupAndRestore's metadata says so).
    train() stops by raising from a batch callback, so an epoch cut short never reaches on_epoch_end
    and its partial state never reaches S3. Where BackupAndRestore runs after this callback, the report
    waits for the next epoch's start.
    """
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.pending: tuple[int, dict] | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = dict(logs or {})
            if backup_epoch(backup_dir) == epoch + 1:
                on_epoch(epoch, logs, True)
            else:
                self.pending = (epoch, logs)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._flush()

        def on_train_end(self, logs: dict | None = None) -> None:
            self._flush()

        def _flush(self) -> None:
            if self.pending is not None:
                epoch, logs = self.pending
                self.pending = None
                on_epoch(epoch, logs, backup_epoch(backup_dir) == epoch + 1)

    return EpochRecorder()


def backup_epoch(backup_dir: Path) -> int | None:
    """Completed epochs recorded by BackupAndRestore in backup_dir, or None."""
    try:
        return int(json.loads((backup_dir / BACKUP_METADATA).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
