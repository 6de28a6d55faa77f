"""CDK assertions on the composed stack (stacks/spotgrade_stack.py): each security and capacity property of
issue 3, as the constructs come together, and the stack's outputs and tags."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.stacks.helpers import (
    CONTEXT,
    REPO_URL,
    Synth,
    as_list,
    code_asset,
    flatten,
    identity_statements,
    instance_policy,
    synth,
    user_data_of,
)

# Read-only calls without resource-level permissions (instance role; the watchdog adds DescribeInstances).
JUSTIFIED_STAR_ACTIONS = {"ec2:DescribeSpotPriceHistory", "autoscaling:DescribeAutoScalingGroups",
                          "ec2:DescribeInstances"}


@pytest.fixture(scope="module")
def template(default_synth: Synth):
    from aws_cdk.assertions import Template

    return Template.from_json(default_synth.template)


@pytest.fixture(scope="module")
def on_demand(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """capacity=on-demand, an existing bucket, no data URI, context values given as CLI strings."""
    return synth(tmp_path_factory.mktemp("cdk-ondemand"), {
        "repoUrl": REPO_URL, "capacity": "on-demand", "artifactBucket": "team-models",
        "instanceTypes": "g6.xlarge,g5.xlarge", "retainArtifacts": "false"}, nag=True)


# ---------------------------------------------------------------- network

def test_no_inbound_rule_anywhere(default_synth: Synth) -> None:
    assert not default_synth.resources("AWS::EC2::SecurityGroupIngress")
    for group in default_synth.resources("AWS::EC2::SecurityGroup").values():
        assert not group["Properties"].get("SecurityGroupIngress")
    assert "SecurityGroupIngress" not in json.dumps(default_synth.template["Resources"]).replace(
        "ec2:AuthorizeSecurityGroupIngress", "").replace("ec2:RevokeSecurityGroupIngress", "")


def test_vpc_public_subnets_in_two_azs_no_nat_s3_endpoint_flow_logs(template, default_synth: Synth) -> None:
    subnets = default_synth.resources("AWS::EC2::Subnet").values()
    assert len(subnets) == 2
    azs = {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] for s in subnets)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    endpoint = default_synth.one("AWS::EC2::VPCEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway" and ".s3" in flatten(endpoint["ServiceName"])
    flow_log = default_synth.one("AWS::EC2::FlowLog")
    assert flow_log["LogDestinationType"] == "cloud-watch-logs" and flow_log["TrafficType"] == "ALL"


# ---------------------------------------------------------------- launch template and capacity

def test_launch_template_imdsv2_encrypted_gp3_monitoring_terminate(default_synth: Synth) -> None:
    data = default_synth.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    [root] = data["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"] == {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 100, "VolumeType": "gp3"}
    assert data["Monitoring"] == {"Enabled": True}
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert "InstanceMarketOptions" not in data  # spot comes from the group's mixed-instances policy
    assert "KeyName" not in data


def test_ami_comes_from_the_ssm_parameter_at_deploy_time(default_synth: Synth) -> None:
    image = default_synth.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]["ImageId"]
    parameter = default_synth.template["Parameters"][image["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"].startswith("/aws/service/deeplearning/ami/x86_64/")


def test_spot_group_of_one_with_every_instance_type(default_synth: Synth) -> None:
    group = default_synth.one("AWS::AutoScaling::AutoScalingGroup")
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == ("0", "1", "1")
    assert group["AutoScalingGroupName"] == "Spotgrade-exp-7"
    policy = group["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"] == {
        "OnDemandAllocationStrategy": "prioritized", "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 0, "SpotAllocationStrategy": "price-capacity-optimized"}
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == [
        "g4dn.xlarge", "g5.xlarge", "g6.xlarge"]
    public = sorted(k for k, v in default_synth.resources("AWS::EC2::Subnet").items()
                    if v["Properties"]["MapPublicIpOnLaunch"])
    assert sorted(z["Ref"] for z in group["VPCZoneIdentifier"]) == public


def test_on_demand_switch_and_cli_string_context(on_demand: Synth) -> None:
    group = on_demand.one("AWS::AutoScaling::AutoScalingGroup")
    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 100
    assert "SpotAllocationStrategy" not in distribution and "SpotMaxPrice" not in distribution
    assert [o["InstanceType"] for o in group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == [
        "g6.xlarge", "g5.xlarge"]
    assert "SPOTGRADE_CAPACITY=on-demand" in user_data_of(on_demand)


def test_max_spot_price_reaches_the_group(tmp_path: Path) -> None:
    s = synth(tmp_path, {**CONTEXT, "maxSpotPrice": "0.45"}, nag=False)
    distribution = s.one("AWS::AutoScaling::AutoScalingGroup")["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["SpotMaxPrice"] == "0.45"


# ---------------------------------------------------------------- storage

def test_artifacts_bucket_private_tls_encrypted_versioned_lifecycle_retained(default_synth: Synth) -> None:
    buckets = default_synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    artifacts_id, artifacts = next((k, v) for k, v in buckets.items()
                                   if "LoggingConfiguration" in v["Properties"])
    log_id = next(k for k in buckets if k != artifacts_id)
    props = artifacts["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_id}
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    assert rules["expire-run-checkpoints"]["Prefix"] == "runs/exp-7/checkpoints/"
    assert rules["expire-run-checkpoints"]["ExpirationInDays"] == 7
    assert rules["expire-run-environment"]["Prefix"] == "runs/exp-7/env/"  # the packed venvs (GBs)
    assert rules["expire-run-environment"]["ExpirationInDays"] == 7
    for bucket in buckets.values():
        assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    policies = default_synth.resources("AWS::S3::BucketPolicy").values()
    tls_denied = {json.dumps(p["Properties"]["Bucket"]) for p in policies for st in p["Properties"]["PolicyDocument"][
        "Statement"] if st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}}
    assert tls_denied == {json.dumps({"Ref": artifacts_id}), json.dumps({"Ref": log_id})}


def test_existing_bucket_and_opt_out_of_retain(on_demand: Synth) -> None:
    assert not on_demand.resources("AWS::S3::Bucket")  # the existing bucket is used, none created
    statements = instance_policy(on_demand)
    assert flatten(statements["RunPrefixReadWrite"]["Resource"]).endswith(":s3:::team-models/runs/default/*")
    assert "DataRead" not in statements  # no dataUri: synthetic sample, no data grant


def test_retain_opt_out_destroys_created_buckets(tmp_path: Path) -> None:
    s = synth(tmp_path, {**CONTEXT, "retainArtifacts": False}, nag=False)
    for bucket in s.resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"


# ---------------------------------------------------------------- IAM

def test_no_star_action_and_star_resource_only_for_justified_describe_calls(default_synth: Synth) -> None:
    for statement in identity_statements(default_synth):
        assert "*" not in as_list(statement["Action"])
        if "*" in as_list(statement.get("Resource", [])):
            assert set(as_list(statement["Action"])) <= JUSTIFIED_STAR_ACTIONS, statement


def test_instance_role_reads_exactly_the_boot_kit_object(default_synth: Synth) -> None:
    st = instance_policy(default_synth)["BootKitRead"]
    assert as_list(st["Action"]) == ["s3:GetObject"] and st["Effect"] == "Allow"
    [destination] = code_asset(default_synth)["destinations"].values()
    assert flatten(st["Resource"]) == (f"arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-"
                                       f"<AWS::Region>/{destination['objectKey']}")


def test_instance_role_is_scoped_to_the_run(default_synth: Synth) -> None:
    st = instance_policy(default_synth)
    run_objects = flatten(st["RunPrefixReadWrite"]["Resource"])
    assert run_objects.endswith(".Arn>/runs/exp-7/*")
    assert "s3:PutObject" in st["RunPrefixReadWrite"]["Action"]
    assert st["RunPrefixList"]["Condition"] == {"StringLike": {"s3:prefix": ["runs/exp-7/*"]}}
    assert flatten(st["DataRead"]["Resource"]).endswith(":s3:::lc-data-bucket/lendingclub/*")
    assert as_list(st["DataRead"]["Action"]) == ["s3:GetObject"]  # read only
    assert st["DataList"]["Condition"] == {"StringLike": {"s3:prefix": ["lendingclub/*"]}}
    assert flatten(st["OwnAutoScalingGroup"]["Resource"]).endswith(":autoScalingGroupName/Spotgrade-exp-7")
    assert set(st["OwnLogGroup"]["Action"]) >= {"logs:CreateLogStream", "logs:PutLogEvents"}
    log_group_id = next(iter(k for k, v in default_synth.resources("AWS::Logs::LogGroup").items()
                             if v["Properties"].get("LogGroupName") == "/spotgrade/Spotgrade/exp-7"))
    assert st["OwnLogGroup"]["Resource"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    role = next(v for v in default_synth.resources("AWS::IAM::Role").values()
                if "ec2.amazonaws.com" in json.dumps(v["Properties"]["AssumeRolePolicyDocument"]))
    assert [flatten(a) for a in role["Properties"]["ManagedPolicyArns"]] == [
        "arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    group = default_synth.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert "IamInstanceProfile" in group


def test_log_groups_have_retention(default_synth: Synth) -> None:
    for log_group in default_synth.resources("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 30


# ---------------------------------------------------------------- user data, outputs, tags

def test_user_data_carries_quoted_settings_and_the_entrypoint(default_synth: Synth) -> None:
    script = user_data_of(default_synth)
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    assert f"readonly SPOTGRADE_REPO_URL={shlex.quote(REPO_URL)}\n" in script
    assert "readonly SPOTGRADE_GIT_REF=v1.2.0\n" in script
    assert "SPOTGRADE_TRAIN_ARGS='--epochs 40 --features reference'\n" in script
    assert "SPOTGRADE_ASG_NAME=Spotgrade-exp-7\n" in script
    assert "-m training.cloud.run --env-file \"$ENV_FILE\"" in script
    assert 'readonly ENV_FILE="$ROOT/etc/spotgrade/run.env"' in script  # ROOT: empty on an instance
    assert "training/requirements-gpu.txt" in script
    bucket_id = next(k for k, v in default_synth.resources("AWS::S3::Bucket").items()
                     if "LoggingConfiguration" in v["Properties"])
    assert f"SPOTGRADE_BUCKET='<{bucket_id}>'" in script
    # What the boot kit needs before the repository is cloned: the run, its limits and where the kit is.
    assert "readonly SPOTGRADE_RUN_ID=exp-7\n" in script
    assert f"readonly SPOTGRADE_BUCKET='<{bucket_id}>'\n" in script
    assert "readonly SPOTGRADE_MAX_ATTEMPTS=3\n" in script and "\nSPOTGRADE_MAX_ATTEMPTS=3\n" in script
    assert f"readonly SPOTGRADE_ENV_URI='s3://<{bucket_id}>/runs/exp-7/env/'\n" in script
    [kit] = code_asset(default_synth)["destinations"].values()
    assert (f"readonly SPOTGRADE_BOOT_KIT_URI='s3://cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/"
            f"{kit['objectKey']}'\n") in script
    from training.cloud.core.lifecycle import RunnerExit

    [exits] = [line for line in script.splitlines() if line.startswith("readonly EXIT_")]
    assert exits.split()[1:] == [f"EXIT_{code.name}={int(code)}" for code in RunnerExit]
    assert len(script.encode()) < 16 * 1024  # EC2's user-data limit


def test_outputs(default_synth: Synth) -> None:
    from training.cloud.core import outputs as keys

    outputs = default_synth.template["Outputs"]
    assert set(outputs) >= {"BucketName", "RunPrefix", "AutoScalingGroupName", "LogGroupName", "ConsoleLink"}
    declared = {value for name, value in vars(keys).items() if name.isupper()}
    assert set(outputs) == declared  # every output key is core/outputs.py's, and each is declared
    assert flatten(outputs["RunPrefix"]["Value"]).endswith("/runs/exp-7/")
    assert flatten(outputs["ConsoleLink"]["Value"]).startswith("https://console.aws.amazon.com/ec2/")


def test_every_taggable_resource_has_project_and_run_tags(default_synth: Synth) -> None:
    tagged = 0
    for logical_id, resource in default_synth.template["Resources"].items():
        tags = resource.get("Properties", {}).get("Tags")
        if isinstance(tags, list):
            pairs = {t["Key"]: t["Value"] for t in tags}
            assert pairs.get("Project") == "spotgrade", logical_id
            assert pairs.get("spotgrade:run-id") == "exp-7", logical_id
            tagged += 1
    assert tagged >= 10
    data = default_synth.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    kinds = {spec["ResourceType"] for spec in data["TagSpecifications"]
             if {"Key": "spotgrade:run-id", "Value": "exp-7"} in spec["Tags"]}
    assert kinds == {"instance", "volume"}


def test_every_log_retention_setting_has_its_cdk_value() -> None:
    from stacks.spotgrade_stack import RETENTION
    from training.cloud.core.settings import LOG_RETENTION_DAYS

    assert tuple(RETENTION) == LOG_RETENTION_DAYS
