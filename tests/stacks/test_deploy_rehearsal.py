"""Deploy rehearsal: the synthesized template, created as a stack in moto's CloudFormation.

What this proves: the template parses, every Ref/GetAtt/Join resolves, resources are created in
dependency order and the stack reaches CREATE_COMPLETE with the outputs we promise; the group exists
under its explicit name with one instance. What moto does NOT check (the CDK assertions cover these
on the template instead): IAM policy semantics, the launch template's settings (IMDSv2, encryption,
user data: moto ignores them), spot allocation/mixed-instances behaviour, S3 bucket policies
(AWS::S3::BucketPolicy is skipped with a warning), bucket properties (versioning, encryption and
lifecycle rules are not applied), flow log delivery, real AMI ids, service quotas and capacity. Custom resources cannot run in moto, so this synth leaves out the
restrict-default-security-group custom resource.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tests.stacks.conftest import CONTEXT, Synth, synth

REGION = "us-east-1"
FAKE_AMI_PARAMETER = "/spotgrade-test/dlami"  # moto refuses to create parameters under /aws/


@pytest.fixture(scope="module")
def moto_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("cdk-moto"), CONTEXT, nag=False, restrict_default_security_group=False)


@pytest.mark.slow
def test_stack_reaches_create_complete_in_moto(moto_synth: Synth) -> None:
    import boto3
    from moto import mock_aws

    template = json.loads(json.dumps(moto_synth.template))
    assert not any(r["Type"].startswith("Custom::") for r in template["Resources"].values())
    parameters = template["Parameters"]
    [ami_key] = [k for k, v in parameters.items() if v["Default"].startswith("/aws/service/deeplearning/")]
    parameters[ami_key]["Default"] = FAKE_AMI_PARAMETER

    with mock_aws(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto: "AWS::S3::BucketPolicy not supported"
        ec2 = boto3.client("ec2", region_name=REGION)
        image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name=FAKE_AMI_PARAMETER, Value=image_id, Type="String")
        ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="Spotgrade", TemplateBody=json.dumps(template),
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
        stack = cfn.describe_stacks(StackName="Spotgrade")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

        bucket = outputs["BucketName"]
        assert outputs["RunPrefix"] == f"s3://{bucket}/runs/exp-7/"
        assert outputs["AutoScalingGroupName"] == "Spotgrade-exp-7"
        assert outputs["LogGroupName"] == "/spotgrade/Spotgrade/exp-7"
        assert f"region={REGION}" in outputs["ConsoleLink"]

        s3 = boto3.client("s3", region_name=REGION)
        s3.head_bucket(Bucket=bucket)  # exists (moto does not apply its versioning/encryption properties)
        [group] = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
            AutoScalingGroupNames=["Spotgrade-exp-7"])["AutoScalingGroups"]
        assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 1, 1)
        assert len(group["Instances"]) == 1
        groups = ec2.describe_security_groups(Filters=[{"Name": "description", "Values": ["spotgrade*"]}])
        [instance_sg] = groups["SecurityGroups"]
        assert instance_sg["IpPermissions"] == []
        logs = boto3.client("logs", region_name=REGION)
        [log_group] = logs.describe_log_groups(logGroupNamePrefix="/spotgrade/")["logGroups"]
        assert log_group["retentionInDays"] == 30
