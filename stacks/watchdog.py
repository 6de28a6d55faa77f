"""The watchdog: a scheduled Lambda that scales the run's group to 0 when the run is over, past
maxRuntimeHours or hung (handler: training/cloud/watchdog.py), with a least-privilege role."""
from __future__ import annotations


from aws_cdk import Acknowledgment, Aws, Duration, RemovalPolicy, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.cloud_code import CloudCode
from stacks.compute import nag_resource
from training.cloud.core.layout import RunLayout

RUNTIME = lambda_.Runtime.PYTHON_3_14  # cdk-nag AwsSolutions-L1: the latest Python runtime


def _status_key(run_id: str) -> str:
    # layout.py owns the key; the bucket name (a deploy-time token here) does not change it.
    return RunLayout("placeholder-bucket", run_id).status_key


class RunWatchdog(Construct):
    """`function`, `role`, `log_group` and `rule` (the schedule) of the run's watchdog."""

    def __init__(self, scope: Construct, construct_id: str, *, code: CloudCode, bucket: s3.IBucket, run_id: str,
                 group_name: str,
                 max_runtime_hours: float, heartbeat_minutes: int = 15, boot_grace_minutes: int = 30,
                 schedule_minutes: int = 5, log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
                 topic: sns.ITopic | None = None) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= schedule_minutes <= 60:
            raise ValueError(f"schedule_minutes must be 1-60, got {schedule_minutes}")
        status_key = _status_key(run_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"spotgrade watchdog of run {run_id}: its status.json and group only")
        own_group = (f"arn:{Aws.PARTITION}:autoscaling:{Aws.REGION}:{Aws.ACCOUNT_ID}:autoScalingGroup:*"
                     f":autoScalingGroupName/{group_name}")
        statements = [
            iam.PolicyStatement(sid="StatusReadWrite", actions=["s3:GetObject", "s3:PutObject"],
                                resources=[bucket.arn_for_objects(status_key)]),
            # Without ListBucket a missing status.json reads as AccessDenied instead of NoSuchKey.
            iam.PolicyStatement(sid="StatusList", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
                                conditions={"StringEquals": {"s3:prefix": [status_key]}}),
            iam.PolicyStatement(sid="OwnGroupCapacity", actions=["autoscaling:SetDesiredCapacity"],
                                resources=[own_group]),
            iam.PolicyStatement(sid="DescribeOnly",
                                actions=["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"],
                                resources=["*"]),
            iam.PolicyStatement(sid="OwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[self.log_group.log_group_arn]),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        if bucket.encryption_key is not None:
            bucket.encryption_key.grant_encrypt_decrypt(self.role)
        if topic is not None:
            topic.grant_publish(self.role)  # with an SSE topic: kms:GenerateDataKey*/Decrypt on its key too
            acknowledged_actions = {"kms:GenerateDataKey*": "Publishing to an encrypted topic needs data keys of "
                                    "the topic's own key only (resource: that key)."}
        else:
            acknowledged_actions = {}
        acknowledged = {
            "*": "DescribeAutoScalingGroups and DescribeInstances have no resource-level permissions; read-only.",
            own_group: "The group's UUID is only known after creation; the explicit name pins it to this run's group.",
            self.log_group.log_group_arn: "The function's own log group; ':*' covers its log streams.",
        }
        for resource, reason in acknowledged.items():
            Validations.of(self.role).acknowledge(Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, resource)}]", reason=reason))
        for action, reason in acknowledged_actions.items():
            Validations.of(self.role).acknowledge(Acknowledgment(id=f"AwsSolutions-IAM5[Action::{action}]",
                                                                 reason=reason))

        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            handler="watchdog.handler",
            code=lambda_.Code.from_bucket(code.asset.bucket, code.asset.s3_object_key),
            role=self.role,
            timeout=Duration.seconds(60),
            memory_size=128,
            log_group=self.log_group,
            description=f"spotgrade watchdog of run {run_id}: scales its group to 0 when done, timed out or hung",
            environment={
                "SPOTGRADE_BUCKET": bucket.bucket_name,
                "SPOTGRADE_RUN_ID": run_id,
                "SPOTGRADE_ASG_NAME": group_name,
                "SPOTGRADE_MAX_RUNTIME_HOURS": f"{max_runtime_hours:g}",
                "SPOTGRADE_HEARTBEAT_MINUTES": str(heartbeat_minutes),
                "SPOTGRADE_BOOT_GRACE_MINUTES": str(boot_grace_minutes),
                "SPOTGRADE_TOPIC_ARN": topic.topic_arn if topic is not None else "",
            },
        )
        # CDK gives the function both a GetAtt of its role and a DependsOn on it; cfn-lint warns (W3005) about
        # the redundant DependsOn. Harmless.
        self.function.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        self.rule = events.Rule(
            self, "Schedule", schedule=events.Schedule.rate(Duration.minutes(schedule_minutes)),
            description=f"spotgrade watchdog of run {run_id}, every {schedule_minutes} minutes",
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)])
