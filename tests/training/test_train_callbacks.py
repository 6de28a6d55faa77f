"""The fit's callbacks: epoch progress and history, stopping on an event, their order."""
import json
import threading

import keras
import pytest

from training.train_callbacks import HISTORY_FILE, EpochProgress, StopOnEvent, TrainingInterrupted, fit_callbacks


def _epoch(progress: EpochProgress, epoch: int, val_loss: float) -> None:
    progress.on_epoch_begin(epoch)
    progress.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})


def test_progress_logs_each_epoch_and_keeps_the_history(tmp_path):
    lines: list[str] = []
    progress = EpochProgress(lines.append, 3, tmp_path / HISTORY_FILE)
    for epoch, val_loss in enumerate([0.9, 0.7, 0.8]):
        _epoch(progress, epoch, val_loss)
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert lines[0].endswith("loss 1.0000 - val_loss 0.9000")
    assert progress.completed == 3 and progress.best_epoch() == 2
    assert progress.as_dict() == {"loss": [1.0] * 3, "val_loss": [0.9, 0.7, 0.8]}
    assert len(json.loads((tmp_path / HISTORY_FILE).read_text())) == 3


def test_progress_resumes_from_the_saved_history(tmp_path):
    first = EpochProgress(lambda line: None, 4, tmp_path / HISTORY_FILE)
    for epoch in range(3):
        _epoch(first, epoch, 1.0 - epoch / 10)
    lines: list[str] = []
    resumed = EpochProgress(lines.append, 4, tmp_path / HISTORY_FILE)
    _epoch(resumed, 2, 0.5)  # the checkpoint was after epoch 2: the third saved epoch is dropped
    assert lines[0] == "resuming from the checkpoint after epoch 2"
    assert resumed.as_dict()["val_loss"] == [1.0, 0.9, 0.5] and resumed.completed == 3
    assert EpochProgress(lambda line: None, 1, None).best_epoch() is None


def test_stop_on_event_raises_with_the_completed_epochs():
    event, progress = threading.Event(), EpochProgress(lambda line: None, 2, None)
    stop = StopOnEvent(event, progress)
    stop.on_train_batch_end(0)
    _epoch(progress, 0, 1.0)
    event.set()
    with pytest.raises(TrainingInterrupted) as caught:
        stop.on_train_batch_end(1)
    assert caught.value.last_epoch == 1


def test_fit_callbacks_order(tmp_path):
    progress, extra = EpochProgress(lambda line: None, 2, None), keras.callbacks.Callback()
    plain = fit_callbacks(progress, patience=3, lr_schedule="constant", backup_dir=None, stop_event=None)
    assert [type(c) for c in plain] == [EpochProgress, keras.callbacks.EarlyStopping]
    full = fit_callbacks(progress, patience=3, lr_schedule="plateau", backup_dir=tmp_path,
                         stop_event=threading.Event(), extra=[extra])
    assert [type(c) for c in full] == [keras.callbacks.BackupAndRestore, EpochProgress,
                                       keras.callbacks.EarlyStopping, keras.callbacks.Callback,
                                       keras.callbacks.ReduceLROnPlateau, StopOnEvent]
    assert full[2].patience == 3 and full[2].restore_best_weights
