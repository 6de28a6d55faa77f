"""The watchdog construct in a tiny stack of its own (with the topic it publishes to): resources, least
privilege, the Lambda asset, its alarm, cdk-nag AwsSolutionsChecks (live) and cfn-lint."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import Acknowledgment, App, Stack, Validations  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from stacks.cloud_code import CloudCode, asset_files  # noqa: E402
from stacks.notifications import Notifications  # noqa: E402
from stacks.watchdog import HANDLER, RunWatchdog  # noqa: E402
from tests.stacks.helpers import flatten, staged_files  # noqa: E402

RUN_ID = "exp-7"
GROUP = "Tiny-exp-7"


def build(outdir: Path, *, email: str | None = "ml-team@example.com") -> tuple[App, Stack]:
    app = App(outdir=str(outdir))
    stack = Stack(app, "Tiny")
    bucket = s3.Bucket(stack, "Artifacts", block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                       encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True, versioned=True)
    Validations.of(bucket).acknowledge(Acknowledgment(
        id="AwsSolutions-S1", reason="Test stack only: the real bucket (stacks/storage.py) logs server access."))
    notifications = Notifications(stack, "Notifications", email=email, alarm_prefix="Tiny-")
    stack.code = CloudCode(stack, "CloudCode")
    stack.watchdog = RunWatchdog(stack, "Watchdog", code=stack.code, bucket=bucket, run_id=RUN_ID, group_name=GROUP,
                                 max_runtime_hours=6, heartbeat_minutes=12, schedule_minutes=5,
                                 topic=notifications.topic, topic_key_arn=notifications.key.key_arn,
                                 alarm_name=f"{GROUP}-watchdog-failing")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> tuple[dict[str, Any], Path]:
    outdir = tmp_path_factory.mktemp("watchdog-cdk")
    app, _ = build(outdir)
    app.synth()  # raises where cdk-nag has an unacknowledged finding
    return json.loads((outdir / "Tiny.template.json").read_text()), outdir


def of_type(template: dict, cfn_type: str) -> list[dict]:
    return [r for r in template["Resources"].values() if r["Type"] == cfn_type]


def test_function_settings(synthesized):
    template, _ = synthesized
    [function] = of_type(template, "AWS::Lambda::Function")
    props = function["Properties"]
    assert props["Handler"] == HANDLER == "training.cloud.core.watchdog.handler"
    assert props["Runtime"].startswith("python3.")
    env = props["Environment"]["Variables"]
    assert env["SPOTGRADE_RUN_ID"] == RUN_ID and env["SPOTGRADE_ASG_NAME"] == GROUP
    assert env["SPOTGRADE_MAX_RUNTIME_HOURS"] == "6" and env["SPOTGRADE_HEARTBEAT_MINUTES"] == "12"
    assert "Ref" in env["SPOTGRADE_TOPIC_ARN"] and "Ref" in env["SPOTGRADE_BUCKET"]
    assert "LoggingConfig" in props


def test_schedule_and_log_retention(synthesized):
    template, _ = synthesized
    [rule] = of_type(template, "AWS::Events::Rule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["Properties"]["State"] == "ENABLED"
    assert rule["Properties"]["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] == 2
    [group] = of_type(template, "AWS::Logs::LogGroup")
    assert group["Properties"]["RetentionInDays"] == 30
    Template.from_json(template).has_resource_properties("AWS::Lambda::Permission", {
        "Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction"})


def statements(template: dict) -> dict[str, dict]:
    policies = of_type(template, "AWS::IAM::Policy")
    found = {}
    for policy in policies:
        for i, st in enumerate(policy["Properties"]["PolicyDocument"]["Statement"]):
            found[st.get("Sid", f"grant{i}")] = st
    return found


def test_role_is_least_privilege(synthesized):
    template, _ = synthesized
    st = statements(template)
    assert flatten(st["StatusReadWrite"]["Resource"]).endswith(f"/runs/{RUN_ID}/status.json")
    assert sorted(st["StatusReadWrite"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert st["StatusList"]["Condition"] == {"StringEquals": {"s3:prefix": [f"runs/{RUN_ID}/status.json"]}}
    assert st["OwnGroupCapacity"]["Action"] == "autoscaling:SetDesiredCapacity"
    assert flatten(st["OwnGroupCapacity"]["Resource"]).endswith(f":autoScalingGroupName/{GROUP}")
    assert st["DescribeOnly"]["Resource"] == "*"
    assert all(a.split(":")[1].startswith("Describe") for a in st["DescribeOnly"]["Action"])
    for statement in st.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions and not any(a.endswith(":*") for a in actions)
        if statement["Resource"] == "*":
            assert statement.get("Sid") == "DescribeOnly"
    publish = [s for s in st.values() if s["Action"] == "sns:Publish"]
    assert len(publish) == 1 and "Ref" in publish[0]["Resource"]
    assert st["TopicKey"]["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]  # on the topic's key only
    assert "Fn::GetAtt" in st["TopicKey"]["Resource"]
    [role] = of_type(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]


def test_asset_holds_the_core_package_the_handler_imports(synthesized):
    template, outdir = synthesized
    [function] = of_type(template, "AWS::Lambda::Function")
    asset = json.loads((outdir / "Tiny.assets.json").read_text())["files"]
    zips = [f for f in asset.values() if f["source"].get("packaging") == "zip"]
    assert len(zips) == 1  # the CloudCode asset, and nothing else
    files = staged_files(outdir / zips[0]["source"]["path"])
    assert files == asset_files()
    assert HANDLER.rsplit(".", 1)[0].replace(".", "/") + ".py" in files
    [destination] = zips[0]["destinations"].values()
    code = function["Properties"]["Code"]
    assert (code["S3Bucket"], code["S3Key"]) == ({"Fn::Sub": destination["bucketName"]}, destination["objectKey"])


def test_no_email(tmp_path):
    _, stack = build(tmp_path / "b", email=None)
    assert of_type(Template.from_stack(stack).to_json(), "AWS::SNS::Subscription") == []


def test_alarm_on_errors_and_throttles_notifies_the_topic(synthesized):
    template, _ = synthesized
    [alarm] = of_type(template, "AWS::CloudWatch::Alarm")
    props = alarm["Properties"]
    [topic_id] = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::SNS::Topic"]
    [function_id] = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"]
    assert props["AlarmName"] == f"{GROUP}-watchdog-failing" and props["AlarmActions"] == [{"Ref": topic_id}]
    names = {m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]["Dimensions"]
             for m in props["Metrics"] if "MetricStat" in m}
    assert names == {"Errors": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
                     "Throttles": [{"Name": "FunctionName", "Value": {"Ref": function_id}}]}


def test_nag_is_live(tmp_path):
    """Without its acknowledgements, the watchdog role's wildcards fail cdk-nag."""
    from aws_cdk import aws_iam as iam

    app, stack = build(tmp_path)
    stack.watchdog.role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(Exception, match="AwsSolutions-IAM5"):
        app.synth()


def test_cfn_lint_is_clean(synthesized):
    _, outdir = synthesized
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(outdir / "Tiny.template.json")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
