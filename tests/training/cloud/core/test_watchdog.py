"""The watchdog Lambda against moto: it stops terminal, timed-out and hung runs and leaves healthy ones alone."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.training.cloud.core.helpers import stage_kit
from tests.training.cloud.moto_run import iso, make_run, running_status
from training.cloud.core import watchdog


@pytest.fixture()
def run(aws):
    fake = make_run(aws)
    fake.client("sqs").create_queue(QueueName="inbox")
    queue_url = fake.client("sqs").get_queue_url(QueueName="inbox")["QueueUrl"]
    queue_arn = fake.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fake.client("sns").subscribe(TopicArn=fake.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    fake.queue_url = queue_url
    yield fake


def settings(run, **overrides) -> watchdog.Settings:
    values = dict(bucket=run.bucket, run_id=run.run_id, asg_name=run.asg_name, max_runtime_hours=10,
                  heartbeat_minutes=15, boot_grace_minutes=30, topic_arn=run.topic_arn)
    values.update(overrides)
    return watchdog.Settings(**values)


def check(run, now: datetime, **overrides) -> dict:
    c = run.client
    return watchdog.check(c("s3"), c("autoscaling"), c("ec2"), c("sns"), settings(run, **overrides), now)


def notifications(run) -> list[dict]:
    messages = run.client("sqs").receive_message(QueueUrl=run.queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_healthy_run_is_left_alone(run):
    before = run.put_status(running_status(run.run_id, now()))
    result = check(run, now() + timedelta(minutes=5))
    assert result["action"] == "none"
    assert run.group()["DesiredCapacity"] == 1
    assert run.status() == before
    assert notifications(run) == []


def test_terminal_run_with_capacity_is_scaled_to_zero(run):
    status = running_status(run.run_id, now())
    status.update(state="SUCCEEDED", last_epoch=30)
    status["attempts"][0].update(ended_at=iso(now()), end_state="SUCCEEDED")
    before = run.put_status(status)
    result = check(run, now() + timedelta(minutes=1))
    assert (result["action"], result["event"]) == ("scaled_to_zero", "SUCCEEDED")
    assert "still had capacity" in result["reason"]
    assert run.group()["DesiredCapacity"] == 0
    assert run.status() == before  # a finished run is not rewritten: only its capacity was left
    [message] = notifications(run)
    assert message["Subject"] == f"spotgrade run {run.run_id}: SUCCEEDED"
    assert "still had capacity" in message["Message"]


@pytest.mark.parametrize("state", ["FAILED", "STOPPED", "HUNG"])
def test_every_terminal_state_with_capacity_is_scaled_to_zero_unchanged(run, state):
    status = running_status(run.run_id, now())
    status["state"] = state
    before = run.put_status(status)
    result = check(run, now() + timedelta(minutes=1))
    assert (result["action"], result["event"]) == ("scaled_to_zero", state)
    assert run.group()["DesiredCapacity"] == 0
    assert run.status() == before


def test_terminal_run_without_capacity_needs_nothing(run):
    run.client("autoscaling").set_desired_capacity(AutoScalingGroupName=run.asg_name, DesiredCapacity=0)
    status = running_status(run.run_id, now())
    status["state"] = "FAILED"
    run.put_status(status)
    assert check(run, now() + timedelta(hours=30))["action"] == "none"
    assert notifications(run) == []


def test_run_past_max_runtime_is_stopped(run):
    run.put_status(running_status(run.run_id, now()))  # first attempt started an hour ago
    result = check(run, now() + timedelta(minutes=1), max_runtime_hours=0.5)
    assert (result["action"], result["event"]) == ("scaled_to_zero", "TIMED_OUT")
    assert run.group()["DesiredCapacity"] == 0
    after = run.status()
    assert after["state"] == "STOPPED"
    assert "maxRuntimeHours=0.5" in after["reason"]
    closed = after["attempts"][-1]
    assert closed["end_state"] == "STOPPED" and closed["ended_at"]
    assert closed["billable_seconds"] >= 3600
    assert closed["estimated_cost"] == pytest.approx(0.45 * closed["billable_seconds"] / 3600, rel=1e-4)
    assert notifications(run)[0]["Subject"].endswith("TIMED_OUT")


def test_hung_run_is_hung(run):
    run.put_status(running_status(run.run_id, now()))
    # 40 minutes later: no heartbeat for > 15 min and the instance launched > 30 min ago.
    at = now() + timedelta(minutes=40)
    result = check(run, at)
    assert (result["action"], result["event"]) == ("scaled_to_zero", "HUNG")
    assert run.group()["DesiredCapacity"] == 0
    after = run.status()
    assert after["state"] == "HUNG"  # its own terminal state (was FAILED): `resume` restarts it
    assert "no progress for 15 minutes" in after["error"] and after["reason"] == after["error"]
    closed = after["attempts"][-1]
    assert (closed["end_state"], closed["ended_at"]) == ("HUNG", iso(at))
    assert closed["billable_seconds"] >= 3600
    assert "HUNG" in notifications(run)[0]["Subject"]


def test_replacement_instance_gets_boot_grace(run):
    # A stale heartbeat from a killed instance, but the group's instance was just launched: still booting.
    run.put_status(running_status(run.run_id, now(), heartbeat_age=timedelta(hours=2)))
    assert check(run, now() + timedelta(minutes=20))["action"] == "none"
    assert check(run, now() + timedelta(minutes=31))["event"] == "HUNG"


def test_no_status_and_instance_never_reports(run):
    # user data failed before the runner started: no status.json at all.
    assert check(run, now() + timedelta(minutes=10))["action"] == "none"
    result = check(run, now() + timedelta(minutes=45))
    assert result["event"] == "HUNG"
    after = run.status()
    assert after["state"] == "HUNG" and after["run_id"] == run.run_id
    assert after["attempts"] == [] and "no progress" in after["error"]
    assert run.group()["DesiredCapacity"] == 0


def test_settings_from_env():
    s = watchdog.Settings.from_env({
        "SPOTGRADE_BUCKET": "b-1", "SPOTGRADE_RUN_ID": "r", "SPOTGRADE_ASG_NAME": "g",
        "SPOTGRADE_MAX_RUNTIME_HOURS": "2.5", "SPOTGRADE_HEARTBEAT_MINUTES": "12", "SPOTGRADE_TOPIC_ARN": "",
    })
    assert (s.bucket, s.run_id, s.asg_name) == ("b-1", "r", "g")
    assert (s.max_runtime_hours, s.heartbeat_minutes, s.boot_grace_minutes, s.topic_arn) == (2.5, 12.0, 30.0, None)


def test_handler_runs_with_env(run, monkeypatch):
    run.put_status(running_status(run.run_id, now()))
    for key, value in {"SPOTGRADE_BUCKET": run.bucket, "SPOTGRADE_RUN_ID": run.run_id,
                       "SPOTGRADE_ASG_NAME": run.asg_name, "SPOTGRADE_MAX_RUNTIME_HOURS": "0.1"}.items():
        monkeypatch.setenv(key, value)
    assert watchdog.handler({"source": "aws.events"}, None)["event"] == "TIMED_OUT"
    assert run.group()["DesiredCapacity"] == 0


def test_lambda_asset_imports_the_handler_as_the_package(tmp_path):
    """Deployed as the code asset alone (no project modules, no dependencies), the handler imports its package."""
    import subprocess
    import sys

    from stacks.watchdog import HANDLER

    stage_kit(tmp_path)
    module, function = HANDLER.rsplit(".", 1)
    code = (f"import importlib, sys; handler = getattr(importlib.import_module({module!r}), {function!r}); "
            "assert 'training.cloud.run' not in sys.modules and 'pandas' not in sys.modules; "
            "import training.cloud.core.watchdog as w; print(w.layout.__name__, w.lifecycle.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "training.cloud.core.layout training.cloud.core.lifecycle"
