"""The watchdog and the notifications topic as composed into the app (issue 5): the scheduled Lambda in the run
stack, its least-privilege role, the shared stack's topic with and without an email subscription, the instance's
grants on the topic, the RunId/TopicArn outputs the run-control commands read."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stacks.watchdog import HANDLER
from tests.stacks.helpers import (
    CONTEXT,
    AppSynth,
    Synth,
    as_list,
    flatten,
    import_of,
    instance_policy,
    staged_files,
    synth,
    user_data_of,
)
from training.cloud.core import outputs as keys

TOPIC = f"<import Spotgrade:{keys.TOPIC_ARN}>"
TOPIC_KEY = f"<import Spotgrade:{keys.TOPIC_KEY_ARN}>"
BUCKET = f"<import Spotgrade:{keys.BUCKET_NAME}>"


@pytest.fixture(scope="module")
def with_email(tmp_path_factory: pytest.TempPathFactory) -> AppSynth:
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


def test_watchdog_function_is_configured_for_this_run(run_synth: Synth) -> None:
    _, props = watchdog_function(run_synth)
    env = props["Environment"]["Variables"]
    assert env["SPOTGRADE_BUCKET"] == import_of(keys.BUCKET_NAME)
    assert (env["SPOTGRADE_RUN_ID"], env["SPOTGRADE_ASG_NAME"]) == ("exp-7", "Spotgrade-exp-7")
    assert (env["SPOTGRADE_MAX_RUNTIME_HOURS"], env["SPOTGRADE_HEARTBEAT_MINUTES"]) == ("8", "15")
    assert env["SPOTGRADE_TOPIC_ARN"] == import_of(keys.TOPIC_ARN)
    assert props["Runtime"].startswith("python3.") and props["Timeout"] <= 300


def test_settings_reach_the_watchdog(with_email: AppSynth) -> None:
    env = watchdog_function(with_email.run)[1]["Environment"]["Variables"]
    assert (env["SPOTGRADE_MAX_RUNTIME_HOURS"], env["SPOTGRADE_HEARTBEAT_MINUTES"]) == ("2.5", "30")


def test_watchdog_runs_on_a_5_to_10_minute_schedule(run_synth: Synth) -> None:
    function_id, _ = watchdog_function(run_synth)
    [rule] = run_synth.resources("AWS::Events::Rule").values()
    props = rule["Properties"]
    minutes = re.fullmatch(r"rate\((\d+) minutes?\)", props["ScheduleExpression"])
    assert minutes and 5 <= int(minutes.group(1)) <= 10, props["ScheduleExpression"]
    assert props["State"] == "ENABLED"
    assert [t["Arn"] for t in props["Targets"]] == [{"Fn::GetAtt": [function_id, "Arn"]}]
    [permission] = run_synth.resources("AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}


def test_watchdog_role_is_scoped_to_status_group_and_topic(run_synth: Synth) -> None:
    by_action: dict[str, list[str]] = {}
    for statement in watchdog_statements(run_synth):
        assert statement["Effect"] == "Allow" and "NotAction" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action.split(":")[1]
            by_action.setdefault(action, []).extend(flatten(r) for r in as_list(statement["Resource"]))
    status_object = [f"arn:<AWS::Partition>:s3:::{BUCKET}/runs/exp-7/status.json"]
    assert by_action["s3:GetObject"] == by_action["s3:PutObject"] == status_object
    assert by_action["s3:ListBucket"] == [f"arn:<AWS::Partition>:s3:::{BUCKET}"]
    [group_arn] = by_action["autoscaling:SetDesiredCapacity"]
    assert group_arn.startswith("arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:")
    assert group_arn.endswith(":autoScalingGroupName/Spotgrade-exp-7")
    assert by_action["sns:Publish"] == [TOPIC]
    assert by_action["kms:GenerateDataKey"] == by_action["kms:Decrypt"] == [TOPIC_KEY]
    assert by_action["autoscaling:DescribeAutoScalingGroups"] == by_action["ec2:DescribeInstances"] == ["*"]
    assert {a for a, resources in by_action.items() if "*" in resources} == {
        "autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"}
    assert not {"s3:DeleteObject", "autoscaling:UpdateAutoScalingGroup"} & set(by_action)


def test_topic_is_encrypted_and_has_no_subscriber_by_default(shared_synth: Synth) -> None:
    topic = shared_synth.one("AWS::SNS::Topic")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [only_id(shared_synth, "AWS::KMS::Key"), "Arn"]}
    assert shared_synth.resources("AWS::SNS::Subscription") == {}
    policy = shared_synth.one("AWS::SNS::TopicPolicy")
    assert {"Bool": {"aws:SecureTransport": "false"}} in [
        s.get("Condition") for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]


def test_notify_email_adds_one_email_subscription(with_email: AppSynth) -> None:
    subscription = with_email.shared.one("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ml-team@example.com")
    assert subscription["TopicArn"] == {"Ref": only_id(with_email.shared, "AWS::SNS::Topic")}


def test_instance_publishes_to_the_topic_and_the_group_reports_to_it(run_synth: Synth) -> None:
    grants = instance_policy(run_synth)
    assert grants["TopicPublish"]["Resource"] == import_of(keys.TOPIC_ARN)
    assert grants["TopicKey"]["Resource"] == import_of(keys.TOPIC_KEY_ARN)
    [notification] = run_synth.one("AWS::AutoScaling::AutoScalingGroup")["NotificationConfigurations"]
    assert notification["TopicARN"] == import_of(keys.TOPIC_ARN)
    assert f"SPOTGRADE_TOPIC_ARN='{TOPIC}'" in user_data_of(run_synth)


def test_outputs_name_the_run_and_the_topic(default_synth: AppSynth) -> None:
    run, shared = default_synth.run.template["Outputs"], default_synth.shared.template["Outputs"]
    assert run[keys.RUN_ID]["Value"] == "exp-7" and run[keys.SHARED_STACK]["Value"] == "Spotgrade"
    assert shared[keys.TOPIC_ARN]["Value"] == {"Ref": only_id(default_synth.shared, "AWS::SNS::Topic")}


def test_watchdog_is_created_after_the_group(run_synth: Synth) -> None:
    function_id, _ = watchdog_function(run_synth)
    group_id = only_id(run_synth, "AWS::AutoScaling::AutoScalingGroup")
    assert group_id in run_synth.template["Resources"][function_id]["DependsOn"]


def test_watchdog_code_is_the_staged_cloud_code_asset(run_synth: Synth) -> None:
    """The Lambda's code is the CloudCode zip (stacks.cloud_code.asset_files()), the same object the instance's
    boot kit is fetched from and the only asset object the instance role may read."""
    from stacks.cloud_code import asset_files

    _, props = watchdog_function(run_synth)
    assets = json.loads((run_synth.outdir / f"{run_synth.stack_name}.assets.json").read_text())["files"]
    [asset] = [a for a in assets.values()
               if [d["objectKey"] for d in a["destinations"].values()] == [flatten(props["Code"]["S3Key"])]]
    source = asset["source"]
    assert source["packaging"] == "zip"
    [destination] = asset["destinations"].values()
    assert props["Code"]["S3Bucket"] == {"Fn::Sub": destination["bucketName"]}
    staged = run_synth.outdir / source["path"]
    assert staged_files(staged) == asset_files()
    assert {f"training/cloud/core/{name}.py" for name in ("watchdog", "layout", "lifecycle", "status_store",
                                                            "notify", "boot_report", "imds")} <= set(asset_files())
    assert flatten(instance_policy(run_synth)["BootKitRead"]["Resource"]).endswith(
        f"/{destination['objectKey']}")
    assert f"/{destination['objectKey']}'\n" in user_data_of(run_synth)  # SPOTGRADE_BOOT_KIT_URI
