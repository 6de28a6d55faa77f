"""Run notifications: an SNS topic (KMS-encrypted, TLS-only publishing) with an optional email subscription.

Part of the shared stack: every run's runner and watchdog publish to it when a run succeeds, fails, is interrupted,
stopped or times out; each run's Auto Scaling group sends its launch/terminate events to it (its service-linked role
may use the topic's key), and each run's watchdog alarm publishes to it (CloudWatch may, for alarms named
`<alarm_prefix>*` in this account and region only).
"""
from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from training.cloud.core.settings import validate_email  # the notifyEmail check lives with the other context keys


class Notifications(Construct):
    """`topic` (sns.Topic), its `key` (kms.Key), and the email `subscription` where one is given."""

    def __init__(self, scope: Construct, construct_id: str, *, email: str | None = None,
                 display_name: str = "spotgrade", alarm_prefix: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "TopicKey", enable_key_rotation=True, pending_window=Duration.days(7),
            removal_policy=RemovalPolicy.DESTROY,
            description="spotgrade notifications topic (SSE); usable by the Auto Scaling service-linked role")
        # Auto Scaling publishes group events with its service-linked role; an SSE topic needs it on the key.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AutoScalingNotifications",
            principals=[iam.ArnPrincipal(
                f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/autoscaling.amazonaws.com/"
                "AWSServiceRoleForAutoScaling")],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"]))  # in a key policy, "*" means this key
        self.topic = sns.Topic(self, "Topic", display_name=display_name, master_key=self.key, enforce_ssl=True)
        if alarm_prefix is not None:
            self._allow_alarms(alarm_prefix)
        self.subscription: sns.Subscription | None = None
        if email:
            self.subscription = sns.Subscription(
                self, "Email", topic=self.topic, protocol=sns.SubscriptionProtocol.EMAIL,
                endpoint=validate_email(email))

    def _allow_alarms(self, alarm_prefix: str) -> None:
        """CloudWatch publishes alarm notifications as its service principal: the topic policy (which replaces the
        default one) and the key must let it, and only for this account's alarms named `<alarm_prefix>*` here."""
        alarms = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{alarm_prefix}*"
        conditions = {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}, "ArnLike": {"aws:SourceArn": alarms}}
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="RunAlarms", principals=[cloudwatch], actions=["sns:Publish"], resources=[self.topic.topic_arn],
            conditions=conditions))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="RunAlarms", principals=[cloudwatch], actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"], conditions=conditions))  # in a key policy, "*" means this key
