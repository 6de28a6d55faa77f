"""Run notifications: an SNS topic (KMS-encrypted, TLS-only publishing) with an optional email subscription.

The runner and the watchdog publish to it when a run succeeds, fails, is interrupted, stopped or times
out; the Auto Scaling group may send its launch/terminate events to it too (its service-linked role may
use the topic's key).
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
                 display_name: str = "spotgrade") -> None:
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
        self.subscription: sns.Subscription | None = None
        if email:
            self.subscription = sns.Subscription(
                self, "Email", topic=self.topic, protocol=sns.SubscriptionProtocol.EMAIL,
                endpoint=validate_email(email))
