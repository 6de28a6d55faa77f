"""SpotCompute on a bare stack of its own: the instance role's grants, the launch template, the group, with
and without a notifications topic."""

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


def build(outdir: Path, *, topic: bool, context: dict[str, Any] | None = None) -> Synth:
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns

    from stacks.cloud_code import CloudCode
    from stacks.compute import SpotCompute

    app, stack = bare_stack(outdir, "ComputeTest")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=False,
                  subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])
    stack.compute = SpotCompute(
        stack, "Compute", config=run_config(context), vpc=vpc,
        security_group=ec2.SecurityGroup(stack, "Instance", vpc=vpc), bucket=s3.Bucket(stack, "Artifacts"),
        log_retention=logs.RetentionDays.ONE_WEEK, boot_kit=CloudCode(stack, "CloudCode"),
        topic=sns.Topic(stack, "Topic", enforce_ssl=True) if topic else None)
    return synth_stack(app, stack, outdir)


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return build(tmp_path_factory.mktemp("compute-alone"), topic=False)


def test_role_grants_the_run_prefix_its_log_group_and_group(alone: Synth) -> None:
    st = instance_policy(alone)
    assert set(st) == {"RunPrefixReadWrite", "RunPrefixList", "OwnLogGroup", "OwnAutoScalingGroup", "DescribeOnly",
                       "DataRead", "DataList", "BootKitRead"}
    assert st["RunPrefixList"]["Condition"] == {"StringLike": {"s3:prefix": ["runs/exp-7/*"]}}
    assert not [s for s in identity_statements(alone) if s["Action"] == "sns:Publish"]
    assert "ManagedPolicyArns" in alone.one("AWS::IAM::Role")


def test_launch_template_and_group_without_a_topic(alone: Synth) -> None:
    data = alone.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    group = alone.one("AWS::AutoScaling::AutoScalingGroup")
    assert group["AutoScalingGroupName"] == "Spotgrade-exp-7" and "NotificationConfigurations" not in group
    assert "readonly SPOTGRADE_TOPIC_ARN=''" in user_data_of(alone)
    assert alone.one("AWS::Logs::LogGroup")["LogGroupName"] == "/spotgrade/Spotgrade/exp-7"


def test_no_data_uri_no_data_grant(tmp_path: Path) -> None:
    s = build(tmp_path, topic=False, context={k: v for k, v in CONTEXT.items() if k != "dataUri"})
    assert not {"DataRead", "DataList"} & set(instance_policy(s))


def test_optional_topic_gets_publish_grant_group_notifications_and_env(tmp_path: Path) -> None:
    """The hook the notifications construct plugs into: SpotCompute(topic=...)."""
    s = build(tmp_path, topic=True)
    topic_id = next(iter(s.resources("AWS::SNS::Topic")))
    publish = [st for st in identity_statements(s) if st["Action"] == "sns:Publish"]
    assert [st["Resource"] for st in publish] == [{"Ref": topic_id}]
    [notification] = s.one("AWS::AutoScaling::AutoScalingGroup")["NotificationConfigurations"]
    assert notification["TopicARN"] == {"Ref": topic_id}
    assert "autoscaling:EC2_INSTANCE_LAUNCH_ERROR" in notification["NotificationTypes"]
    assert f"SPOTGRADE_TOPIC_ARN='<{topic_id}>'" in user_data_of(s)


def test_root_device_follows_the_ami_family() -> None:
    from stacks.compute import root_device_name

    assert root_device_name("/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id") \
        == "/dev/sda1"
    assert root_device_name("/aws/service/deeplearning/ami/x86_64/x/latest/ami-id") == "/dev/xvda"
