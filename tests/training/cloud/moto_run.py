"""A deployed run, faked in moto: bucket, Auto Scaling group, log group, topic and a CloudFormation stack
whose outputs name them (the outputs the run-control commands read)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import boto3

from training.cloud.core import layout, lifecycle, status_store

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


def make_run(sess: boto3.Session, *, run_id: str = "run-1", desired: int = 1, stack: str = STACK,
             with_stack: bool = True) -> FakeRun:
    """Create the run's resources (inside mock_aws) and a stack with their names as outputs."""
    bucket = f"spotgrade-artifacts-{run_id.lower()}"
    asg_name = f"spotgrade-{run_id}"
    log_group = f"/spotgrade/{run_id}"
    sess.client("s3").create_bucket(Bucket=bucket)
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
              {"Key": "aws:cloudformation:stack-name", "Value": stack, "PropagateAtLaunch": True,
               "ResourceId": asg_name, "ResourceType": "auto-scaling-group"}],
    )
    sess.client("logs").create_log_group(logGroupName=log_group)
    topic_arn = sess.client("sns").create_topic(Name=f"spotgrade-{run_id}")["TopicArn"]
    if with_stack:
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {
                "BucketName": {"Value": bucket},
                "RunPrefix": {"Value": f"s3://{bucket}/runs/{run_id}/"},
                "RunId": {"Value": run_id},
                "AutoScalingGroupName": {"Value": asg_name},
                "LogGroupName": {"Value": log_group},
                "TopicArn": {"Value": topic_arn},
            },
        }
        sess.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    return FakeRun(sess, bucket, run_id, asg_name, log_group, topic_arn)


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
