"""The fit's callbacks: epoch progress and history, the step bar, TensorBoard logs, stopping on an event, their
order."""
import json
import threading

import keras
import pytest

from training import progress as progress_bars
from training.train_callbacks import (
    HISTORY_FILE,
    EpochProgress,
    StepProgressBar,
    StopOnEvent,
    TensorBoardLog,
    TrainingInterrupted,
    fit_callbacks,
    write_tensorboard_image,
)


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
                         stop_event=threading.Event(), extra=[extra], tensorboard_dir=tmp_path / "tb",
                         weight_averages=True)
    # the checkpoint saves the weights the steps go on from, before the averages are swapped in for early stopping
    assert [type(c) for c in full] == [keras.callbacks.BackupAndRestore, EpochProgress, TensorBoardLog,
                                       keras.callbacks.SwapEMAWeights, keras.callbacks.EarlyStopping,
                                       keras.callbacks.Callback, keras.callbacks.ReduceLROnPlateau, StopOnEvent]
    assert full[3].swap_on_epoch and full[4].patience == 3 and full[4].restore_best_weights


def _scalars(log_dir) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{split: {tag: [(step, value)]}} of the TensorBoard logs under ``log_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    found = {}
    for split in ("train", "validation"):
        events = EventAccumulator(str(log_dir / split))
        events.Reload()
        # in the order written: the accumulator reads a directory's event files in name order, and two writers of
        # one process in one second are named by a counter, so the 10th sorts before the 9th
        found[split] = {tag: [(e.step, round(float(make_ndarray(e.tensor_proto)), 4))
                              for e in sorted(events.Tensors(tag), key=lambda e: e.wall_time)]
                        for tag in events.Tags()["tensors"]}
    return found


def _tensorboard_epochs(log_dir, progress: EpochProgress, epochs: range, val_loss: float) -> None:
    board = TensorBoardLog(log_dir, progress)
    for epoch in epochs:
        for callback in (progress, board):
            callback.on_epoch_begin(epoch)
        for callback in (progress, board):
            callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
    board.on_train_end()


def test_tensorboard_scalars_per_epoch_and_a_resume_on_a_fresh_machine_starts_at_epoch_1(tmp_path):
    board_dir, backup = tmp_path / "run" / "tensorboard", tmp_path / "backup"
    _tensorboard_epochs(board_dir, EpochProgress(lambda line: None, 4, backup / HISTORY_FILE), range(2), 0.5)
    assert _scalars(board_dir) == {"train": {"epoch_loss": [(1, 1.0), (2, 1.0)]},
                                   "validation": {"epoch_loss": [(1, 0.5), (2, 0.5)]}}
    fresh = tmp_path / "fresh" / "tensorboard"   # another instance: the checkpoint and history, no logs
    _tensorboard_epochs(fresh, EpochProgress(lambda line: None, 4, backup / HISTORY_FILE), range(2, 4), 0.25)
    assert _scalars(fresh)["validation"] == {"epoch_loss": [(1, 0.5), (2, 0.5), (3, 0.25), (4, 0.25)]}
    # the same machine: the logs are there; only the epochs after the checkpoint are added
    _tensorboard_epochs(board_dir, EpochProgress(lambda line: None, 4, backup / HISTORY_FILE), range(2, 3), 0.25)
    assert [step for step, _ in _scalars(board_dir)["train"]["epoch_loss"]] == [1, 2, 3]


def test_tensorboard_image_of_a_png(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from training.plots import plot_confusion_matrix

    png = plot_confusion_matrix([[1] * 7] * 7, tmp_path / "cm.png")
    write_tensorboard_image(tmp_path / "tb", png, tag="confusion_matrix", step=3)
    events = EventAccumulator(str(tmp_path / "tb" / "test"))
    events.Reload()
    (event,) = events.Tensors("confusion_matrix")
    assert event.step == 3 and event.tensor_proto.string_val[2][:4] == b"\x89PNG"


def test_step_bar_only_on_a_terminal(monkeypatch):
    progress = EpochProgress(lambda line: None, 2, None)
    assert not progress_bars.enabled() and progress_bars.bar(total=3) is None   # pytest captures stderr
    assert StepProgressBar not in map(type, fit_callbacks(progress, patience=1, lr_schedule="constant",
                                                          backup_dir=None, stop_event=None))
    monkeypatch.setattr(progress_bars, "enabled", lambda: True)
    bars = []
    monkeypatch.setattr(progress_bars, "bar", lambda **options: bars.append(options) or _Bar())
    callbacks = fit_callbacks(progress, patience=1, lr_schedule="constant", backup_dir=None, stop_event=None,
                              tensorboard_dir=None)
    assert [type(c) for c in callbacks][:2] == [StepProgressBar, EpochProgress]
    bar = callbacks[0]
    bar.set_params({"steps": 5, "epochs": 2})
    bar.on_epoch_begin(1)
    for step in range(5):
        bar.on_train_batch_end(step)
    bar.on_epoch_end(1)
    assert bars == [{"total": 5, "desc": "epoch 2/2", "unit": "step"}] and _Bar.last == (5, True)


class _Bar:
    last = (0, False)

    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n

    def close(self):
        _Bar.last = (self.n, True)
