"""Deployed runs, faked in moto: the shared stack (bucket, topic) and, per run, an Auto Scaling group, a log group
and the run's stack, with the outputs the run-control commands read (core/outputs.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import boto3

from training.cloud.core import layout, lifecycle, status_store
from training.cloud.core import outputs as keys

REGION = "us-east-1"
STACK = "Spotgrade"


@dataclass
class FakeRun:
    session: boto3.Session
    bucket: str
    run_id: str
    asg_name: str
    log_group: str
    topic_arn: str
    stack: str = STACK  # the shared stack

    @property
    def run_stack(self) -> str:
        return keys.run_stack_name(self.stack, self.run_id)

    def destroy_stack(self) -> None:
        """`make destroy RUN=<id>`: the run's stack and group go; its files and its log group stay."""
        self.client("cloudformation").delete_stack(StackName=self.run_stack)
        self.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=self.asg_name, ForceDelete=True)

    @property
    def layout(self) -> layout.RunLayout:
        return layout.RunLayout(self.bucket, self.run_id)

    def client(self, name: str):
        return self.session.client(name)

    def put_status(self, status: dict) -> dict:
        status_store.StatusStore(self.client("s3"), self.layout).change(lambda _: status)
        return status

    def status(self) -> dict | None:
        return status_store.read_status(self.client("s3"), self.layout)

    def group(self) -> dict:
        asg = self.client("autoscaling")
        return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg_name])["AutoScalingGroups"][0]


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def session() -> boto3.Session:
    return boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def make_shared(sess: boto3.Session, stack: str = STACK) -> tuple[str, str]:
    """The shared stack (bucket, topic) where it does not exist yet; (bucket, topic ARN)."""
    cfn = sess.client("cloudformation")
    existing = [s for s in cfn.list_stacks()["StackSummaries"]
                if s["StackName"] == stack and s["StackStatus"] != "DELETE_COMPLETE"]
    if existing:
        [described] = cfn.describe_stacks(StackName=stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
        return outputs[keys.BUCKET_NAME], outputs[keys.TOPIC_ARN]
    bucket = f"spotgrade-artifacts-{stack.lower()}"
    sess.client("s3").create_bucket(Bucket=bucket)
    topic_arn = sess.client("sns").create_topic(Name=f"{stack}-notifications")["TopicArn"]
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {keys.BUCKET_NAME: {"Value": bucket}, keys.TOPIC_ARN: {"Value": topic_arn}}}
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    return bucket, topic_arn


def make_run(sess: boto3.Session, *, run_id: str = "run-1", desired: int = 1, stack: str = STACK,
             with_stack: bool = True) -> FakeRun:
    """Create the shared stack (once) and the run's resources (inside mock_aws): its group, its log group and, with
    `with_stack`, its run stack whose outputs name them."""
    bucket, topic_arn = make_shared(sess, stack)
    run_stack = keys.run_stack_name(stack, run_id)
    asg_name = run_stack
    log_group = keys.log_group_name(stack, run_id)
    ec2 = sess.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    ec2.create_launch_template(
        LaunchTemplateName=asg_name,
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g5.xlarge"},
    )
    sess.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateName": asg_name, "Version": "$Latest"},
        MinSize=0, MaxSize=1, DesiredCapacity=desired, VPCZoneIdentifier=subnet,
        Tags=[{"Key": "Project", "Value": "spotgrade", "PropagateAtLaunch": True,
               "ResourceId": asg_name, "ResourceType": "auto-scaling-group"},
              {"Key": "aws:cloudformation:stack-name", "Value": run_stack, "PropagateAtLaunch": True,
               "ResourceId": asg_name, "ResourceType": "auto-scaling-group"}],
    )
    sess.client("logs").create_log_group(logGroupName=log_group)
    if with_stack:
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {
                keys.RUN_ID: {"Value": run_id},
                keys.SHARED_STACK: {"Value": stack},
                keys.RUN_PREFIX: {"Value": layout.RunKeys(run_id).prefix},
                keys.ASG_NAME: {"Value": asg_name},
                keys.LOG_GROUP_NAME: {"Value": log_group},
            },
        }
        sess.client("cloudformation").create_stack(StackName=run_stack, TemplateBody=json.dumps(template))
    return FakeRun(sess, bucket, run_id, asg_name, log_group, topic_arn, stack)


def attempt(n: int, started: datetime, ended: datetime | None = None, *, end_state: str | None = None,
            instance_type: str = "g5.xlarge", az: str = "us-east-1a", spot_price: float | None = 0.45) -> dict:
    return {
        "attempt": n, "instance_id": f"i-{n:017x}", "instance_type": instance_type, "availability_zone": az,
        "lifecycle": "spot", "started_at": iso(started), "ended_at": iso(ended) if ended else None,
        "end_state": end_state, "spot_price": spot_price, "billable_seconds": None, "estimated_cost": None,
    }


def running_status(run_id: str, now: datetime, *, heartbeat_age: timedelta = timedelta(minutes=1)) -> dict:
    status = lifecycle.new_status(run_id)
    status.update({"epochs": 30,
        "state": "RUNNING", "attempt": 1, "last_epoch": 7,
        "attempts": [attempt(1, now - timedelta(hours=1))],
        "heartbeat_at": iso(now - heartbeat_age),
        "validation": {"accuracy": 0.512, "weighted_f1": 0.498},
    })
    return status
