"""Deploy rehearsal: the synthesized template, created as a stack in moto's CloudFormation.

What this proves: the template parses, every Ref/GetAtt/Join resolves, resources are created in
dependency order and the stack reaches CREATE_COMPLETE with the outputs we promise; the group exists
under its explicit name with one instance; the watchdog function (its code, the CloudCode zip, published
to the bootstrap bucket first, as `cdk deploy` does), its schedule and the encrypted topic exist, and the
function's deployed settings drive the watchdog handler (called in-process) to scale the group to 0.
What moto does NOT check (the CDK assertions cover these on the template instead): IAM policy
semantics, the launch template's settings (IMDSv2, encryption, user data: moto ignores them),
spot allocation/mixed-instances behaviour, S3 bucket policies and the SNS topic policy
(AWS::S3::BucketPolicy and AWS::SNS::TopicPolicy are skipped with a warning), KMS key policies
(stored, never enforced), bucket properties (versioning, encryption and lifecycle rules are not
applied), flow log delivery, real AMI ids, service quotas and capacity. Lambda: moto stores the
function (runtime, handler, environment, code from S3) but runs code only in Docker, so the handler is
not invoked by the schedule here, and the function's role is not checked against what the handler
calls (the moto clients here have every permission). KMS keys: moto 5.2 mis-reads CloudFormation
tags on AWS::KMS::Key, so the rehearsal rewrites them (see below). Custom resources cannot run in
moto, so this synth leaves out the restrict-default-security-group custom resource.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import warnings
import zipfile

import pytest

from stacks.watchdog import HANDLER
from tests.rehearsal.deploy import REGION, moto_ready, prepare_account, publish_file_assets
from tests.stacks.helpers import CONTEXT, Synth, synth


@pytest.fixture(scope="module")
def moto_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("cdk-moto"), CONTEXT, nag=False, restrict_default_security_group=False)


@pytest.mark.slow
def test_stack_reaches_create_complete_in_moto(moto_synth: Synth) -> None:
    import boto3
    from moto import mock_aws

    template = moto_ready(moto_synth.template)
    assert not any(r["Type"].startswith("Custom::") for r in template["Resources"].values())

    with mock_aws(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto: "AWS::S3::BucketPolicy not supported"
        ec2 = boto3.client("ec2", region_name=REGION)
        prepare_account(boto3.Session(region_name=REGION))
        published = publish_file_assets(moto_synth.outdir, "Spotgrade", boto3.client("s3", region_name=REGION),
                                        boto3.client("sts", region_name=REGION).get_caller_identity()["Account"])
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

        # Run control: the watchdog function, its schedule and the topic, wired to this stack's resources.
        assert outputs["RunId"] == "exp-7"
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.get_topic_attributes(TopicArn=outputs["TopicArn"])["Attributes"]
        assert topic["KmsMasterKeyId"]
        assert sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])["Subscriptions"] == []
        lambda_ = boto3.client("lambda", region_name=REGION)
        [function] = [f for f in lambda_.list_functions()["Functions"] if f["Handler"] == HANDLER]
        env = function["Environment"]["Variables"]
        assert (env["SPOTGRADE_BUCKET"], env["SPOTGRADE_TOPIC_ARN"]) == (bucket, outputs["TopicArn"])
        [rule] = boto3.client("events", region_name=REGION).list_rules()["Rules"]
        assert rule["ScheduleExpression"] == "rate(5 minutes)"

        # The function's code is the CloudCode asset: the zip of asset_files() the boot kit comes from.
        from stacks.cloud_code import asset_files

        [(kit_key, kit_zip)] = [(key, body) for key, body in published.items()
                                if sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == asset_files()]
        code = lambda_.get_function(FunctionName=function["FunctionName"])
        assert code["Code"]["Location"].endswith(f"/{kit_key}")
        assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(kit_zip).digest()).decode()
        assert function["CodeSize"] == len(kit_zip)

        # The deployed settings drive the handler (in-process: moto runs Lambda code only in Docker).
        from training.cloud.core import layout, lifecycle, watchdog
        from training.cloud.core.status_store import StatusStore

        run = layout.RunLayout(bucket, env["SPOTGRADE_RUN_ID"])
        StatusStore(s3, run).change(lambda _: {**lifecycle.new_status(run.run_id), "state": "SUCCEEDED"})
        result = watchdog.check(s3, boto3.client("autoscaling", region_name=REGION), ec2, sns,
                                watchdog.Settings.from_env(env))
        assert result["action"] == "scaled_to_zero" and result["event"] == "SUCCEEDED"
        [group] = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
            AutoScalingGroupNames=[env["SPOTGRADE_ASG_NAME"]])["AutoScalingGroups"]
        assert group["DesiredCapacity"] == 0
