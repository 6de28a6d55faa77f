"""Deploy the synthesized stacks into moto as `cdk deploy` would, and read back what CloudFormation rendered.

`cdk deploy`'s change set cannot run against moto (it cannot fetch the regional TemplateURL), so each stack is
created through the CloudFormation API after its file assets are published to the bootstrap bucket: the shared
stack first (once: every run stack imports its exports), then the run's stack. Only what moto cannot do is changed
in a template: the Deep Learning AMI's public SSM parameter (moto refuses parameters under /aws/) points at a
parameter of moto's own, and KMS key tags are reshaped (moto 5.2 hands CloudFormation's {Key, Value} tags to KMS,
which wants {TagKey, TagValue}). The synth leaves out the restrict-default-security-group custom resource (custom
resources cannot run in moto); moto skips the CloudWatch alarm (no CloudFormation support) with a warning.
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
from training.cloud.core import outputs as keys

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
    parameters = template.get("Parameters", {})
    for key in [k for k, v in parameters.items() if v["Default"].startswith("/aws/service/deeplearning/")]:
        parameters[key]["Default"] = FAKE_AMI_PARAMETER
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
    """A run stack created in moto (with its shared stack): both stacks' outputs, the user data as rendered, the
    watchdog's settings."""

    stack_name: str
    shared_outputs: dict[str, str]
    outputs: dict[str, str]
    user_data: str
    watchdog_env: dict[str, str]
    queue_url: str = ""  # an SQS queue subscribed to the topic (set by the rehearsal)

    @property
    def shared_stack(self) -> str:
        return self.outputs[keys.SHARED_STACK]

    @property
    def bucket(self) -> str:
        return self.shared_outputs[keys.BUCKET_NAME]

    @property
    def group(self) -> str:
        return self.outputs[keys.ASG_NAME]

    @property
    def log_group(self) -> str:
        return self.outputs[keys.LOG_GROUP_NAME]

    @property
    def topic_arn(self) -> str:
        return self.shared_outputs[keys.TOPIC_ARN]


def create_stack(session: Any, outdir: Path, stack_name: str, template: dict) -> dict[str, str]:
    """Publish the stack's assets and create it from the template; its outputs."""
    prepare_account(session)
    account = session.client("sts").get_caller_identity()["Account"]
    publish_file_assets(outdir, stack_name, session.client("s3"), account)
    cfn = session.client("cloudformation")
    with warnings.catch_warnings():
        # moto: "AWS::S3::BucketPolicy not supported", "AWS::CloudWatch::Alarm not supported", ...
        warnings.simplefilter("ignore", UserWarning)
        cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(moto_ready(template)),
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def ensure_shared_stack(session: Any, outdir: Path, stack_name: str, template: dict) -> dict[str, str]:
    """The shared stack's outputs, creating it first where it does not exist yet. Where it does, the template given
    must be the one it was created from: deploying a run never changes the shared stack."""
    cfn = session.client("cloudformation")
    existing = [s for s in cfn.list_stacks()["StackSummaries"]
                if s["StackName"] == stack_name and s["StackStatus"] != "DELETE_COMPLETE"]
    if not existing:
        return create_stack(session, outdir, stack_name, template)
    body = cfn.get_template(StackName=stack_name)["TemplateBody"]  # botocore decodes a JSON body
    deployed = json.loads(body) if isinstance(body, str) else body
    assert deployed == moto_ready(template), "a run's synth changed the shared stack's template"
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def deploy(session: Any, outdir: Path, shared_name: str, shared_template: dict, run_name: str,
           run_template: dict) -> Deployed:
    """`cdk deploy <shared> <run>`: the shared stack (where it is not there yet), then the run's stack; and read
    back what they rendered."""
    shared_outputs = ensure_shared_stack(session, outdir, shared_name, shared_template)
    outputs = create_stack(session, outdir, run_name, run_template)
    [group] = session.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs[keys.ASG_NAME]])["AutoScalingGroups"]
    spec = group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    [version] = session.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=["$Latest"])["LaunchTemplateVersions"]
    user_data = base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
    functions = session.client("lambda").list_functions()["Functions"]
    [watchdog] = [f for f in functions if f["Handler"] == HANDLER
                  and f["Environment"]["Variables"]["SPOTGRADE_ASG_NAME"] == outputs[keys.ASG_NAME]]
    return Deployed(run_name, shared_outputs, outputs, user_data, watchdog["Environment"]["Variables"])
