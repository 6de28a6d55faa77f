"""The runner's Keras callbacks, driven by hand (no training)."""
import json
import threading

from training.cloud.keras_hooks import BACKUP_METADATA, backup_epoch, make_epoch_callback, make_progress_callback


def write_backup(backup_dir, epoch: int) -> None:
    (backup_dir / BACKUP_METADATA).write_text(json.dumps({"epoch": epoch}))


def test_backup_epoch(tmp_path):
    assert backup_epoch(tmp_path) is None
    (tmp_path / BACKUP_METADATA).write_text("not json")
    assert backup_epoch(tmp_path) is None
    write_backup(tmp_path, 3)
    assert backup_epoch(tmp_path) == 3


def test_an_epoch_is_reported_ready_once_its_backup_is_written(tmp_path):
    seen = []
    callback = make_epoch_callback(tmp_path, lambda epoch, logs, ready: seen.append((epoch, logs, ready)))
    write_backup(tmp_path, 1)
    callback.on_epoch_end(0, {"loss": 1.0})  # BackupAndRestore ran first: reported at once
    assert seen == [(0, {"loss": 1.0}, True)]
    callback.on_epoch_end(1, {"loss": 0.5})  # its backup comes after this callback: reported at the next start
    assert len(seen) == 1
    write_backup(tmp_path, 2)
    callback.on_epoch_begin(2)
    assert seen[-1] == (1, {"loss": 0.5}, True)
    callback.on_epoch_end(2, {"loss": 0.4})  # training ends with no backup of epoch 3: reported, not ready
    callback.on_train_end()
    assert seen[-1] == (2, {"loss": 0.4}, False) and len(seen) == 3


def test_progress_counts_every_batch():
    count = []
    callback = make_progress_callback(lambda: count.append(1))
    callback.on_train_batch_end(0)
    callback.on_test_batch_end(0)
    callback.on_epoch_begin(5)  # no stall hook: returns
    assert len(count) == 2


def test_the_stall_hook_blocks_at_its_epoch():
    callback = make_progress_callback(lambda: None, stall_at_epoch=1)
    callback.on_epoch_begin(0)
    blocked = threading.Thread(target=callback.on_epoch_begin, args=(1,), daemon=True)
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()
