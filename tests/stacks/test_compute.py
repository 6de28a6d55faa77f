"""SpotCompute on a bare stack of its own: the instance role's grants, the launch template, the group and the
notifications topic it publishes to (encrypted or not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.stacks.helpers import (
    CONTEXT,
    Synth,
    bare_stack,
    identity_statements,
    instance_policy,
    run_config,
    synth_stack,
    user_data_of,
)


def build(outdir: Path, *, encrypted: bool = False, context: dict[str, Any] | None = None) -> Synth:
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from stacks.cloud_code import CloudCode
    from stacks.compute import SpotCompute

    app, stack = bare_stack(outdir, "ComputeTest")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=False,
                  subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])
    key = kms.Key(stack, "TopicKey") if encrypted else None
    stack.compute = SpotCompute(
        stack, "Compute", config=run_config(context), vpc=vpc,
        security_group=ec2.SecurityGroup(stack, "Instance", vpc=vpc), bucket=s3.Bucket(stack, "Artifacts"),
        log_retention=logs.RetentionDays.ONE_WEEK, boot_kit=CloudCode(stack, "CloudCode"),
        topic=sns.Topic(stack, "Topic", enforce_ssl=True, master_key=key), topic_key_arn=key and key.key_arn)
    return synth_stack(app, stack, outdir)


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return build(tmp_path_factory.mktemp("compute-alone"))


def test_role_grants_the_run_prefix_its_log_group_and_group(alone: Synth) -> None:
    st = instance_policy(alone)
    assert set(st) == {"RunPrefixReadWrite", "RunPrefixList", "OwnLogGroup", "OwnAutoScalingGroup", "SessionManager",
                       "DescribeOnly", "DataRead", "DataList", "BootKitRead", "TopicPublish"}
    assert st["RunPrefixList"]["Condition"] == {"StringLike": {"s3:prefix": ["runs/exp-7/*", "scratch/exp-7/*"]}}
    assert st["OwnAutoScalingGroup"]["Action"] == "autoscaling:SetDesiredCapacity"
    assert "ManagedPolicyArns" not in alone.one("AWS::IAM::Role")


def test_launch_template_group_and_log_group(alone: Synth) -> None:
    data = alone.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    group = alone.one("AWS::AutoScaling::AutoScalingGroup")
    assert group["AutoScalingGroupName"] == "Spotgrade-exp-7"
    [log_group] = alone.resources("AWS::Logs::LogGroup").values()
    assert log_group["Properties"]["LogGroupName"] == "/spotgrade/Spotgrade/exp-7"
    assert log_group["DeletionPolicy"] == "Retain"  # kept when the run's stack is destroyed


def test_logs_go_with_the_stack_on_request(tmp_path: Path) -> None:
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from stacks.cloud_code import CloudCode
    from stacks.compute import SpotCompute

    app, stack = bare_stack(tmp_path, "ComputeTest")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=False,
                  subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])
    SpotCompute(stack, "Compute", config=run_config(), vpc=vpc, security_group=ec2.SecurityGroup(stack, "Sg", vpc=vpc),
                bucket=s3.Bucket(stack, "Artifacts"), log_retention=logs.RetentionDays.ONE_WEEK,
                boot_kit=CloudCode(stack, "CloudCode"), topic=sns.Topic(stack, "Topic"), topic_key_arn=None,
                keep_logs=False)
    [log_group] = synth_stack(app, stack, tmp_path).resources("AWS::Logs::LogGroup").values()
    assert log_group["DeletionPolicy"] == "Delete"


def test_no_data_uri_no_data_grant(tmp_path: Path) -> None:
    s = build(tmp_path, context={k: v for k, v in CONTEXT.items() if k != "dataUri"})
    assert not {"DataRead", "DataList"} & set(instance_policy(s))


def test_topic_gets_publish_grant_group_notifications_and_env(tmp_path: Path) -> None:
    s = build(tmp_path, encrypted=True)
    topic_id = next(iter(s.resources("AWS::SNS::Topic")))
    key_id = next(iter(s.resources("AWS::KMS::Key")))
    st = instance_policy(s)
    assert (st["TopicPublish"]["Action"], st["TopicPublish"]["Resource"]) == ("sns:Publish", {"Ref": topic_id})
    assert st["TopicKey"]["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]  # exactly, no kms:GenerateDataKey*
    assert st["TopicKey"]["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert [x for x in identity_statements(s) if x["Action"] == "sns:Publish"] == [st["TopicPublish"]]
    [notification] = s.one("AWS::AutoScaling::AutoScalingGroup")["NotificationConfigurations"]
    assert notification["TopicARN"] == {"Ref": topic_id}
    assert "autoscaling:EC2_INSTANCE_LAUNCH_ERROR" in notification["NotificationTypes"]
    assert f"SPOTGRADE_TOPIC_ARN='<{topic_id}>'" in user_data_of(s)


def test_root_device_follows_the_ami_family() -> None:
    from stacks.compute import root_device_name

    assert root_device_name("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id") \
        == "/dev/sda1"
    assert root_device_name("/aws/service/deeplearning/ami/x86_64/x/latest/ami-id") == "/dev/xvda"
