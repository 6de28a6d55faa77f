"""The on-instance runner for real: small model, synthetic data, moto server, fake metadata service."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from training.cloud import run as runner_module
from training.cloud.layout import RunLayout, write_status
from training.cloud.run import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_STOPPED, EXIT_SUCCEEDED, Runner
from training.cloud.settings import load_settings

from .conftest import wait_for
from .fake_imds import FakeImds
from .flaky import FlakyS3

pytestmark = pytest.mark.slow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ARTIFACTS = {"model.keras", "metrics.json", "run.json", "report.md", "confusion_matrix.png", "history.png",
             "reliability.png", "importance.png"}


# Epochs of a run that only ends when the runner stops it: it never finishes or stops early on its own,
# however fast the machine trains.
UNTIL_STOPPED = 100_000


def small_run(epochs: int) -> str:
    """`python -m training train` flags of a small run that trains all `epochs` (no early stopping)."""
    return f"--sample 1500 --epochs {epochs} --batch-size 32 --patience {epochs} --hidden-units 16"


def run_in_process(cloud, tmp_path, run_id, imds, name="attempt", **extra) -> tuple[int, Runner]:
    env_file = cloud.write_env_file(tmp_path / f"{name}.env", run_id, imds.url, tmp_path / name, **extra)
    runner = Runner(load_settings(env_file, environ={}))
    return runner.run(), runner


def epochs_by_attempt(status: dict) -> list[list[int]]:
    return [a["epochs_completed"] for a in status["attempts"]]


def test_full_run_with_flaky_s3(cloud, tmp_path, monkeypatch):
    """SUCCEEDED with artifacts, capacity 0, one log per attempt, while S3 answers 503 now and then."""
    flaky: list[FlakyS3] = []
    make_clients = runner_module.aws.make_clients

    def flaky_clients(region):
        clients = make_clients(region)
        flaky.append(FlakyS3(clients.s3, failures=8, every=4))
        return clients

    monkeypatch.setattr(runner_module.aws, "make_clients", flaky_clients)
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "full", imds, TRAIN_ARGS=small_run(3))
    assert rc == EXIT_SUCCEEDED
    assert len(flaky[0].failed) == 8 and {"PutObject", "GetObject"} & set(flaky[0].failed)
    status = cloud.status("full")
    assert status["state"] == "SUCCEEDED" and status["error"] is None
    assert status["attempt"] == 1 and status["epochs"] == 3 and status["last_epoch"] == 3
    assert epochs_by_attempt(status) == [[0, 1, 2]]
    attempt = status["attempts"][0]
    assert attempt["end_state"] == "SUCCEEDED" and attempt["instance_type"] == "c5.large"
    assert attempt["lifecycle"] == "spot" and attempt["availability_zone"] == "us-east-1a"
    assert attempt["ended_at"] >= attempt["started_at"] and status["heartbeat_at"]
    assert set(status["validation"]) >= {"loss", "accuracy"}
    artifacts = {k.rsplit("/", 1)[1] for k in cloud.keys("runs/full/artifacts/")}
    assert artifacts == ARTIFACTS
    run_info = json.loads(cloud.read("runs/full/artifacts/run.json"))
    assert run_info["epochs_trained"] == 3 and run_info["cloud"]["attempts"][0]["attempt"] == 1
    assert json.loads(cloud.read("runs/full/artifacts/metrics.json"))["test"]["accuracy"] > 0
    assert cloud.keys("runs/full/logs/") == ["runs/full/logs/attempt-0001.log"]
    log_text = cloud.read("runs/full/logs/attempt-0001.log").decode()
    assert "epoch 3/3" in log_text and "ended: SUCCEEDED" in log_text
    events = cloud.clients.logs.get_log_events(logGroupName=cloud.log_group, logStreamName="full/attempt-0001",
                                               startFromHead=True)["events"]
    assert any("epoch 3/3" in e["message"] for e in events)
    assert cloud.desired() == 0

    # A late replacement after SUCCEEDED only scales the group to 0.
    cloud.set_desired(1)
    with FakeImds(instance_id="i-0late") as imds:
        rc, _ = run_in_process(cloud, tmp_path, "full", imds, name="late", TRAIN_ARGS=small_run(3))
    assert rc == EXIT_SUCCEEDED
    assert cloud.desired() == 0
    assert cloud.status("full")["attempts"] == status["attempts"]
    assert cloud.keys("runs/full/logs/") == ["runs/full/logs/attempt-0001.log"]


def test_spot_notice_then_replacement_resumes(cloud, tmp_path):
    """Notice after epoch k: INTERRUPTED within the two minutes; a replacement finishes the configured epochs."""
    epochs = 12  # enough that the notice lands mid-run even where an epoch takes a fraction of a second
    with FakeImds() as imds:
        env_file = cloud.write_env_file(tmp_path / "first.env", "spot", imds.url, tmp_path / "first",
                                        TRAIN_ARGS=small_run(epochs))
        process = cloud.start_runner(env_file, tmp_path / "first.out")
        try:
            wait_for(lambda: (cloud.status("spot") or {}).get("last_epoch", 0) >= 2, 150, what="epoch 2")
            imds.notice()
            noticed = time.monotonic()
            wait_for(lambda: cloud.status("spot")["state"] == "INTERRUPTED", 120, interval=0.05,
                     what="INTERRUPTED")
            notice_to_checkpoint = time.monotonic() - noticed
            assert process.wait(60) == EXIT_INTERRUPTED, (tmp_path / "first.out").read_text()[-3000:]
        finally:
            process.kill()
    status = cloud.status("spot")
    [done] = epochs_by_attempt(status)
    k = len(done)
    assert done == list(range(k)) and 2 <= k < epochs
    assert status["attempts"][0]["end_state"] == "INTERRUPTED" and "spot interruption" in status["reason"]
    checkpoint = json.loads(cloud.read("runs/spot/checkpoints/training_metadata.json"))
    assert checkpoint["epoch"] == k == status["last_epoch"]
    assert cloud.keys("runs/spot/artifacts/") == []
    assert cloud.desired() == 1  # the group replaces an interrupted instance
    assert "ended: INTERRUPTED" in cloud.read("runs/spot/logs/attempt-0001.log").decode()
    assert notice_to_checkpoint < 120

    with FakeImds(instance_id="i-0replacement", zone="us-east-1b") as imds:
        env_file = cloud.write_env_file(tmp_path / "second.env", "spot", imds.url, tmp_path / "second",
                                        TRAIN_ARGS=small_run(epochs))
        process = cloud.start_runner(env_file, tmp_path / "second.out")
        assert process.wait(180) == EXIT_SUCCEEDED, (tmp_path / "second.out").read_text()[-3000:]
    status = cloud.status("spot")
    first, second = epochs_by_attempt(status)
    assert first + second == list(range(epochs))  # configured epochs in total, not epochs + k
    assert status["state"] == "SUCCEEDED" and status["attempts"][1]["availability_zone"] == "us-east-1b"
    run_info = json.loads(cloud.read("runs/spot/artifacts/run.json"))
    assert run_info["epochs_trained"] == epochs and len(run_info["history"]["loss"]) == epochs
    assert {k.rsplit("/", 1)[1] for k in cloud.keys("runs/spot/artifacts/")} == ARTIFACTS
    assert cloud.keys("runs/spot/logs/") == ["runs/spot/logs/attempt-0001.log", "runs/spot/logs/attempt-0002.log"]
    assert cloud.desired() == 0
    print(f"\nMEASURED notice -> checkpoint in S3 and INTERRUPTED: {notice_to_checkpoint:.2f}s; "
          f"completed epochs lost: {epochs - len(first) - len(second)}; interrupted during epoch {k + 1} "
          "(its partial progress is redone: at most one epoch)")


def test_sigkill_then_restart_resumes_from_last_epoch(cloud, tmp_path):
    epochs = 12  # enough that the kill lands mid-run even where an epoch takes a fraction of a second
    with FakeImds() as imds:
        env_file = cloud.write_env_file(tmp_path / "killed.env", "kill", imds.url, tmp_path / "killed",
                                        TRAIN_ARGS=small_run(epochs))
        process = cloud.start_runner(env_file, tmp_path / "killed.out")
        try:
            wait_for(lambda: (cloud.status("kill") or {}).get("last_epoch", 0) >= 1, 150, what="epoch 1")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        checkpointed = json.loads(cloud.read("runs/kill/checkpoints/training_metadata.json"))["epoch"]
        assert cloud.status("kill")["state"] == "RUNNING"
        rc, _ = run_in_process(cloud, tmp_path, "kill", imds, name="restart", TRAIN_ARGS=small_run(epochs))
    assert rc == EXIT_SUCCEEDED
    status = cloud.status("kill")
    lost, resumed = status["attempts"]
    assert lost["end_state"] == "LOST" and lost["ended_at"]
    assert resumed["epochs_completed"] == list(range(checkpointed, epochs))
    assert checkpointed >= 1
    run_info = json.loads(cloud.read("runs/kill/artifacts/run.json"))
    assert run_info["epochs_trained"] == epochs and len(run_info["history"]["loss"]) == epochs
    assert cloud.desired() == 0


def test_unusable_bucket_fails_and_scales_to_zero(cloud, tmp_path, monkeypatch):
    """No status can be read or written (missing bucket): exit 1 with one line, capacity 0."""
    monkeypatch.setattr(cloud, "bucket", "spotgrade-no-such-bucket")
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "nobucket", imds, TRAIN_ARGS=small_run(1))
    assert rc == EXIT_FAILED
    assert cloud.desired() == 0


def test_checkpoint_of_another_model_fails_clearly(cloud, tmp_path):
    """Checkpoints written with other flags (here: wider layers) cannot be resumed: FAILED, one clear line."""
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "mismatch", imds, TRAIN_ARGS=small_run(1))
        assert rc == EXIT_SUCCEEDED and cloud.keys("runs/mismatch/checkpoints/")
        status = cloud.status("mismatch")
        status.update(state="INTERRUPTED")  # as if the instance had been interrupted
        write_status(cloud.clients.s3, RunLayout(cloud.bucket, "mismatch"), status)
        rc, _ = run_in_process(cloud, tmp_path, "mismatch", imds, name="wider",
                               TRAIN_ARGS=small_run(3).replace("--hidden-units 16", "--hidden-units 32"))
    assert rc == EXIT_FAILED
    error = cloud.status("mismatch")["error"]
    assert error.startswith(f"the checkpoints in s3://{cloud.bucket}/runs/mismatch/checkpoints/ do not fit")


def test_bad_data_fails_with_error_in_status(cloud, tmp_path):
    cloud.clients.s3.put_object(Bucket=cloud.bucket, Key="data/bad.csv", Body=b"foo,bar\n1,2\n3,4\n")
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "bad", imds, DATA_URI=f"s3://{cloud.bucket}/data/bad.csv",
                               TRAIN_ARGS=small_run(2))
    assert rc == EXIT_FAILED
    status = cloud.status("bad")
    assert status["state"] == "FAILED" and status["attempts"][0]["end_state"] == "FAILED"
    assert status["error"].startswith(f"s3://{cloud.bucket}/data/bad.csv: ") and "\n" not in status["error"]
    log_text = cloud.read("runs/bad/logs/attempt-0001.log").decode()
    assert status["error"] in log_text
    assert cloud.desired() == 0


def test_max_runtime_and_out_of_band_stop(cloud, tmp_path):
    """Past maxRuntimeHours: STOPPED with the reason, checkpoints kept, capacity 0. Same for `stop`."""
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "capped", imds, MAX_RUNTIME_HOURS=str(12 / 3600),
                               TRAIN_ARGS=small_run(UNTIL_STOPPED))
        assert rc == EXIT_STOPPED
        status = cloud.status("capped")
        assert status["state"] == "STOPPED" and "max runtime" in status["reason"]
        assert 0 < status["last_epoch"] < UNTIL_STOPPED
        assert cloud.keys("runs/capped/checkpoints/") and not cloud.keys("runs/capped/artifacts/")
        assert cloud.desired() == 0

        # `python -m training stop` writes STOPPED while the runner trains: the runner keeps it and exits.
        cloud.set_desired(1)
        layout = RunLayout(cloud.bucket, "stopped")

        def stop_after_epoch_one():
            wait_for(lambda: (cloud.status("stopped") or {}).get("last_epoch", 0) >= 1, 120, what="epoch 1")
            status = cloud.status("stopped")
            status.update(state="STOPPED", reason="stopped by alice")
            write_status(cloud.clients.s3, layout, status)

        stopper = threading.Thread(target=stop_after_epoch_one)
        stopper.start()
        rc, _ = run_in_process(cloud, tmp_path, "stopped", imds, name="stopped", TRAIN_ARGS=small_run(UNTIL_STOPPED))
        stopper.join()
    assert rc == EXIT_STOPPED
    status = cloud.status("stopped")
    assert status["state"] == "STOPPED" and status["reason"] == "stopped by alice"
    assert status["attempts"][0]["end_state"] == "STOPPED" and status["last_epoch"] < UNTIL_STOPPED
    assert cloud.desired() == 0


def test_sigterm_checkpoints_and_leaves_the_group_to_replace(cloud, tmp_path):
    """A shutdown without a notice (SIGTERM) is handled like one: INTERRUPTED, capacity left at 1."""
    def terminate_after_epoch_one():
        wait_for(lambda: (cloud.status("term") or {}).get("last_epoch", 0) >= 1, 120, what="epoch 1")
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_after_epoch_one)
    before = signal.getsignal(signal.SIGTERM)
    with FakeImds() as imds:
        killer.start()
        rc, _ = run_in_process(cloud, tmp_path, "term", imds, TRAIN_ARGS=small_run(UNTIL_STOPPED))
        killer.join()
    assert rc == EXIT_INTERRUPTED
    status = cloud.status("term")
    assert status["state"] == "INTERRUPTED" and "SIGTERM" in status["reason"]
    epoch = json.loads(cloud.read("runs/term/checkpoints/training_metadata.json"))["epoch"]
    assert epoch == status["last_epoch"] >= 1
    assert cloud.desired() == 1
    assert signal.getsignal(signal.SIGTERM) == before  # restored
