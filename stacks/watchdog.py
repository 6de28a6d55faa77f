"""The watchdog: a scheduled Lambda that scales the run's group to 0 when the run is over, past
maxRuntimeHours or hung (handler: training/cloud/core/watchdog.py), with a least-privilege role, and an alarm that
notifies the topic when the watchdog itself fails (errors or throttles)."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.cloud_code import CloudCode
from stacks.policy import acknowledge_wildcards, grant_publish, group_arn
from training.cloud.core import env
from training.cloud.core.layout import STATUS_FILE, RunKeys

RUNTIME = lambda_.Runtime.PYTHON_3_14  # cdk-nag AwsSolutions-L1: the latest Python runtime
HANDLER = "training.cloud.core.watchdog.handler"


class RunWatchdog(Construct):
    """`log_group`, `role`, `function`, `rule` (the schedule) and `alarm` of the run's watchdog.

    The alarm (named `alarm_name`) fires when a scheduled check failed or was throttled within one schedule period
    and notifies the topic, so a run is never left unguarded without a word.
    """

    def __init__(self, scope: Construct, construct_id: str, *, code: CloudCode, bucket: s3.IBucket, run_id: str,
                 group_name: str, max_runtime_hours: float, topic: sns.ITopic, topic_key_arn: str | None,
                 alarm_name: str, heartbeat_minutes: int = 15, boot_grace_minutes: int = 30,
                 schedule_minutes: int = 5,
                 log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= schedule_minutes <= 60:
            raise ValueError(f"schedule_minutes must be 1-60, got {schedule_minutes}")
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"spotgrade watchdog of run {run_id}: its {STATUS_FILE} and group only")
        self._grant(bucket, RunKeys(run_id).status_key, group_name, topic, topic_key_arn)
        self.function = self._function(code, run_id, {
            env.BUCKET: bucket.bucket_name,
            env.RUN_ID: run_id,
            env.ASG_NAME: group_name,
            env.MAX_RUNTIME_HOURS: f"{max_runtime_hours:g}",
            env.HEARTBEAT_MINUTES: str(heartbeat_minutes),
            env.BOOT_GRACE_MINUTES: str(boot_grace_minutes),
            env.TOPIC_ARN: topic.topic_arn,
        })
        self.rule = events.Rule(
            self, "Schedule", schedule=events.Schedule.rate(Duration.minutes(schedule_minutes)),
            description=f"spotgrade watchdog of run {run_id}, every {schedule_minutes} minutes",
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)])
        self.alarm = self._alarm(alarm_name, run_id, Duration.minutes(schedule_minutes), topic)

    def _grant(self, bucket: s3.IBucket, status_key: str, group_name: str, topic: sns.ITopic,
               topic_key_arn: str | None) -> None:
        """The run's status record, its group's capacity, read-only Describe calls, its own logs and the topic."""
        own_group = group_arn(group_name)
        for statement in [
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
        ]:
            self.role.add_to_policy(statement)
        if bucket.encryption_key is not None:
            bucket.encryption_key.grant_encrypt_decrypt(self.role)
        grant_publish(self.role, topic, topic_key_arn)
        acknowledge_wildcards(self.role, resources={
            "*": "DescribeAutoScalingGroups and DescribeInstances have no resource-level permissions; read-only.",
            own_group: "The group's UUID is only known after creation; the explicit name pins it to this run's group.",
        })

    def _function(self, code: CloudCode, run_id: str, environment: dict[str, str]) -> lambda_.Function:
        function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            handler=HANDLER,
            code=lambda_.Code.from_bucket(code.asset.bucket, code.asset.s3_object_key),
            role=self.role,
            timeout=Duration.seconds(60),
            memory_size=128,
            log_group=self.log_group,
            description=f"spotgrade watchdog of run {run_id}: scales its group to 0 when done, timed out or hung",
            environment=environment,
        )
        # CDK gives the function both a GetAtt of its role and a DependsOn on it; cfn-lint warns (W3005) about
        # the redundant DependsOn. Harmless.
        function.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        return function

    def _alarm(self, name: str, run_id: str, period: Duration, topic: sns.ITopic) -> cloudwatch.Alarm:
        failures = cloudwatch.MathExpression(
            expression="errors + throttles", period=period, label="failed or throttled watchdog checks",
            using_metrics={"errors": self.function.metric_errors(period=period, statistic="Sum"),
                           "throttles": self.function.metric_throttles(period=period, statistic="Sum")})
        alarm = cloudwatch.Alarm(
            self, "Failing", alarm_name=name, metric=failures, threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"The watchdog of spotgrade run {run_id} failed or was throttled: the run is not "
                              "guarded (see the function's log group)")
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
        return alarm
