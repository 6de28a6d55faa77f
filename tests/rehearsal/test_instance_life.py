"""The instance's whole life, rehearsed: the rendered user data, the real runner and training code, emulated AWS.

Each scenario deploys its own run (a stack created in moto from the synthesized template), boots instances that
run the user data exactly as CloudFormation rendered it (see conftest.py for what is replaced), and asserts on
the emulated AWS state (status.json and objects in S3, the group's desired capacity, SNS notifications, log
streams) and on the shims' calls (shutdown = the instance powered off). Lines starting with MEASURED are the
figures of the closing note (`pytest -m rehearsal -s`).

The spot scenario comes first: its first boot installs the environment from the package index and packs it;
the later scenarios start from a copy of that pack (seed_environment), as a replacement instance would. The file
runs on one worker, in order (`make test` uses pytest-xdist's --dist loadfile).
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.rehearsal.harness import CPU_REQUIREMENTS, Deployed, Rehearsal, small_run, wait_for
from training.cloud.core import lifecycle, watchdog
from training.cloud.core.lifecycle import RunnerExit

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
ARTIFACTS = {"model.keras", "metrics.json", "run.json", "report.md", "confusion_matrix.png", "history.png",
             "reliability.png", "importance.png"}


def shutdowns(rehearsal: Rehearsal, since: float) -> list[dict]:
    return [c for c in rehearsal.calls(since) if c["cmd"] in ("shutdown", "poweroff")]


def env_seconds(log: str) -> str:
    match = re.search(r"environment (installed from the package index|restored from \S+) in (\d+) s", log)
    return f"{match.group(2)} s ({'installed' if 'installed' in match.group(1) else 'restored'})" if match else "?"


def test_spot_interruption_resumes_on_a_replacement(rehearsal: Rehearsal) -> None:
    epochs = 12
    run = rehearsal.deploy("spot", trainArgs=small_run(epochs, sample=3000))
    since = time.time()
    first = rehearsal.boot(run, "i-0a000000000000001")
    first.watch_first_epoch(1)
    first.until(lambda: (rehearsal.status(run) or {}).get("last_epoch", 0) >= 2, 900, "epoch 2 of the first attempt")
    first.imds.notice()
    noticed = time.monotonic()
    wait_for(lambda: rehearsal.status(run)["state"] == lifecycle.INTERRUPTED, 120, interval=0.05,
             what="INTERRUPTED")
    notice_to_interrupted = time.monotonic() - noticed
    assert first.wait(120) == 0, first.log()[-3000:]
    status = rehearsal.status(run)
    [attempt] = status["attempts"]
    done = attempt["epochs_completed"]
    assert attempt["end_state"] == lifecycle.INTERRUPTED and "spot interruption" in status["reason"]
    assert 2 <= len(done) < epochs and done == list(range(len(done)))
    checkpoint = json.loads(rehearsal.client("s3").get_object(
        Bucket=run.bucket, Key=rehearsal.layout(run).checkpoint_key("training_metadata.json"))["Body"].read())
    assert checkpoint["epoch"] == len(done) == status["last_epoch"]
    assert rehearsal.desired(run) == 1  # the group replaces the instance
    assert shutdowns(rehearsal, since) == []  # the platform reclaims it; the script does not power off
    assert "interrupted; the checkpoint is in S3" in first.log()
    first_packs = rehearsal.note_packs(run)
    assert len(first_packs) == 1 and first.index_bytes > 100_000_000  # installed from the index, then packed

    since = time.time()
    second = rehearsal.boot(run, "i-0a000000000000002", zone="us-east-1b")
    second.watch_first_epoch(2)
    assert second.wait(900) == 0, second.log()[-3000:]
    assert second.index_bytes == 0  # the replacement fetched nothing from the package index
    assert "environment restored from" in second.log()
    status = rehearsal.status(run)
    first_epochs, second_epochs = (a["epochs_completed"] for a in status["attempts"])
    assert first_epochs + second_epochs == list(range(epochs))  # the epoch cut short was redone, nothing else
    assert status["state"] == lifecycle.SUCCEEDED and status["attempts"][1]["availability_zone"] == "us-east-1b"
    assert [a["instance_id"] for a in status["attempts"]] == ["i-0a000000000000001", "i-0a000000000000002"]
    for entry in status["attempts"]:
        assert entry["billable_seconds"] >= 60 and entry["estimated_cost"] == pytest.approx(
            entry["spot_price"] * entry["billable_seconds"] / 3600, rel=1e-3, abs=1e-6)  # moto's prices are tiny
    assert rehearsal.desired(run) == 0 and len(shutdowns(rehearsal, since)) == 1
    run_info = json.loads(rehearsal.artifact(run, "run.json"))
    assert run_info["epochs_trained"] == epochs and len(run_info["cloud"]["attempts"]) == 2
    print(f"\nMEASURED spot: notice -> checkpoint in S3 and INTERRUPTED recorded: {notice_to_interrupted:.2f} s; "
          f"epochs lost: {len(first_epochs) + len(second_epochs) - epochs} completed (the epoch in progress, "
          f"{len(first_epochs) + 1}, was redone)")
    print(f"MEASURED boot: first attempt: {first.index_bytes:,} bytes from the package index, environment "
          f"{env_seconds(first.log())}, boot to first epoch {first.first_epoch_s:.1f} s; replacement: "
          f"{second.index_bytes} bytes from the index, environment {env_seconds(second.log())}, boot to first "
          f"epoch {second.first_epoch_s:.1f} s")


def assert_artifacts(rehearsal: Rehearsal, run: Deployed, prefix: str) -> None:
    """The run's artifacts in S3: the files of a training run, and its TensorBoard logs in tensorboard/."""
    names = {key[len(prefix):] for key in rehearsal.keys(run, prefix)}
    assert {name for name in names if "/" not in name} == ARTIFACTS
    assert any(name.startswith("tensorboard/") for name in names), sorted(names)


def test_success(rehearsal: Rehearsal) -> None:
    run = rehearsal.deploy("ok", trainArgs=small_run(3))
    seeded = rehearsal.seed_environment(run)
    since = time.time()
    boot = rehearsal.boot(run, "i-0b000000000000001")
    assert boot.wait(600) == 0, boot.log()[-3000:]
    status = rehearsal.status(run)
    assert status["state"] == lifecycle.SUCCEEDED and status["last_epoch"] == 3 and status["error"] is None
    assert_artifacts(rehearsal, run, rehearsal.layout(run).artifacts_prefix)
    run_info = json.loads(rehearsal.artifact(run, "run.json"))
    assert run_info["cloud"]["attempts"][0]["instance_id"] == "i-0b000000000000001"
    assert rehearsal.desired(run) == 0  # released
    assert [c["args"] for c in shutdowns(rehearsal, since)] == [["-h", "now"]]
    assert (boot.index_bytes == 0) == seeded  # (unseeded where this scenario runs alone)
    streams = rehearsal.log_streams(run)
    assert any("bootstrap of run ok starting" in line for line in streams["ok/boot-i-0b000000000000001"])
    assert any("epoch 3/3" in line for line in streams["ok/attempt-0001"])
    [message] = rehearsal.notifications(run)
    assert "Run ok: SUCCEEDED" in message and "test metrics" in message


def _boot_failure(rehearsal: Rehearsal, run_id: str, instance_id: str, *, requirements: str = CPU_REQUIREMENTS,
                  seed: bool = False, **context: str) -> tuple:
    run = rehearsal.deploy(run_id, **context)
    if seed:
        rehearsal.seed_environment(run)
    since = time.time()
    boot = rehearsal.boot(run, instance_id, requirements=requirements)
    rc = boot.wait(600)
    status = rehearsal.status(run)
    assert status["state"] == lifecycle.FAILED, boot.log()[-3000:]
    assert rehearsal.desired(run) == 0 and len(shutdowns(rehearsal, since)) == 1
    [message] = rehearsal.notifications(run)
    assert f"Run {run_id}: FAILED" in message and status["error"] in message
    assert status["log_tail"] and len(status["log_tail"]) <= lifecycle.LOG_TAIL_LINES
    streams = rehearsal.log_streams(run)
    [boot_stream] = [s for s in streams if s.startswith(f"{run_id}/boot-")]
    assert any("powering off" in line for line in streams[boot_stream])  # shipped to its last line
    shown = rehearsal.cli(run, "status")
    assert shown.returncode == 0, shown.stderr
    logs = rehearsal.cli(run, "logs")
    assert logs.returncode == 0 and "bootstrap of run" in logs.stdout, logs.stderr
    follow = rehearsal.cli(run, "logs", "--follow", timeout=60)  # ends: the run is over
    assert follow.returncode == 0, follow.stderr
    print(f"\nMEASURED {run_id}: `python -m training status` says:\n{shown.stdout}")
    return run, boot, rc, status, shown.stdout, boot_stream


def test_boot_failure_ref_that_does_not_exist(rehearsal: Rehearsal) -> None:
    run, boot, rc, status, shown, _ = _boot_failure(rehearsal, "badref", "i-0c000000000000001", gitRef="no-such-branch")
    assert rc != 0
    assert status["failed_step"] == "clone" and "no-such-branch" in status["error"]
    assert "failed at:  clone" in shown and "no-such-branch" in shown
    assert rehearsal.keys(run, rehearsal.layout(run).logs_prefix) == [
        rehearsal.layout(run).boot_log_key(status["attempts"][0]["instance_id"])]


def test_boot_failure_requirement_pip_cannot_install(rehearsal: Rehearsal) -> None:
    broken = rehearsal.work / "requirements-broken.txt"
    broken.write_text(f"spotgrade-no-such-package==1.0\n-r {rehearsal.root}/opt/spotgrade/src/{CPU_REQUIREMENTS}\n")
    _, boot, rc, status, shown, _ = _boot_failure(rehearsal, "badpip", "i-0c000000000000002", requirements=str(broken))
    assert rc != 0
    assert status["failed_step"] == "pip install" and "spotgrade-no-such-package" in status["error"]
    assert "failed at:  pip install" in shown


def test_boot_failure_runner_configuration_error(rehearsal: Rehearsal) -> None:
    """A setting only training itself can refuse (synth parses trainArgs with train's parser, so a malformed flag
    never reaches an instance): `--sample 5` parses, and train() refuses it as a user error."""
    _, boot, rc, status, shown, _ = _boot_failure(rehearsal, "badargs", "i-0c000000000000003", seed=True,
                                                  trainArgs="--sample 5")
    assert rc == 0  # the runner recorded the failure itself (RunnerExit.FAILED) and the script powered off
    assert status["failed_step"] == "runner: training"
    assert "sample must be at least" in status["error"] and "got 5" in status["error"]
    assert "failed at:  runner: training" in shown and "sample must be at least" in shown


def test_stop_during_training_then_resume(rehearsal: Rehearsal) -> None:
    epochs = 40  # the stop lands mid-run however fast the machine trains
    run = rehearsal.deploy("stop", trainArgs=small_run(epochs, sample=3000))
    rehearsal.seed_environment(run)
    since = time.time()
    first = rehearsal.boot(run, "i-0d000000000000001")
    first.until(lambda: (rehearsal.status(run) or {}).get("last_epoch", 0) >= 2, 600, "epoch 2")
    stopped = rehearsal.cli(run, "stop")
    assert stopped.returncode == 0 and "STOPPED" in stopped.stdout, stopped.stderr
    assert first.wait(120) == 0, first.log()[-3000:]
    assert "runner exited with status %d" % RunnerExit.STOPPED in first.log()
    status = rehearsal.status(run)
    done = status["attempts"][0]["epochs_completed"]
    assert status["state"] == lifecycle.STOPPED and "stopped by the user" in status["reason"]
    assert 2 <= len(done) < epochs and status["attempts"][0]["end_state"] == lifecycle.STOPPED
    assert rehearsal.desired(run) == 0 and len(shutdowns(rehearsal, since)) == 1
    checkpoints = rehearsal.layout(run).checkpoints_prefix
    assert rehearsal.layout(run).checkpoint_key("training_metadata.json") in rehearsal.keys(run, checkpoints)

    resumed = rehearsal.cli(run, "resume")
    assert resumed.returncode == 0 and "resuming from epoch" in resumed.stdout, resumed.stderr
    assert rehearsal.status(run)["state"] == lifecycle.PENDING and rehearsal.desired(run) == 1
    second = rehearsal.boot(run, "i-0d000000000000002")
    assert second.wait(900) == 0, second.log()[-3000:]
    status = rehearsal.status(run)
    first_epochs, second_epochs = (a["epochs_completed"] for a in status["attempts"])
    assert first_epochs + second_epochs == list(range(epochs))  # continued from the checkpoint, nothing redone
    assert status["state"] == lifecycle.SUCCEEDED
    assert rehearsal.desired(run) == 0


def test_stalled_training_is_hung_by_the_watchdog(rehearsal: Rehearsal) -> None:
    run = rehearsal.deploy("stall", trainArgs=small_run(30))
    rehearsal.seed_environment(run)
    boot = rehearsal.boot(run, "i-0e000000000000001", env={"SPOTGRADE_TEST_STALL_AT_EPOCH": "2"})
    try:
        boot.until(lambda: (rehearsal.status(run) or {}).get("last_epoch", 0) >= 2, 600, "epoch 2")
        time.sleep(2)
        stalled = rehearsal.status(run)
        time.sleep(5)  # five heartbeat periods: a clock-driven heartbeat would have moved
        later = rehearsal.status(run)
        assert later["heartbeat_at"] == stalled["heartbeat_at"] and later["progress"] == stalled["progress"]
        assert later["state"] == lifecycle.RUNNING and boot.process.poll() is None

        settings = watchdog.Settings.from_env(run.watchdog_env)
        clients = [rehearsal.client(n) for n in ("s3", "autoscaling", "ec2", "sns")]
        now = datetime.now(timezone.utc)
        assert watchdog.check(*clients, settings, now=now)["action"] == "none"  # still inside the grace periods
        later_on = now + timedelta(minutes=max(settings.heartbeat_minutes, settings.boot_grace_minutes) + 1)
        result = watchdog.check(*clients, settings, now=later_on)
        assert result["action"] == "scaled_to_zero" and result["event"] == "HUNG"
        status = rehearsal.status(run)
        assert status["state"] == lifecycle.HUNG and "no progress" in status["reason"]
        assert status["attempts"][0]["end_state"] == lifecycle.HUNG
        assert rehearsal.desired(run) == 0
        assert any("HUNG" in m for m in rehearsal.notifications(run))
    finally:
        boot.kill()  # the group at 0 terminates the instance


def test_crash_loop_fails_after_max_attempts(rehearsal: Rehearsal) -> None:
    """Three failed attempts in a row: the runner killed (the user data records it), an unexpected error in the
    runner (it records it and exits RETRY), killed again: FAILED, whatever the time cap."""
    run = rehearsal.deploy("crash", trainArgs=small_run(1000))
    rehearsal.seed_environment(run)
    s3 = rehearsal.client("s3")
    # A checkpoint prefix the runner cannot mirror (a key that is both a file and a folder): an OSError, not a
    # user error, so the runner records the attempt CRASHED itself.
    broken = [rehearsal.layout(run).checkpoint_key(name) for name in ("broken", "broken/part")]
    for attempt, crash in ((1, "killed"), (2, "error"), (3, "killed")):
        since = time.time()
        if crash == "error":
            for key in broken:
                s3.put_object(Bucket=run.bucket, Key=key, Body=b"x")
        boot = rehearsal.boot(run, f"i-0f00000000000000{attempt}")
        if crash == "killed":
            boot.until(lambda n=attempt: (rehearsal.status(run) or {}).get("attempt") == n, 600, f"attempt {attempt}")
            pid = wait_for(boot.runner_pid, 30, what="the runner pid")
            os.kill(pid, signal.SIGKILL)  # the kernel's OOM killer, say
        assert boot.wait(300) == 0, boot.log()[-3000:]
        status = rehearsal.status(run)
        last = status["attempts"][-1]
        assert last["end_state"] == "CRASHED" and len(status["attempts"]) == attempt
        if crash == "killed":
            assert "killed by signal 9" in (status.get("reason") or status.get("error") or "")
        else:
            assert f"runner exited with status {int(RunnerExit.RETRY)}" in boot.log()
            assert "step 'checkpoints'" in (status.get("reason") or status.get("error") or "")
            for key in broken:
                s3.delete_object(Bucket=run.bucket, Key=key)
        assert len(shutdowns(rehearsal, since)) == 1
        if attempt < 3:
            assert status["state"] == lifecycle.RETRYING and rehearsal.desired(run) == 1
    assert status["state"] == lifecycle.FAILED and status["failed_in_a_row"] == 3
    assert "3 attempts in a row failed" in status["error"] and rehearsal.desired(run) == 0
    assert run.watchdog_env["SPOTGRADE_MAX_RUNTIME_HOURS"] == "8"  # far from the time cap


def test_two_runs_train_at_once(rehearsal: Rehearsal) -> None:
    """Two run stacks of the one shared stack, their instances booting at the same time: both SUCCEEDED, and each
    run's status, artifacts, logs, group and notifications are its own; run control tells them apart by --run-id."""
    epochs = {"twin-a": 2, "twin-b": 3}
    runs = {run_id: rehearsal.deploy(run_id, trainArgs=small_run(n)) for run_id, n in epochs.items()}
    a, b = runs.values()
    assert (a.bucket, a.topic_arn) == (b.bucket, b.topic_arn) and a.group != b.group  # shared bucket and topic
    for run in runs.values():
        rehearsal.seed_environment(run)  # (installed from the package index where this scenario runs alone)
    since = time.time()
    boots = {run_id: rehearsal.boot(run, f"i-09{n:015d}", root=rehearsal.work / f"instance-{run_id}")
             for n, (run_id, run) in enumerate(runs.items(), 1)}
    for run_id, boot in boots.items():
        assert boot.wait(900) == 0, f"{run_id}:\n{boot.log()[-3000:]}"
    assert len(shutdowns(rehearsal, since)) == 2
    for n, (run_id, run) in enumerate(runs.items(), 1):
        status = rehearsal.status(run)
        assert status["state"] == lifecycle.SUCCEEDED and status["last_epoch"] == epochs[run_id]
        assert [a["instance_id"] for a in status["attempts"]] == [f"i-09{n:015d}"]
        layout = rehearsal.layout(run)
        assert_artifacts(rehearsal, run, layout.artifacts_prefix)
        assert json.loads(rehearsal.artifact(run, "run.json"))["epochs_trained"] == epochs[run_id]
        assert rehearsal.desired(run) == 0
        streams = rehearsal.log_streams(run)
        assert streams and all(stream.startswith(f"{run_id}/") for stream in streams)
        assert any(f"epoch {epochs[run_id]}/{epochs[run_id]}" in line for line in streams[f"{run_id}/attempt-0001"])
        [message] = rehearsal.notifications(run)
        assert f"Run {run_id}: SUCCEEDED" in message

        shown = rehearsal.cli(run, "status")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"run {run_id}  (stack Rehearsal-{run_id}, s3://{run.bucket}/runs/{run_id}/)")
        assert "state:      SUCCEEDED" in shown.stdout
        other = "twin-b" if run_id == "twin-a" else "twin-a"
        logs = rehearsal.cli(run, "logs")
        assert logs.returncode == 0 and f"bootstrap of run {run_id} starting" in logs.stdout, logs.stderr
        assert other not in logs.stdout
        pulled = rehearsal.cli(run, "pull", "--dest", str(rehearsal.work / "pulled"))
        assert pulled.returncode == 0, pulled.stderr
        assert (rehearsal.work / "pulled" / run_id / "model.keras").is_file()
    listed = rehearsal.cli(None, "runs")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    for run_id in epochs:
        assert rows[run_id][1:3] == ["SUCCEEDED", "up"]
    print(f"\nMEASURED two runs at once: {', '.join(f'{r} {b.seconds:.0f} s' for r, b in boots.items())} "
          "from boot to power-off")
