"""The on-instance runner for real: small model, synthetic data, moto server, fake metadata service."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from tests.training.cloud.fake_imds import FakeImds
from tests.training.cloud.flaky import FlakyS3
from tests.training.cloud.moto_server import wait_for
from training.cloud import runner as runner_module
from training.cloud.core import clock, lifecycle
from training.cloud.core.layout import RunLayout
from training.cloud.core.lifecycle import RunnerExit
from training.cloud.core.status_store import StatusStore
from training.cloud.run_settings import load_settings
from training.cloud.runner import EXIT_UNRECORDED, Runner
from training.run_record import git_commit

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
    head = git_commit()  # the commit this checkout runs (None outside a git checkout)
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "full", imds, TRAIN_ARGS=small_run(3), GIT_REF="main",
                               GIT_COMMIT=head or "", ALLOW_UNPUSHED_CODE="true")
    assert rc == RunnerExit.SUCCEEDED
    code = {"git_ref": "main", "git_commit": head, "allow_unpushed_code": True}
    assert cloud.status("full")["code"] == code and cloud.status("full")["attempts"][0]["git_commit"] == head
    run_json = json.loads(cloud.read("runs/full/artifacts/run.json"))
    assert run_json["cloud"]["code"] == code and run_json["git_commit"] == head
    assert len(flaky[0].failed) == 8 and {"PutObject", "GetObject"} & set(flaky[0].failed)
    status = cloud.status("full")
    assert status["state"] == "SUCCEEDED" and status["error"] is None
    assert status["attempt"] == 1 and status["epochs"] == 3 and status["last_epoch"] == 3
    assert status["failed_in_a_row"] == 0 and status["failed_step"] is None and status["log_tail"] is None
    assert epochs_by_attempt(status) == [[0, 1, 2]]
    attempt = status["attempts"][0]
    assert attempt["end_state"] == "SUCCEEDED" and attempt["instance_type"] == "c5.large"
    assert attempt["lifecycle"] == "spot" and attempt["availability_zone"] == "us-east-1a"
    assert attempt["ended_at"] >= attempt["started_at"] and status["heartbeat_at"]
    assert set(status["validation"]) >= {"loss", "accuracy"}
    artifacts = {k[len("runs/full/artifacts/"):] for k in cloud.keys("runs/full/artifacts/")}
    assert {name for name in artifacts if "/" not in name} == ARTIFACTS
    assert {name.split("/")[0] for name in artifacts if "/" in name} <= {"tensorboard"}  # its event files
    run_info = json.loads(cloud.read("runs/full/artifacts/run.json"))
    assert run_info["epochs_trained"] == 3 and run_info["cloud"]["attempts"][0]["attempt"] == 1
    assert json.loads(cloud.read("runs/full/artifacts/metrics.json"))["test"]["accuracy"] > 0
    assert cloud.keys("runs/full/logs/") == ["runs/full/logs/attempt-0001.log"]
    log_text = cloud.read("runs/full/logs/attempt-0001.log").decode()
    assert "epoch 3/3" in log_text and "attempt 1 ended SUCCEEDED; run SUCCEEDED" in log_text
    events = cloud.clients.logs.get_log_events(logGroupName=cloud.log_group, logStreamName="full/attempt-0001",
                                               startFromHead=True)["events"]
    assert any("epoch 3/3" in e["message"] for e in events)
    assert cloud.desired() == 0

    # A late replacement after SUCCEEDED only scales the group to 0.
    cloud.set_desired(1)
    with FakeImds(instance_id="i-0late") as imds:
        rc, _ = run_in_process(cloud, tmp_path, "full", imds, name="late", TRAIN_ARGS=small_run(3))
    assert rc == RunnerExit.SUCCEEDED
    assert cloud.desired() == 0
    assert cloud.status("full") == status  # not rewritten
    assert cloud.keys("runs/full/logs/") == ["runs/full/logs/attempt-0001.log"]


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
        checkpointed = json.loads(cloud.read("scratch/kill/checkpoints/training_metadata.json"))["epoch"]
        assert cloud.status("kill")["state"] == "RUNNING"
        rc, _ = run_in_process(cloud, tmp_path, "kill", imds, name="restart", TRAIN_ARGS=small_run(epochs))
    assert rc == RunnerExit.SUCCEEDED
    status = cloud.status("kill")
    lost, resumed = status["attempts"]
    assert lost["end_state"] == "LOST" and lost["ended_at"]
    assert lost["ended_at"] == lost["last_seen_at"]  # billed up to its last sign of life, not to the restart
    assert status["failed_in_a_row"] == 0  # the lost attempt counted, the success reset the count
    assert resumed["epochs_completed"] == list(range(checkpointed, epochs))
    assert checkpointed >= 1
    run_info = json.loads(cloud.read("runs/kill/artifacts/run.json"))
    assert run_info["epochs_trained"] == epochs and len(run_info["history"]["loss"]) == epochs
    assert cloud.desired() == 0


def test_unusable_bucket_exits_unrecorded_for_the_user_data(cloud, tmp_path, monkeypatch, capfd):
    """No status can be read or written (missing bucket): one line, and an exit status that is no RunnerExit
    (nor Python's 1 or 2), so the user data's boot kit records the attempt CRASHED itself, or sets the capacity
    to 0 where it cannot either (see test_boot_report.py)."""
    monkeypatch.setattr(cloud, "bucket", "spotgrade-no-such-bucket")
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "nobucket", imds, TRAIN_ARGS=small_run(1))
    assert rc == EXIT_UNRECORDED and rc not in {int(code) for code in RunnerExit} | {1, 2}
    [line] = [line for line in capfd.readouterr().err.splitlines() if "before the attempt could be recorded" in line]
    assert "NoSuchBucket" in line
    assert cloud.desired() == 1  # the runner recorded nothing and leaves the group to the user data


def test_checkpoint_of_another_model_fails_clearly(cloud, tmp_path):
    """Checkpoints written with other flags (here: wider layers) cannot be resumed: FAILED, one clear line."""
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "mismatch", imds, TRAIN_ARGS=small_run(1))
        assert rc == RunnerExit.SUCCEEDED and cloud.keys("scratch/mismatch/checkpoints/")
        status = cloud.status("mismatch")
        status.update(state="INTERRUPTED")  # as if the instance had been interrupted
        StatusStore(cloud.clients.s3, RunLayout(cloud.bucket, "mismatch")).change(lambda _: status)
        rc, _ = run_in_process(cloud, tmp_path, "mismatch", imds, name="wider",
                               TRAIN_ARGS=small_run(3).replace("--hidden-units 16", "--hidden-units 32"))
    assert rc == RunnerExit.FAILED
    status = cloud.status("mismatch")
    error = status["error"]
    assert error.startswith(f"the checkpoints in s3://{cloud.bucket}/scratch/mismatch/checkpoints/ do not fit")
    assert status["state"] == "FAILED" and status["failed_step"] == "runner: training"
    assert status["attempts"][-1]["end_state"] == "FAILED"
    assert any("do not fit" in line for line in status["log_tail"])
    assert cloud.desired() == 0


def test_bad_data_fails_with_error_in_status(cloud, tmp_path):
    cloud.clients.s3.put_object(Bucket=cloud.bucket, Key="data/bad.csv", Body=b"foo,bar\n1,2\n3,4\n")
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "bad", imds, DATA_URI=f"s3://{cloud.bucket}/data/bad.csv",
                               TRAIN_ARGS=small_run(2))
    assert rc == RunnerExit.FAILED
    status = cloud.status("bad")
    assert status["state"] == "FAILED" and status["attempts"][0]["end_state"] == "FAILED"
    assert status["error"].startswith(f"s3://{cloud.bucket}/data/bad.csv: ") and "\n" not in status["error"]
    assert status["failed_step"].startswith("runner: ")
    assert 0 < len(status["log_tail"]) <= lifecycle.LOG_TAIL_LINES
    assert any(status["error"] in line for line in status["log_tail"])
    log_text = cloud.read("runs/bad/logs/attempt-0001.log").decode()
    assert status["error"] in log_text
    assert cloud.desired() == 0


def test_max_runtime_and_out_of_band_stop(cloud, tmp_path):
    """Past maxRuntimeHours: STOPPED with the reason, checkpoints kept, capacity 0. Same for `stop`."""
    with FakeImds() as imds:
        rc, _ = run_in_process(cloud, tmp_path, "capped", imds, MAX_RUNTIME_HOURS=str(12 / 3600),
                               TRAIN_ARGS=small_run(UNTIL_STOPPED))
        assert rc == RunnerExit.STOPPED
        status = cloud.status("capped")
        assert status["state"] == "STOPPED" and "max runtime" in status["reason"]
        assert 0 < status["last_epoch"] < UNTIL_STOPPED
        assert cloud.keys("scratch/capped/checkpoints/") and not cloud.keys("runs/capped/artifacts/")
        assert cloud.desired() == 0

        # `python -m training stop` writes STOPPED while the runner trains: the runner keeps it and exits.
        cloud.set_desired(1)
        layout = RunLayout(cloud.bucket, "stopped")

        def stop_after_epoch_one():
            wait_for(lambda: (cloud.status("stopped") or {}).get("last_epoch", 0) >= 1, 120, what="epoch 1")
            StatusStore(cloud.clients.s3, layout).change(lambda s: lifecycle.stop(
                s, run_id="stopped", state=lifecycle.STOPPED, reason="stopped by alice", now=clock.utc_now()))

        stopper = threading.Thread(target=stop_after_epoch_one)
        stopper.start()
        rc, _ = run_in_process(cloud, tmp_path, "stopped", imds, name="stopped", TRAIN_ARGS=small_run(UNTIL_STOPPED))
        stopper.join()
    assert rc == RunnerExit.STOPPED
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
    assert rc == RunnerExit.INTERRUPTED
    status = cloud.status("term")
    assert status["state"] == "INTERRUPTED" and "SIGTERM" in status["reason"]
    epoch = json.loads(cloud.read("scratch/term/checkpoints/training_metadata.json"))["epoch"]
    assert epoch == status["last_epoch"] >= 1
    assert cloud.desired() == 1
    assert signal.getsignal(signal.SIGTERM) == before  # restored


def run_with_train_fn(cloud, tmp_path, run_id, imds, train_fn, name="attempt", **extra) -> tuple[int, Runner]:
    """One attempt in process with a stand-in for training.train.train (no model is trained)."""
    env_file = cloud.write_env_file(tmp_path / f"{name}.env", run_id, imds.url, tmp_path / name,
                                    TRAIN_ARGS=small_run(3), **extra)
    runner = Runner(load_settings(env_file, environ={}), train_fn=train_fn)
    return runner.run(), runner


def crash(config, **_):
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_crashed_attempts_retry_then_fail_at_max_attempts(cloud, tmp_path):
    """An unexpected error: the attempt is CRASHED and the run RETRYING (exit RETRY, the group replaces the
    instance); at maxAttempts failed attempts in a row the run is FAILED and the group goes to 0."""
    with FakeImds(instance_id="i-0first") as imds:
        rc, _ = run_with_train_fn(cloud, tmp_path, "crashy", imds, crash, MAX_ATTEMPTS="2")
    assert rc == RunnerExit.RETRY
    status = cloud.status("crashy")
    assert (status["state"], status["failed_in_a_row"], status["max_attempts"]) == ("RETRYING", 1, 2)
    [first] = status["attempts"]
    assert (first["end_state"], first["instance_id"]) == ("CRASHED", "i-0first") and first["billable_seconds"] >= 60
    assert status["reason"] == "step 'training': RuntimeError: CUDA error: an illegal memory access was encountered"
    assert any("Traceback" in line or "RuntimeError" in line for line in status["log_tail"])
    assert cloud.desired() == 1
    assert cloud.keys("runs/crashy/logs/") == ["runs/crashy/logs/attempt-0001.log"]

    with FakeImds(instance_id="i-0second") as imds:
        rc, _ = run_with_train_fn(cloud, tmp_path, "crashy", imds, crash, name="second", MAX_ATTEMPTS="2")
    assert rc == RunnerExit.FAILED
    status = cloud.status("crashy")
    assert (status["state"], status["failed_in_a_row"], status["failed_step"]) == ("FAILED", 2, "attempts")
    assert status["error"].startswith("2 attempts in a row failed (maxAttempts=2); last: step 'training'")
    assert [a["end_state"] for a in status["attempts"]] == ["CRASHED", "CRASHED"]
    assert cloud.desired() == 0

    cloud.set_desired(1)  # a late replacement: the run is over
    with FakeImds(instance_id="i-0third") as imds:
        rc, _ = run_with_train_fn(cloud, tmp_path, "crashy", imds, crash, name="third", MAX_ATTEMPTS="2")
    assert rc == RunnerExit.SUCCEEDED and cloud.desired() == 0
    assert cloud.status("crashy") == status


def test_heartbeat_follows_training_progress_not_the_clock(cloud, tmp_path):
    """The heartbeat is written only while training advances: a stalled attempt lets it go stale (the watchdog
    then sees the run HUNG), however long the runner itself stays alive."""
    seen: dict[str, dict] = {}

    def stalls(config, *, log, **_):
        for i in range(3):
            log(f"step {i}")
        time.sleep(2.5)  # heartbeat_seconds is 1: the progress above is written
        seen["after_progress"] = cloud.status("stall")
        time.sleep(3.5)  # no progress at all
        seen["after_stall"] = cloud.status("stall")
        raise RuntimeError("gave up")

    with FakeImds() as imds:
        rc, _ = run_with_train_fn(cloud, tmp_path, "stall", imds, stalls)
    assert rc == RunnerExit.RETRY
    progressed, stalled = seen["after_progress"], seen["after_stall"]
    assert progressed["state"] == "RUNNING" and progressed["progress"] > 0 and progressed["heartbeat_at"]
    assert (stalled["progress"], stalled["heartbeat_at"]) == (progressed["progress"], progressed["heartbeat_at"])
    assert stalled["attempts"][-1]["last_seen_at"] == progressed["attempts"][-1]["last_seen_at"]


def test_bad_train_flags_name_the_env_key(tmp_path):
    from training.cloud.runner import train_config
    from training.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        train_config(["--epochs", "0"], data=None, output_dir=tmp_path, run_id="r")
    assert str(info.value) == ("SPOTGRADE_TRAIN_ARGS '--epochs 0': python -m training train: error: argument "
                               "--epochs: must be a positive integer, got 0")
    config = train_config(["--epochs", "2"], data=["a.csv"], output_dir=tmp_path, run_id="r")
    assert (config.epochs, config.data, config.output_dir, config.run_id) == (2, ["a.csv"], tmp_path, "r")


def test_the_runner_keeps_the_parsed_data_on_the_instance(tmp_path):
    """The work dir's cache, so a later attempt on the instance reads the data parsed; the flags decide first."""
    from training.cloud.runner import train_config

    def cache_dir(*flags):
        return train_config(list(flags), data=["a.csv"], output_dir=tmp_path, run_id="r",
                            cache_dir=tmp_path / "cache").cache_dir

    assert cache_dir() == tmp_path / "cache"
    assert cache_dir("--no-cache") is None
    assert cache_dir("--cache-dir", str(tmp_path / "mine")) == tmp_path / "mine"
