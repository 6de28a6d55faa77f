"""Deploy the synthesized stack into moto as `cdk deploy` would, and read back what CloudFormation rendered.

`cdk deploy`'s change set cannot run against moto (it cannot fetch the regional TemplateURL), so the stack is
created through the CloudFormation API after the file assets are published to the bootstrap bucket. Only what
moto cannot do is changed in the template: the Deep Learning AMI's public SSM parameter (moto refuses
parameters under /aws/) points at a parameter of moto's own, and KMS key tags are reshaped (moto 5.2 hands
CloudFormation's {Key, Value} tags to KMS, which wants {TagKey, TagValue}). The synth leaves out the
restrict-default-security-group custom resource (custom resources cannot run in moto).
"""
from __future__ import annotations

import base64
import io
import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.watchdog import HANDLER

REGION = "us-east-1"
FAKE_AMI_PARAMETER = "/spotgrade-test/dlami"


def publish_file_assets(outdir: Path, stack_name: str, s3: Any, account: str) -> dict[str, bytes]:
    """What `cdk deploy` does before creating the stack: zip each staged file asset into the bootstrap bucket.

    Returns each published zip by its object key."""
    manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())["files"]
    published: dict[str, bytes] = {}
    for asset in manifest.values():
        if asset["source"].get("packaging") != "zip":
            continue  # the template itself
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            root = outdir / asset["source"]["path"]
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(root).as_posix())
        for destination in asset["destinations"].values():
            bucket = destination["bucketName"].replace("${AWS::AccountId}", account).replace("${AWS::Region}", REGION)
            if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=archive.getvalue())
            published[destination["objectKey"]] = archive.getvalue()
    return published


def moto_ready(template: dict) -> dict:
    """A copy of the template with the two changes moto needs (see the module docstring)."""
    template = json.loads(json.dumps(template))
    parameters = template["Parameters"]
    [ami_key] = [k for k, v in parameters.items() if v["Default"].startswith("/aws/service/deeplearning/")]
    parameters[ami_key]["Default"] = FAKE_AMI_PARAMETER
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":
            props = resource["Properties"]
            props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props.get("Tags", [])]
    return template


def prepare_account(session: Any) -> None:
    """The account-level things a real account has: the AMI parameter and the CDK bootstrap version."""
    ec2, ssm = session.client("ec2"), session.client("ssm")
    names = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
    if FAKE_AMI_PARAMETER not in names:
        image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ssm.put_parameter(Name=FAKE_AMI_PARAMETER, Value=image_id, Type="String")
        ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")


@dataclass
class Deployed:
    """A stack created in moto: its outputs, the user data as rendered, the watchdog's settings."""

    stack_name: str
    outputs: dict[str, str]
    user_data: str
    watchdog_env: dict[str, str]
    queue_url: str = ""  # an SQS queue subscribed to the topic (set by the rehearsal)

    @property
    def bucket(self) -> str:
        return self.outputs["BucketName"]

    @property
    def group(self) -> str:
        return self.outputs["AutoScalingGroupName"]

    @property
    def log_group(self) -> str:
        return self.outputs["LogGroupName"]

    @property
    def topic_arn(self) -> str:
        return self.outputs["TopicArn"]


def deploy(session: Any, outdir: Path, stack_name: str, template: dict) -> Deployed:
    """Publish the assets, create the stack from the template, and read back what it rendered."""
    prepare_account(session)
    account = session.client("sts").get_caller_identity()["Account"]
    publish_file_assets(outdir, stack_name, session.client("s3"), account)
    cfn = session.client("cloudformation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto: "AWS::S3::BucketPolicy not supported"
        cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(moto_ready(template)),
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    [group] = session.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["AutoScalingGroupName"]])["AutoScalingGroups"]
    spec = group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    [version] = session.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=["$Latest"])["LaunchTemplateVersions"]
    user_data = base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
    functions = session.client("lambda").list_functions()["Functions"]
    [watchdog] = [f for f in functions if f["Handler"] == HANDLER
                  and f["Environment"]["Variables"]["SPOTGRADE_ASG_NAME"] == outputs["AutoScalingGroupName"]]
    return Deployed(stack_name, outputs, user_data, watchdog["Environment"]["Variables"])
