"""The user data's boot kit (training/cloud/core/boot_report.py) as the instance runs it: from a folder holding
only the CloudCode asset's files, with the real `aws` CLI against the moto server and a fake metadata service."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from stacks.cloud_code import asset_files
from tests.training.cloud.core.helpers import PYTHON39, stage_kit
from tests.training.cloud.fake_imds import FakeImds
from training.cloud.core import lifecycle
from training.cloud.core.clock import iso, utc_now
from training.cloud.core.layout import RunLayout
from training.cloud.core.lifecycle import RunnerExit
from training.cloud.core.status_store import StatusStore

VENV_BIN = Path(sys.executable).parent
AWS_CLI = shutil.which("aws", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
pytestmark = pytest.mark.skipif(AWS_CLI is None, reason="no `aws` CLI (awscli is in requirements-dev.txt)")
INSTANCE_ID = "i-0b007f00dcafe0001"
# The kit runs as on the instance: a python3 without the project installed. -S leaves out site-packages, where
# `make install`'s editable install would answer for every `training.*` module the kit does not have.
BARE = ("-S",)
BOOT_LOG = ["spotgrade: bootstrap of run {run} starting 2026-03-01T12:00:00Z",
            "spotgrade: boot kit ready",
            *(f"Receiving objects: {i}%" for i in range(0, 100, 4)),
            "fatal: repository 'https://git.example.com/team/nope.git/' not found",
            "spotgrade: boot step 'clone' failed with exit status 128"]


@pytest.fixture()
def kit(tmp_path: Path) -> Path:
    """The boot kit as the user data unpacks it: the asset's files, nothing else of the project."""
    folder = tmp_path / "kit"
    folder.mkdir()
    return stage_kit(folder)


@pytest.fixture()
def imds():
    with FakeImds(instance_id=INSTANCE_ID, instance_type="g5.xlarge", zone="us-east-1c") as fake:
        yield fake


@pytest.fixture()
def topic(cloud) -> str:
    return cloud.clients.sns.create_topic(Name=f"spotgrade-{cloud.group}")["TopicArn"]


def sent(topic_arn: str) -> list[tuple[str | None, str]]:
    """(subject, message) of what was published to the topic: the moto server runs in this process."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    topic = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].topics[topic_arn]
    return [(subject, message) for _, message, subject, _, _ in topic.sent_notifications]


def write_log(tmp_path: Path, lines: list[str], name: str = "bootstrap.log") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def report(cloud, kit: Path, imds: FakeImds, run_id: str, *args: str, topic: str = "", max_attempts: int = 3,
           python: str = sys.executable) -> subprocess.CompletedProcess:
    """`python3 -m training.cloud.core.boot_report ...` as the user data's report() calls it, in the kit's folder."""
    env = {"PATH": f"{Path(AWS_CLI).parent}{os.pathsep}/usr/bin:/bin", "HOME": str(kit.parent),
           **cloud.aws_env(), "SPOTGRADE_METADATA_URL": imds.url, "PYTHONPATH": str(kit)}
    command = [python, *BARE, "-m", "training.cloud.core.boot_report", "--bucket", cloud.bucket, "--run-id", run_id,
               "--asg-name", cloud.group, "--topic-arn", topic, "--max-attempts", str(max_attempts), *args]
    return subprocess.run(command, cwd=kit, env=env, capture_output=True, text=True, timeout=120)


def test_the_kit_folder_has_only_the_core_package(kit):
    assert sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()) == asset_files()
    code = ("import importlib.util as u, sys, training; "
            "sys.exit(not training.__file__.startswith(sys.argv[1]) or u.find_spec('training.train') is not None "
            "or u.find_spec('training.cloud.run') is not None)")
    done = subprocess.run([sys.executable, *BARE, "-c", code, str(kit)], cwd=kit, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, "the standalone runs below would not prove anything"
    assert importlib.util.find_spec("training.train") is not None  # (while the tests themselves have it)


def test_boot_failed_records_the_step_uploads_the_log_notifies_and_releases_the_group(cloud, kit, imds, topic,
                                                                                      tmp_path):
    lines = [line.format(run="boot1") for line in BOOT_LOG]
    log = write_log(tmp_path, lines)
    started = int(time.time()) - 95
    done = report(cloud, kit, imds, "boot1", "boot-failed", "--step", "clone", "--exit-status", "128",
                  "--log", str(log), "--boot-started", str(started), topic=topic)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FAILED"

    status = cloud.status("boot1")
    assert (status["state"], status["failed_step"], status["attempt"]) == ("FAILED", "clone", 1)
    assert status["error"] == ("boot step 'clone' failed: exit status 128: fatal: repository "
                               "'https://git.example.com/team/nope.git/' not found")  # not spotgrade's own line
    assert status["log_tail"] == lines[-lifecycle.LOG_TAIL_LINES:] and len(lines) > lifecycle.LOG_TAIL_LINES
    assert "could not start the runner" in status["reason"]
    [attempt] = status["attempts"]
    assert (attempt["instance_id"], attempt["instance_type"], attempt["availability_zone"]) == (
        INSTANCE_ID, "g5.xlarge", "us-east-1c")
    assert (attempt["end_state"], attempt["failed_step"]) == ("FAILED", "clone")
    assert attempt["started_at"] == iso(datetime.fromtimestamp(started, timezone.utc))
    assert 95 <= attempt["billable_seconds"] < 95 + 60

    key = RunLayout(cloud.bucket, "boot1").boot_log_key(INSTANCE_ID)
    assert key == f"runs/boot1/logs/boot-{INSTANCE_ID}.log"
    assert cloud.read(key) == log.read_bytes()  # the whole log, not only the tail

    [(subject, message)] = sent(topic)
    assert subject == "spotgrade run boot1: FAILED"
    assert "boot step 'clone' failed" in message and "state: FAILED" in message
    assert cloud.desired() == 0


def test_boot_failed_on_a_run_already_over_changes_nothing_but_the_capacity(cloud, kit, imds, topic, tmp_path):
    layout = RunLayout(cloud.bucket, "over")
    _, before = StatusStore(cloud.clients.s3, layout).change(lambda s: lifecycle.stop(
        s, run_id="over", state=lifecycle.STOPPED, reason="stopped by alice", now=utc_now()))
    done = report(cloud, kit, imds, "over", "boot-failed", "--step", "pip install", "--exit-status", "1",
                  "--log", str(write_log(tmp_path, ["ERROR: No matching distribution found for tensorflow"])),
                  topic=topic)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "STOPPED"
    assert cloud.status("over") == before
    assert sent(topic) == []  # nothing changed: no notification
    assert cloud.desired() == 0


def test_a_killed_runner_is_crashed_and_retried_until_max_attempts(cloud, kit, imds, topic, tmp_path):
    """Exit 137 (SIGKILL, e.g. the OOM killer): the runner's open attempt is CRASHED and the run RETRYING with the
    capacity left to the group; three failed attempts in a row (maxAttempts 3) make the run FAILED, capacity 0."""
    layout = RunLayout(cloud.bucket, "oom")
    instance = {"instance_id": INSTANCE_ID, "instance_type": "g5.xlarge", "availability_zone": "us-east-1c",
                "lifecycle": "spot"}
    StatusStore(cloud.clients.s3, layout).change(lambda s: lifecycle.set_running(lifecycle.start_attempt(
        s, run_id="oom", instance=instance, spot_price=0.4, max_attempts=3, now=utc_now()),
        epochs=10, last_epoch=0, now=utc_now()))
    log = write_log(tmp_path, ["spotgrade: starting the runner", "Killed",
                               "spotgrade: runner exited with status 137 2026-03-01T12:30:00Z"])

    done = report(cloud, kit, imds, "oom", "runner-exited", "--exit-status", "137", "--log", str(log), topic=topic)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "RETRYING"
    status = cloud.status("oom")
    assert (status["state"], status["failed_in_a_row"], status["reason"]) == (
        "RETRYING", 1, "the runner was killed by signal 9")
    [attempt] = status["attempts"]  # the runner's own attempt, closed: none added
    assert (attempt["end_state"], attempt["instance_id"], attempt["spot_price"]) == ("CRASHED", INSTANCE_ID, 0.4)
    assert status["log_tail"][-2:] == ["Killed", "spotgrade: runner exited with status 137 2026-03-01T12:30:00Z"]
    assert cloud.desired() == 1  # the group replaces the instance (which powers off)
    assert [subject for subject, _ in sent(topic)] == ["spotgrade run oom: RETRYING"]

    for expected in ("RETRYING", "FAILED"):  # replacements that die before the runner opens an attempt
        done = report(cloud, kit, imds, "oom", "runner-exited", "--exit-status", "137", "--log", str(log),
                      "--boot-started", f"{time.time() - 30:.0f}", topic=topic)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
        assert cloud.desired() == (1 if expected == "RETRYING" else 0)
    status = cloud.status("oom")
    assert (status["state"], status["failed_in_a_row"], status["failed_step"]) == ("FAILED", 3, "attempts")
    assert status["error"] == ("3 attempts in a row failed (maxAttempts=3); last: the runner was killed by "
                               "signal 9")
    assert [(a["attempt"], a["end_state"]) for a in status["attempts"]] == [(1, "CRASHED"), (2, "CRASHED"),
                                                                            (3, "CRASHED")]
    assert [subject for subject, _ in sent(topic)][-1] == "spotgrade run oom: FAILED"


def test_unreadable_settings_fail_the_run(cloud, kit, imds, tmp_path):
    log = write_log(tmp_path, ["spotgrade: starting the runner",
                               "error: SPOTGRADE_CAPACITY='spot-ish' in /etc/spotgrade/run.env: expected spot or "
                               "on-demand",
                               f"spotgrade: runner exited with status {int(RunnerExit.CONFIG)}"])
    done = report(cloud, kit, imds, "config", "runner-exited", "--exit-status", str(int(RunnerExit.CONFIG)),
                  "--log", str(log))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FAILED"
    status = cloud.status("config")
    assert (status["state"], status["failed_step"]) == ("FAILED", "runner settings")
    assert status["error"] == ("boot step 'runner settings' failed: error: SPOTGRADE_CAPACITY='spot-ish' in "
                               "/etc/spotgrade/run.env: expected spot or on-demand")
    assert status["attempts"][0]["end_state"] == "FAILED"
    assert cloud.keys("runs/config/logs/") == [f"runs/config/logs/boot-{INSTANCE_ID}.log"]
    assert cloud.desired() == 0


def test_nothing_recordable_exits_1_for_the_fallback(cloud, kit, imds, tmp_path, monkeypatch):
    """The bucket is unusable: one line on stderr and exit 1, so the user data sets the capacity to 0 itself."""
    monkeypatch.setattr(cloud, "bucket", "spotgrade-no-such-bucket")
    done = report(cloud, kit, imds, "nowhere", "boot-failed", "--step", "clone", "--exit-status", "128",
                  "--log", str(write_log(tmp_path, ["fatal: x"])))
    assert done.returncode == 1
    assert "could not record the boot outcome" in done.stderr and "NoSuchBucket" in done.stderr
    assert cloud.desired() == 1


def test_cli_s3_reads_and_writes_conditionally(cloud, kit, monkeypatch):
    """CliS3 gives StatusStore botocore's error codes: NoSuchKey for a missing record, PreconditionFailed for a
    stale ETag or a second create, so racing writers through the CLI keep each other's updates too."""
    monkeypatch.setenv("PATH", f"{Path(AWS_CLI).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    from training.cloud.core.boot_report import CliError, CliS3

    cli, layout = CliS3(), RunLayout(cloud.bucket, "cli")
    with pytest.raises(CliError) as error:
        cli.get_object(Bucket=layout.bucket, Key=layout.status_key)
    assert error.value.response["Error"]["Code"] == "NoSuchKey"
    assert StatusStore(cli, layout).read() is None
    created = cli.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b'{"state": "PENDING"}',
                             IfNoneMatch="*")["ETag"]
    with pytest.raises(CliError) as error:
        cli.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b"{}", IfNoneMatch="*")
    assert error.value.response["Error"]["Code"] == "PreconditionFailed"
    got = cli.get_object(Bucket=layout.bucket, Key=layout.status_key)
    assert (got["Body"].read(), got["ETag"]) == (b'{"state": "PENDING"}', created)
    cli.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b'{"state": "PENDING", "n": 1}',
                   IfMatch=created, ContentType="application/json")
    with pytest.raises(CliError) as error:
        cli.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b"{}", IfMatch=created)
    assert error.value.response["Error"]["Code"] == "PreconditionFailed"
    head = cloud.clients.s3.head_object(Bucket=layout.bucket, Key=layout.status_key)
    assert head["ContentType"] == "application/json"

    # A race through the CLI: `stop` (boto3) writes between the boot kit's read and its put.
    class Racing(CliS3):
        raced = False

        def put_object(self, **kwargs):
            if not self.raced:
                self.raced = True
                StatusStore(cloud.clients.s3, layout).change(lambda s: dict(s, stopped_by="alice"))
            return super().put_object(**kwargs)

    _, after = StatusStore(Racing(), layout).change(lambda s: dict(s, booted=True))
    final = cloud.status("cli")
    assert final == after and (final["stopped_by"], final["booted"], final["n"]) == ("alice", True, 1)


@pytest.mark.skipif(PYTHON39 is None, reason="no python3.9 (the instance's system python) here")
def test_the_kit_runs_on_the_instances_system_python(cloud, kit, imds, tmp_path):
    """Amazon Linux 2023's python3 is 3.9: the kit runs there before (or without) the project's environment."""
    done = report(cloud, kit, imds, "py39", "boot-failed", "--step", "python", "--exit-status", "1",
                  "--log", str(write_log(tmp_path, ["No match for argument: python3.12"])), python=PYTHON39)
    assert done.returncode == 0, done.stderr
    status = cloud.status("py39")
    assert (status["state"], status["failed_step"]) == ("FAILED", "python")
    assert status["error"] == "boot step 'python' failed: exit status 1: No match for argument: python3.12"
    assert cloud.desired() == 0


@pytest.mark.skipif(PYTHON39 is None, reason="no python3.9 (the instance's system python) here")
def test_every_core_module_imports_on_the_instances_system_python(kit):
    """The whole asset, not only what one test reaches, is Python 3.9 and standard library (boto3 is imported
    by the Lambda handler only when it runs)."""
    modules = [name[:-3].replace("/", ".").removesuffix(".__init__") for name in asset_files()
               if name.startswith("training/cloud/core/")]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')\n"
    done = subprocess.run([PYTHON39, "-E", "-s", "-c", code, *modules], cwd=kit, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n" and {"training.cloud.core", "training.cloud.core.settings"} <= set(modules)
