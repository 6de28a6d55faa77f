"""CDK assertions on the composed app (stacks/spotgrade_stack.py): each security and capacity property of issue 3,
as the constructs come together in the shared stack and the run stack, and the stacks' outputs and tags."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.stacks.helpers import (
    CONTEXT,
    REPO_URL,
    AppSynth,
    Synth,
    as_list,
    code_asset,
    flatten,
    identity_statements,
    import_of,
    instance_policy,
    synth,
    user_data_of,
)
from training.cloud.core import outputs as keys

# Read-only calls without resource-level permissions (instance role; the watchdog adds DescribeInstances), and the
# SSM agent's calls for Session Manager (none has resource-level permissions either).
JUSTIFIED_STAR_ACTIONS = {"ec2:DescribeSpotPriceHistory", "autoscaling:DescribeAutoScalingGroups",
                          "ec2:DescribeInstances"}


def justified_star_actions() -> set[str]:
    from stacks.compute import SESSION_MANAGER_ACTIONS

    return JUSTIFIED_STAR_ACTIONS | set(SESSION_MANAGER_ACTIONS)


@pytest.fixture(scope="module")
def on_demand(tmp_path_factory: pytest.TempPathFactory) -> AppSynth:
    """capacity=on-demand, an existing bucket, no data URI, context values given as CLI strings."""
    return synth(tmp_path_factory.mktemp("cdk-ondemand"), {
        "repoUrl": REPO_URL, "capacity": "on-demand", "artifactBucket": "team-models",
        "instanceTypes": "g6.xlarge,g5.xlarge", "retainArtifacts": "false"}, nag=True)


def artifacts_bucket_id(shared: Synth) -> str:
    return next(k for k, v in shared.resources("AWS::S3::Bucket").items() if "LoggingConfiguration" in v["Properties"])


# ---------------------------------------------------------------- network (shared stack)

def test_no_inbound_rule_anywhere(default_synth: AppSynth) -> None:
    for s in (default_synth.shared, default_synth.run):
        assert not s.resources("AWS::EC2::SecurityGroupIngress")
        for group in s.resources("AWS::EC2::SecurityGroup").values():
            assert not group["Properties"].get("SecurityGroupIngress")
        assert "SecurityGroupIngress" not in json.dumps(s.template["Resources"]).replace(
            "ec2:AuthorizeSecurityGroupIngress", "").replace("ec2:RevokeSecurityGroupIngress", "")


def test_vpc_public_subnets_in_two_azs_no_nat_s3_endpoint_flow_logs(shared_synth: Synth) -> None:
    subnets = shared_synth.resources("AWS::EC2::Subnet").values()
    assert len(subnets) == 2
    azs = {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] for s in subnets)
    assert shared_synth.resources("AWS::EC2::NatGateway") == {}
    endpoint = shared_synth.one("AWS::EC2::VPCEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway" and ".s3" in flatten(endpoint["ServiceName"])
    flow_log = shared_synth.one("AWS::EC2::FlowLog")
    assert flow_log["LogDestinationType"] == "cloud-watch-logs" and flow_log["TrafficType"] == "ALL"


# ---------------------------------------------------------------- launch template and capacity (run stack)

def test_launch_template_imdsv2_encrypted_gp3_monitoring_terminate(run_synth: Synth) -> None:
    data = run_synth.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    [root] = data["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"] == {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 100, "VolumeType": "gp3"}
    assert data["Monitoring"] == {"Enabled": True}
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert "InstanceMarketOptions" not in data  # spot comes from the group's mixed-instances policy
    assert "KeyName" not in data
    [interface] = data["NetworkInterfaces"]  # a public IP (no NAT), in the shared stack's security group
    assert interface["AssociatePublicIpAddress"] is True
    assert interface["Groups"] == [import_of(keys.SECURITY_GROUP_ID)]


def test_ami_comes_from_the_ssm_parameter_at_deploy_time(run_synth: Synth) -> None:
    image = run_synth.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]["ImageId"]
    parameter = run_synth.template["Parameters"][image["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"].startswith("/aws/service/deeplearning/ami/x86_64/")


def test_spot_group_of_one_with_every_instance_type(run_synth: Synth) -> None:
    group = run_synth.one("AWS::AutoScaling::AutoScalingGroup")
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == ("0", "1", "1")
    assert group["AutoScalingGroupName"] == "Spotgrade-exp-7"
    policy = group["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"] == {
        "OnDemandAllocationStrategy": "prioritized", "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 0, "SpotAllocationStrategy": "price-capacity-optimized"}
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == [
        "g4dn.xlarge", "g5.xlarge", "g6.xlarge"]
    # The shared stack's two public subnets, from its export.
    subnets = import_of(keys.PUBLIC_SUBNET_IDS)
    assert group["VPCZoneIdentifier"] == [{"Fn::Select": [i, {"Fn::Split": [",", subnets]}]} for i in range(2)]


def test_on_demand_switch_and_cli_string_context(on_demand: AppSynth) -> None:
    group = on_demand.run.one("AWS::AutoScaling::AutoScalingGroup")
    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 100
    assert "SpotAllocationStrategy" not in distribution and "SpotMaxPrice" not in distribution
    assert [o["InstanceType"] for o in group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == [
        "g6.xlarge", "g5.xlarge"]
    assert "SPOTGRADE_CAPACITY=on-demand" in user_data_of(on_demand.run)


def test_max_spot_price_reaches_the_group(tmp_path: Path) -> None:
    s = synth(tmp_path, {**CONTEXT, "maxSpotPrice": "0.45"}, nag=False).run
    distribution = s.one("AWS::AutoScaling::AutoScalingGroup")["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["SpotMaxPrice"] == "0.45"


# ---------------------------------------------------------------- storage (shared stack)

def test_artifacts_bucket_private_tls_encrypted_versioned_lifecycle_retained(shared_synth: Synth) -> None:
    buckets = shared_synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    artifacts_id = artifacts_bucket_id(shared_synth)
    log_id = next(k for k in buckets if k != artifacts_id)
    props = buckets[artifacts_id]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_id}
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    # Every run's checkpoints and packed venvs (GBs), whatever its id: one rule, no run id in it.
    assert rules["expire-run-scratch"]["Prefix"] == "scratch/"
    assert rules["expire-run-scratch"]["ExpirationInDays"] == 7
    for bucket in buckets.values():
        assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    assert not shared_synth.resources("Custom::S3AutoDeleteObjects")
    policies = shared_synth.resources("AWS::S3::BucketPolicy").values()
    tls_denied = {json.dumps(p["Properties"]["Bucket"]) for p in policies for st in p["Properties"]["PolicyDocument"][
        "Statement"] if st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}}
    assert tls_denied == {json.dumps({"Ref": artifacts_id}), json.dumps({"Ref": log_id})}


def test_existing_bucket_and_opt_out_of_retain(on_demand: AppSynth) -> None:
    assert not on_demand.shared.resources("AWS::S3::Bucket")  # the existing bucket is used, none created
    assert on_demand.shared.template["Outputs"][keys.BUCKET_NAME]["Value"] == "team-models"
    statements = instance_policy(on_demand.run)
    assert [flatten(r) for r in statements["RunPrefixReadWrite"]["Resource"]] == [
        f"arn:<AWS::Partition>:s3:::<import Spotgrade:{keys.BUCKET_NAME}>/runs/default/*",
        f"arn:<AWS::Partition>:s3:::<import Spotgrade:{keys.BUCKET_NAME}>/scratch/default/*"]
    assert "DataRead" not in statements  # no dataUri: synthetic sample, no data grant


def test_retain_opt_out_empties_and_destroys_created_buckets(tmp_path: Path) -> None:
    """retainArtifacts=false: both buckets are deleted with the shared stack, after CDK's auto-delete custom
    resource has emptied them (every object version), so the delete cannot fail on a non-empty bucket."""
    s = synth(tmp_path, {**CONTEXT, "retainArtifacts": False}).shared  # cdk-nag live: no new finding
    buckets = s.resources("AWS::S3::Bucket")
    for bucket in buckets.values():
        assert bucket["DeletionPolicy"] == "Delete"
    emptied = {json.dumps(r["Properties"]["BucketName"]) for r in s.resources("Custom::S3AutoDeleteObjects").values()}
    assert emptied == {json.dumps({"Ref": bucket_id}) for bucket_id in buckets}


# ---------------------------------------------------------------- IAM (run stack)

def test_no_star_action_and_star_resource_only_for_justified_calls(default_synth: AppSynth) -> None:
    for s in (default_synth.shared, default_synth.run):
        for statement in identity_statements(s):
            assert "*" not in as_list(statement["Action"])
            assert not any(action.endswith("*") for action in as_list(statement["Action"])), statement
            if "*" in as_list(statement.get("Resource", [])):
                assert set(as_list(statement["Action"])) <= justified_star_actions(), statement


def test_instance_role_reads_exactly_the_boot_kit_object(run_synth: Synth) -> None:
    st = instance_policy(run_synth)["BootKitRead"]
    assert as_list(st["Action"]) == ["s3:GetObject"] and st["Effect"] == "Allow"
    [destination] = code_asset(run_synth)["destinations"].values()
    assert flatten(st["Resource"]) == (f"arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-"
                                       f"<AWS::Region>/{destination['objectKey']}")


def test_instance_role_is_scoped_to_the_run(run_synth: Synth) -> None:
    st = instance_policy(run_synth)
    bucket = f"<import Spotgrade:{keys.BUCKET_NAME}>"
    assert [flatten(r) for r in st["RunPrefixReadWrite"]["Resource"]] == [
        f"arn:<AWS::Partition>:s3:::{bucket}/runs/exp-7/*", f"arn:<AWS::Partition>:s3:::{bucket}/scratch/exp-7/*"]
    assert "s3:PutObject" in st["RunPrefixReadWrite"]["Action"]
    assert st["RunPrefixList"]["Condition"] == {"StringLike": {"s3:prefix": ["runs/exp-7/*", "scratch/exp-7/*"]}}
    assert flatten(st["DataRead"]["Resource"]).endswith(":s3:::lc-data-bucket/lendingclub/*")
    assert as_list(st["DataRead"]["Action"]) == ["s3:GetObject"]  # read only
    assert st["DataList"]["Condition"] == {"StringLike": {"s3:prefix": ["lendingclub/*"]}}
    assert flatten(st["OwnAutoScalingGroup"]["Resource"]).endswith(":autoScalingGroupName/Spotgrade-exp-7")
    assert set(st["OwnLogGroup"]["Action"]) >= {"logs:CreateLogStream", "logs:PutLogEvents"}
    log_group_id = next(iter(k for k, v in run_synth.resources("AWS::Logs::LogGroup").items()
                             if v["Properties"].get("LogGroupName") == "/spotgrade/Spotgrade/exp-7"))
    assert st["OwnLogGroup"]["Resource"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    group = run_synth.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert "IamInstanceProfile" in group


def test_instance_role_sets_only_its_own_groups_desired_capacity(run_synth: Synth) -> None:
    """No autoscaling:UpdateAutoScalingGroup (code on the instance could raise its own group's size): desired
    capacity on its own group, which MinSize 0 lets go to 0."""
    actions = {a for st in instance_policy(run_synth).values() for a in as_list(st["Action"])}
    assert {a for a in actions if a.startswith("autoscaling:")} == {
        "autoscaling:SetDesiredCapacity", "autoscaling:DescribeAutoScalingGroups"}
    assert as_list(instance_policy(run_synth)["OwnAutoScalingGroup"]["Action"]) == ["autoscaling:SetDesiredCapacity"]
    assert run_synth.one("AWS::AutoScaling::AutoScalingGroup")["MinSize"] == "0"


def test_session_manager_through_an_inline_policy_not_the_managed_one(run_synth: Synth) -> None:
    """No AmazonSSMManagedInstanceCore (it reads every Parameter Store value of the account): only the SSM agent's
    Session Manager calls."""
    from stacks.compute import SESSION_MANAGER_ACTIONS

    role = next(v for v in run_synth.resources("AWS::IAM::Role").values()
                if "ec2.amazonaws.com" in json.dumps(v["Properties"]["AssumeRolePolicyDocument"]))
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "AmazonSSMManagedInstanceCore" not in json.dumps(run_synth.template)
    st = instance_policy(run_synth)["SessionManager"]
    assert sorted(as_list(st["Action"])) == sorted(SESSION_MANAGER_ACTIONS) and st["Resource"] == "*"
    assert set(SESSION_MANAGER_ACTIONS) == {
        "ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage", "ec2messages:FailMessage", "ec2messages:GetEndpoint",
        "ec2messages:GetMessages", "ec2messages:SendReply"}
    ssm_actions = {a for s in identity_statements(run_synth) for a in as_list(s["Action"]) if a.startswith("ssm:")}
    assert ssm_actions == {"ssm:UpdateInstanceInformation"}  # no GetParameter(s), documents or associations


def test_log_groups_have_retention(default_synth: AppSynth) -> None:
    for s in (default_synth.shared, default_synth.run):
        for log_group in s.resources("AWS::Logs::LogGroup").values():
            assert log_group["Properties"]["RetentionInDays"] == 30


# ---------------------------------------------------------------- user data, outputs, tags

def test_user_data_carries_quoted_settings_and_the_entrypoint(run_synth: Synth) -> None:
    script = user_data_of(run_synth)
    bucket = f"<import Spotgrade:{keys.BUCKET_NAME}>"
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    assert f"readonly SPOTGRADE_REPO_URL={shlex.quote(REPO_URL)}\n" in script
    assert "readonly SPOTGRADE_GIT_REF=v1.2.0\n" in script
    assert "SPOTGRADE_TRAIN_ARGS='--epochs 40 --features reference'\n" in script
    assert "SPOTGRADE_ASG_NAME=Spotgrade-exp-7\n" in script
    assert "-m training.cloud.run --env-file \"$ENV_FILE\"" in script
    assert 'readonly ENV_FILE="$ROOT/etc/spotgrade/run.env"' in script  # ROOT: empty on an instance
    assert "training/requirements-gpu.txt" in script
    assert f"SPOTGRADE_BUCKET='{bucket}'" in script
    # What the boot kit needs before the repository is cloned: the run, its limits and where the kit is.
    assert "readonly SPOTGRADE_RUN_ID=exp-7\n" in script
    assert f"readonly SPOTGRADE_BUCKET='{bucket}'\n" in script
    assert "readonly SPOTGRADE_MAX_ATTEMPTS=3\n" in script and "\nSPOTGRADE_MAX_ATTEMPTS=3\n" in script
    assert f"readonly SPOTGRADE_ENV_URI='s3://{bucket}/scratch/exp-7/env/'\n" in script
    [kit] = code_asset(run_synth)["destinations"].values()
    assert (f"readonly SPOTGRADE_BOOT_KIT_URI='s3://cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/"
            f"{kit['objectKey']}'\n") in script
    from training.cloud.core.lifecycle import RunnerExit

    [exits] = [line for line in script.splitlines() if line.startswith("readonly EXIT_")]
    assert exits.split()[1:] == [f"EXIT_{code.name}={int(code)}" for code in RunnerExit]
    assert len(script.encode()) < 16 * 1024  # EC2's user-data limit


def test_outputs(default_synth: AppSynth) -> None:
    shared, run = default_synth.shared.template["Outputs"], default_synth.run.template["Outputs"]
    assert list(shared) == list(keys.SHARED_EXPORTS)
    for key, output in shared.items():
        assert output["Export"] == {"Name": f"Spotgrade:{key}"}
    assert list(run) == list(keys.RUN_OUTPUTS)
    assert not any("Export" in output for output in run.values())  # nothing depends on a run stack
    assert (run[keys.RUN_ID]["Value"], run[keys.SHARED_STACK]["Value"]) == ("exp-7", "Spotgrade")
    assert run[keys.RUN_PREFIX]["Value"] == "runs/exp-7/"
    assert flatten(run["ConsoleLink"]["Value"]).startswith("https://console.aws.amazon.com/ec2/")
    assert "Fn::ImportValue" not in json.dumps(run)  # cfn-lint W6001: no import repeated as an output


def test_every_taggable_resource_has_project_tag_and_run_resources_the_run_tag(default_synth: AppSynth) -> None:
    for s, run_tag in ((default_synth.shared, None), (default_synth.run, "exp-7")):
        tagged = 0
        for logical_id, resource in s.template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if isinstance(tags, list):
                pairs = {t["Key"]: t.get("Value", t.get("TagValue")) for t in tags}
                assert pairs.get("Project") == "spotgrade", logical_id
                assert pairs.get("spotgrade:run-id") == run_tag, logical_id
                tagged += 1
        assert tagged >= 5
    data = default_synth.run.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    kinds = {spec["ResourceType"] for spec in data["TagSpecifications"]
             if {"Key": "spotgrade:run-id", "Value": "exp-7"} in spec["Tags"]}
    assert kinds == {"instance", "volume"}


def test_every_log_retention_setting_has_its_cdk_value() -> None:
    from stacks.spotgrade_stack import RETENTION
    from training.cloud.core.settings import LOG_RETENTION_DAYS

    assert tuple(RETENTION) == LOG_RETENTION_DAYS
