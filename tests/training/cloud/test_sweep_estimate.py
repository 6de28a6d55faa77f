"""`sweep` and `estimate` against moto."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.training.cloud.moto_run import make_run, running_status
from training.cloud import estimate as est
from training.cloud import sweep as sw
from training.errors import CloudError, ConfigError


def orphan_instance(sess, stack: str = "GoneStack") -> str:
    tags = [{"Key": "Project", "Value": "spotgrade"}, {"Key": "aws:cloudformation:stack-name", "Value": stack}]
    return sess.client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="g5.xlarge",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]["InstanceId"]


def state_of(sess, instance_id: str) -> str:
    reservations = sess.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_sweep_finds_an_orphan_and_changes_nothing_without_yes(aws):
    run = make_run(aws)
    run.put_status(running_status(run.run_id, datetime.now(timezone.utc)))
    stray = orphan_instance(aws)
    captured = []
    found = sw.sweep(aws, out=captured.append)
    assert [(o.kind, o.resource_id) for o in found] == [("instance", stray)]
    assert "stack GoneStack is gone" in found[0].why
    assert captured[-1].startswith("dry run: 1 found, nothing changed")
    assert state_of(aws, stray) == "running"
    assert run.group()["DesiredCapacity"] == 1  # the healthy run's group is untouched


def test_sweep_with_yes_terminates_orphans_and_scales_terminal_runs(aws):
    run = make_run(aws)
    run.put_status(dict(running_status(run.run_id, datetime.now(timezone.utc)), state="SUCCEEDED"))
    stray = orphan_instance(aws)
    found = sw.sweep(aws, yes=True, out=lambda _: None)
    kinds = sorted(o.kind for o in found)
    assert "auto-scaling-group" in kinds and "instance" in kinds
    assert state_of(aws, stray) in ("shutting-down", "terminated")
    assert run.group()["DesiredCapacity"] == 0
    group_actions = [o.action for o in found if o.kind == "auto-scaling-group"]
    assert group_actions == ["set desired capacity 0"]


def test_sweep_with_nothing_to_do(aws):
    run = make_run(aws)
    run.put_status(running_status(run.run_id, datetime.now(timezone.utc)))
    captured = []
    assert sw.sweep(aws, out=captured.append) == []
    assert captured == ["nothing to sweep: every spotgrade instance, group and spot request belongs to a live run"]


def test_estimate_multiplies_spot_history_by_hours(aws, tmp_path):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"app": "python3 app.py", "context": {
        "instanceTypes": ["g4dn.xlarge", "g5.xlarge"], "maxRuntimeHours": 6}}))
    context = est.load_context(["maxRuntimeHours=4"], cdk_json)
    captured = []
    rows = est.estimate(aws, context, out=captured.append)
    ec2 = aws.client("ec2")
    for row in rows:
        history = ec2.describe_spot_price_history(InstanceTypes=[row["instance_type"]],
                                                  ProductDescriptions=["Linux/UNIX"])["SpotPriceHistory"]
        by_zone = {}
        for record in sorted(history, key=lambda r: r["Timestamp"]):
            by_zone[record["AvailabilityZone"]] = float(record["SpotPrice"])
        assert by_zone, "moto returned no history"
        assert row["prices"] == by_zone
        assert row["hours"] == 4.0
        assert row["cost_low"] == pytest.approx(min(by_zone.values()) * 4)
        assert row["cost_high"] == pytest.approx(max(by_zone.values()) * 4)
    assert [r["instance_type"] for r in rows] == ["g4dn.xlarge", "g5.xlarge"]
    assert captured[0] == "expected run time: 4 h (maxRuntimeHours, the most the run can last)"


def test_expected_hours_from_epochs_per_hour():
    context = est.load_context(["trainArgs=--epochs 40", "maxRuntimeHours=8"], None)
    assert est.expected_hours(context, epochs_per_hour=20)[0] == pytest.approx(2.0)
    assert est.expected_hours(context, epochs_per_hour=2)[0] == 8.0  # capped
    assert est.expected_hours(context, hours=1.5)[0] == 1.5


def test_estimate_context_errors(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        est.load_context(["maxRuntimeHours"], None)
    bad = tmp_path / "cdk.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        est.load_context([], bad)
    assert est.instance_types({"instanceTypes": "g5.xlarge, g6.xlarge"}) == ["g5.xlarge", "g6.xlarge"]


def test_estimate_defaults_mirror_stack_config():
    config = pytest.importorskip("stacks.config")
    for key, value in est.DEFAULTS.items():
        assert config.DEFAULTS[key] == value, key


def test_estimate_without_credentials_is_one_line(no_aws_credentials):
    import boto3

    with pytest.raises(CloudError, match="^estimate: no AWS credentials found"):
        est.estimate(boto3.Session(region_name="us-east-1"), est.load_context([], None), out=lambda _: None)
