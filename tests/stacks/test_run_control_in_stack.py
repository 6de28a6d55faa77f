"""The watchdog and the notifications topic as composed into the main stack (issue 5): the scheduled
Lambda, its least-privilege role, the topic with and without an email subscription, the instance's
grants on the topic, the RunId/TopicArn outputs the run-control commands read."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stacks.watchdog import HANDLER
from tests.stacks.helpers import CONTEXT, Synth, as_list, flatten, instance_policy, staged_files, synth, user_data_of


@pytest.fixture(scope="module")
def with_email(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """notifyEmail and heartbeatMinutes set as CLI strings, cdk-nag live."""
    return synth(tmp_path_factory.mktemp("cdk-email"),
                 {**CONTEXT, "notifyEmail": "ml-team@example.com", "heartbeatMinutes": "30",
                  "maxRuntimeHours": "2.5"})


def only_id(s: Synth, cfn_type: str) -> str:
    [logical_id] = s.resources(cfn_type)
    return logical_id


def watchdog_function(s: Synth) -> tuple[str, dict[str, Any]]:
    [(logical_id, function)] = [(k, v) for k, v in s.resources("AWS::Lambda::Function").items()
                                if v["Properties"].get("Handler") == HANDLER]
    return logical_id, function["Properties"]


def watchdog_statements(s: Synth) -> list[dict[str, Any]]:
    _, function = watchdog_function(s)
    role_id = function["Role"]["Fn::GetAtt"][0]
    [policy] = [v for v in s.resources("AWS::IAM::Policy").values() if {"Ref": role_id} in v["Properties"]["Roles"]]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_watchdog_function_is_configured_for_this_run(default_synth: Synth) -> None:
    _, props = watchdog_function(default_synth)
    env = props["Environment"]["Variables"]
    artifacts = next(k for k, v in default_synth.resources("AWS::S3::Bucket").items()
                     if "LoggingConfiguration" in v["Properties"])
    assert env["SPOTGRADE_BUCKET"] == {"Ref": artifacts}
    assert (env["SPOTGRADE_RUN_ID"], env["SPOTGRADE_ASG_NAME"]) == ("exp-7", "Spotgrade-exp-7")
    assert (env["SPOTGRADE_MAX_RUNTIME_HOURS"], env["SPOTGRADE_HEARTBEAT_MINUTES"]) == ("8", "15")
    assert env["SPOTGRADE_TOPIC_ARN"] == {"Ref": only_id(default_synth, "AWS::SNS::Topic")}
    assert props["Runtime"].startswith("python3.") and props["Timeout"] <= 300


def test_settings_reach_the_watchdog(with_email: Synth) -> None:
    env = watchdog_function(with_email)[1]["Environment"]["Variables"]
    assert (env["SPOTGRADE_MAX_RUNTIME_HOURS"], env["SPOTGRADE_HEARTBEAT_MINUTES"]) == ("2.5", "30")


def test_watchdog_runs_on_a_5_to_10_minute_schedule(default_synth: Synth) -> None:
    function_id, _ = watchdog_function(default_synth)
    [rule] = default_synth.resources("AWS::Events::Rule").values()
    props = rule["Properties"]
    minutes = re.fullmatch(r"rate\((\d+) minutes?\)", props["ScheduleExpression"])
    assert minutes and 5 <= int(minutes.group(1)) <= 10, props["ScheduleExpression"]
    assert props["State"] == "ENABLED"
    assert [t["Arn"] for t in props["Targets"]] == [{"Fn::GetAtt": [function_id, "Arn"]}]
    [permission] = default_synth.resources("AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}


def test_watchdog_role_is_scoped_to_status_group_and_topic(default_synth: Synth) -> None:
    topic = only_id(default_synth, "AWS::SNS::Topic")
    key = only_id(default_synth, "AWS::KMS::Key")
    by_action: dict[str, list[str]] = {}
    for statement in watchdog_statements(default_synth):
        assert statement["Effect"] == "Allow" and "NotAction" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action.split(":")[1] or action == "kms:GenerateDataKey*"
            by_action.setdefault(action, []).extend(flatten(r) for r in as_list(statement["Resource"]))
    artifacts = next(k for k, v in default_synth.resources("AWS::S3::Bucket").items()
                     if "LoggingConfiguration" in v["Properties"])
    status_object = [f"<{artifacts}.Arn>/runs/exp-7/status.json"]
    assert by_action["s3:GetObject"] == by_action["s3:PutObject"] == status_object
    assert by_action["s3:ListBucket"] == [f"<{artifacts}.Arn>"]
    [group_arn] = by_action["autoscaling:SetDesiredCapacity"]
    assert group_arn.startswith("arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:")
    assert group_arn.endswith(":autoScalingGroupName/Spotgrade-exp-7")
    assert by_action["sns:Publish"] == [f"<{topic}>"]
    assert by_action["kms:GenerateDataKey*"] == by_action["kms:Decrypt"] == [f"<{key}.Arn>"]
    assert by_action["autoscaling:DescribeAutoScalingGroups"] == by_action["ec2:DescribeInstances"] == ["*"]
    assert {a for a, resources in by_action.items() if "*" in resources} == {
        "autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"}
    assert not {"s3:DeleteObject", "autoscaling:UpdateAutoScalingGroup"} & set(by_action)


def test_topic_is_encrypted_and_has_no_subscriber_by_default(default_synth: Synth) -> None:
    topic = default_synth.one("AWS::SNS::Topic")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [only_id(default_synth, "AWS::KMS::Key"), "Arn"]}
    assert default_synth.resources("AWS::SNS::Subscription") == {}
    policy = default_synth.one("AWS::SNS::TopicPolicy")
    assert {"Bool": {"aws:SecureTransport": "false"}} in [
        s.get("Condition") for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]


def test_notify_email_adds_one_email_subscription(with_email: Synth) -> None:
    subscription = with_email.one("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ml-team@example.com")
    assert subscription["TopicArn"] == {"Ref": only_id(with_email, "AWS::SNS::Topic")}


def test_instance_publishes_to_the_topic_and_the_group_reports_to_it(default_synth: Synth) -> None:
    topic = only_id(default_synth, "AWS::SNS::Topic")
    key = only_id(default_synth, "AWS::KMS::Key")
    grants = instance_policy(default_synth)
    assert grants["sns:Publish"]["Resource"] == {"Ref": topic}
    assert grants["kms:Decrypt+kms:GenerateDataKey*"]["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    [notification] = default_synth.one("AWS::AutoScaling::AutoScalingGroup")["NotificationConfigurations"]
    assert notification["TopicARN"] == {"Ref": topic}
    assert f"SPOTGRADE_TOPIC_ARN='<{topic}>'" in user_data_of(default_synth)


def test_outputs_name_the_run_and_the_topic(default_synth: Synth) -> None:
    from training.cloud.core import outputs as keys

    outputs = default_synth.template["Outputs"]
    assert outputs[keys.RUN_ID]["Value"] == "exp-7"
    assert outputs[keys.TOPIC_ARN]["Value"] == {"Ref": only_id(default_synth, "AWS::SNS::Topic")}


def test_watchdog_is_created_after_the_group(default_synth: Synth) -> None:
    function_id, _ = watchdog_function(default_synth)
    group_id = only_id(default_synth, "AWS::AutoScaling::AutoScalingGroup")
    assert group_id in default_synth.template["Resources"][function_id]["DependsOn"]


def test_watchdog_code_is_the_staged_cloud_code_asset(default_synth: Synth) -> None:
    """The Lambda's code is the CloudCode zip (stacks.cloud_code.asset_files()), the same object the instance's
    boot kit is fetched from and the only asset object the instance role may read."""
    from stacks.cloud_code import asset_files

    _, props = watchdog_function(default_synth)
    assets = json.loads((default_synth.outdir / "Spotgrade.assets.json").read_text())["files"]
    [asset] = [a for a in assets.values()
               if [d["objectKey"] for d in a["destinations"].values()] == [flatten(props["Code"]["S3Key"])]]
    source = asset["source"]
    assert source["packaging"] == "zip"
    [destination] = asset["destinations"].values()
    assert props["Code"]["S3Bucket"] == {"Fn::Sub": destination["bucketName"]}
    staged = default_synth.outdir / source["path"]
    assert staged_files(staged) == asset_files()
    assert {f"training/cloud/core/{name}.py" for name in ("watchdog", "layout", "lifecycle", "status_store",
                                                            "notify", "boot_report", "imds")} <= set(asset_files())
    assert flatten(instance_policy(default_synth)["BootKitRead"]["Resource"]).endswith(
        f"/{destination['objectKey']}")
    assert f"/{destination['objectKey']}'\n" in user_data_of(default_synth)  # SPOTGRADE_BOOT_KIT_URI
