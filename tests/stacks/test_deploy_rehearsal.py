"""Deploy rehearsal: the synthesized templates, created as stacks in moto's CloudFormation: the shared stack, then
two run stacks that import its exports.

What this proves: the templates parse, every Ref/GetAtt/Join/ImportValue resolves, resources are created in
dependency order and each stack reaches CREATE_COMPLETE with the outputs we promise; each run's group exists
under its explicit name with one instance, in the shared VPC's subnets; the watchdog function (its code, the
CloudCode zip, published to the bootstrap bucket first, as `cdk deploy` does), its schedule and the shared
encrypted topic exist, and the function's deployed settings drive the watchdog handler (called in-process) to
scale its own group to 0 and no other; destroying a run's stack leaves the other run, the bucket and its log group.
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
moto, so this synth leaves out the restrict-default-security-group custom resource; moto has no
AWS::CloudWatch::Alarm (the watchdog's alarm is skipped with a warning: the synth tests cover it).
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
from tests.stacks.helpers import CONTEXT, AppSynth, synth


@pytest.fixture(scope="module")
def moto_synths(tmp_path_factory: pytest.TempPathFactory) -> tuple[AppSynth, AppSynth]:
    return tuple(synth(tmp_path_factory.mktemp(f"cdk-moto-{run_id}"), {**CONTEXT, "runId": run_id}, nag=False,
                       restrict_default_security_group=False) for run_id in ("exp-7", "exp-8"))


def create(cfn, s3, account: str, stack, published: dict[str, bytes]) -> dict[str, str]:
    """What `cdk deploy` does for one stack: publish its assets, create it; its outputs. `published` keeps the
    first bytes published under each key (what the first stack's functions were created from)."""
    for key, body in publish_file_assets(stack.outdir, stack.stack_name, s3, account).items():
        published.setdefault(key, body)
    template = moto_ready(stack.template)
    assert not any(r["Type"].startswith("Custom::") for r in template["Resources"].values())
    cfn.create_stack(StackName=stack.stack_name, TemplateBody=json.dumps(template),
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    [created] = cfn.describe_stacks(StackName=stack.stack_name)["Stacks"]
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}


@pytest.mark.slow
def test_shared_stack_and_two_run_stacks_reach_create_complete_in_moto(moto_synths) -> None:
    import boto3
    from moto import mock_aws

    first, second = moto_synths
    assert first.shared.template == second.shared.template  # one shared stack for both runs

    with mock_aws(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto: "AWS::S3::BucketPolicy not supported", ...
        clients = {name: boto3.client(name, region_name=REGION)
                   for name in ("ec2", "s3", "cloudformation", "autoscaling", "logs", "sns", "lambda", "events")}
        ec2, s3, cfn, autoscaling = (clients[n] for n in ("ec2", "s3", "cloudformation", "autoscaling"))
        prepare_account(boto3.Session(region_name=REGION))
        account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
        published: dict[str, bytes] = {}  # the objects as the functions were created from them
        shared = create(cfn, s3, account, first.shared, published)
        runs = {app.run.stack_name: create(cfn, s3, account, app.run, published) for app in (first, second)}

        bucket = shared["BucketName"]
        s3.head_bucket(Bucket=bucket)  # exists (moto does not apply its versioning/encryption properties)
        exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
        assert exports["Spotgrade:BucketName"] == bucket and exports["Spotgrade:TopicArn"] == shared["TopicArn"]
        sns = clients["sns"]
        topic = sns.get_topic_attributes(TopicArn=shared["TopicArn"])["Attributes"]
        assert topic["KmsMasterKeyId"]
        assert sns.list_subscriptions_by_topic(TopicArn=shared["TopicArn"])["Subscriptions"] == []
        groups = ec2.describe_security_groups(Filters=[{"Name": "description", "Values": ["spotgrade*"]}])
        [instance_sg] = groups["SecurityGroups"]
        assert instance_sg["IpPermissions"] == []
        subnets = set(shared["PublicSubnetIds"].split(","))
        assert len(subnets) == 2

        for run_id in ("exp-7", "exp-8"):
            outputs = runs[f"Spotgrade-{run_id}"]
            assert (outputs["RunId"], outputs["SharedStackName"]) == (run_id, "Spotgrade")
            assert outputs["RunPrefix"] == f"runs/{run_id}/"
            assert outputs["AutoScalingGroupName"] == f"Spotgrade-{run_id}"
            assert outputs["LogGroupName"] == f"/spotgrade/Spotgrade/{run_id}"
            assert f"region={REGION}" in outputs["ConsoleLink"]
            [group] = autoscaling.describe_auto_scaling_groups(
                AutoScalingGroupNames=[f"Spotgrade-{run_id}"])["AutoScalingGroups"]
            assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 1, 1)
            assert len(group["Instances"]) == 1
            assert set(group["VPCZoneIdentifier"].split(",")) == subnets  # the shared VPC's
        log_groups = clients["logs"].describe_log_groups(logGroupNamePrefix="/spotgrade/")["logGroups"]
        assert sorted(g["logGroupName"] for g in log_groups) == ["/spotgrade/Spotgrade/exp-7",
                                                                 "/spotgrade/Spotgrade/exp-8"]
        assert {g["retentionInDays"] for g in log_groups} == {30}

        # Run control: each run's watchdog function and schedule, wired to its own group and the shared topic.
        lambda_ = clients["lambda"]
        functions = {f["Environment"]["Variables"]["SPOTGRADE_RUN_ID"]: f
                     for f in lambda_.list_functions()["Functions"] if f["Handler"] == HANDLER}
        assert set(functions) == {"exp-7", "exp-8"}
        for run_id, function in functions.items():
            env = function["Environment"]["Variables"]
            assert (env["SPOTGRADE_BUCKET"], env["SPOTGRADE_TOPIC_ARN"]) == (bucket, shared["TopicArn"])
            assert env["SPOTGRADE_ASG_NAME"] == f"Spotgrade-{run_id}"
        rules = clients["events"].list_rules()["Rules"]
        assert [r["ScheduleExpression"] for r in rules] == ["rate(5 minutes)"] * 2

        # The function's code is the CloudCode asset: the zip of asset_files() the boot kit comes from.
        from stacks.cloud_code import asset_files

        [(kit_key, kit_zip)] = {(key, body) for key, body in published.items()
                                if sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == asset_files()}
        function = functions["exp-7"]
        code = lambda_.get_function(FunctionName=function["FunctionName"])
        assert code["Code"]["Location"].endswith(f"/{kit_key}")
        assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(kit_zip).digest()).decode()
        assert function["CodeSize"] == len(kit_zip)

        # The deployed settings drive the handler (in-process: moto runs Lambda code only in Docker): exp-7's
        # watchdog scales exp-7's group to 0 and leaves exp-8's.
        from training.cloud.core import layout, lifecycle, watchdog
        from training.cloud.core.status_store import StatusStore

        env = function["Environment"]["Variables"]
        run = layout.RunLayout(bucket, env["SPOTGRADE_RUN_ID"])
        StatusStore(s3, run).change(lambda _: {**lifecycle.new_status(run.run_id), "state": "SUCCEEDED"})
        result = watchdog.check(s3, autoscaling, ec2, sns, watchdog.Settings.from_env(env))
        assert result["action"] == "scaled_to_zero" and result["event"] == "SUCCEEDED"
        desired = {g["AutoScalingGroupName"]: g["DesiredCapacity"]
                   for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]}
        assert desired == {"Spotgrade-exp-7": 0, "Spotgrade-exp-8": 1}

        # `make destroy RUN=exp-7`: its stack goes; the bucket (shared stack), its files, its log group and the
        # other run stay.
        cfn.delete_stack(StackName="Spotgrade-exp-7")
        assert {s["StackName"] for s in cfn.describe_stacks()["Stacks"]} == {"Spotgrade", "Spotgrade-exp-8"}
        assert [g["AutoScalingGroupName"] for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]] \
            == ["Spotgrade-exp-8"]
        assert StatusStore(s3, run).read()["state"] == "SUCCEEDED"
        kept = clients["logs"].describe_log_groups(logGroupNamePrefix="/spotgrade/Spotgrade/exp-7")["logGroups"]
        assert [g["logGroupName"] for g in kept] == ["/spotgrade/Spotgrade/exp-7"]
