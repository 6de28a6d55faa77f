"""`cleanup` (once `sweep`) against moto."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.training.cloud.moto_run import make_run, running_status
from training.cloud import cleanup as cl


def orphan_instance(sess, stack: str = "GoneStack") -> str:
    tags = [{"Key": "Project", "Value": "spotgrade"}, {"Key": "aws:cloudformation:stack-name", "Value": stack}]
    return sess.client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="g5.xlarge",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"]


def state_of(sess, instance_id: str) -> str:
    reservations = sess.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_cleanup_finds_an_orphan_and_changes_nothing_without_yes(aws):
    run = make_run(aws)
    run.put_status(running_status(run.run_id, datetime.now(timezone.utc)))
    stray = orphan_instance(aws)
    captured = []
    found = cl.cleanup(aws, out=captured.append)
    assert [(o.kind, o.resource_id) for o in found] == [("instance", stray)]
    assert "stack GoneStack is gone" in found[0].why
    assert captured[-1].startswith("dry run: 1 found, nothing changed")
    assert state_of(aws, stray) == "running"
    assert run.group()["DesiredCapacity"] == 1  # the healthy run's group is untouched


def test_cleanup_with_yes_terminates_orphans_and_scales_terminal_runs(aws):
    run = make_run(aws)
    run.put_status(dict(running_status(run.run_id, datetime.now(timezone.utc)), state="SUCCEEDED"))
    stray = orphan_instance(aws)
    found = cl.cleanup(aws, yes=True, out=lambda _: None)
    kinds = sorted(o.kind for o in found)
    assert "auto-scaling-group" in kinds and "instance" in kinds
    assert state_of(aws, stray) in ("shutting-down", "terminated")
    assert run.group()["DesiredCapacity"] == 0
    group_actions = [o.action for o in found if o.kind == "auto-scaling-group"]
    assert group_actions == ["set desired capacity 0"]


def test_cleanup_with_nothing_to_do(aws):
    run = make_run(aws)
    run.put_status(running_status(run.run_id, datetime.now(timezone.utc)))
    captured = []
    assert cl.cleanup(aws, out=captured.append) == []
    assert captured == ["nothing to clean up: every spotgrade instance, group and spot request belongs to a live run"]
