"""The stack every run shares, named `stackName`: network, artifacts bucket (+ access logs), notifications topic.

Nothing in it depends on a run id, so deploying or destroying a run never changes it (tests/stacks/test_stacks.py
synthesizes it for two run ids and compares the templates). Its outputs are exported (core/outputs.py
`SHARED_EXPORTS`, names `export_name(stackName, key)`); every run stack imports them, so CloudFormation refuses to
delete this stack, or change an export, while a run stack still uses it.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, Fn, Stack, Tags
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.network import Network
from stacks.notifications import Notifications
from stacks.retention import RETENTION
from stacks.storage import ArtifactStore
from training.cloud.core import outputs
from training.cloud.core.settings import RunConfig

PROJECT_TAG = "spotgrade"


class SpotgradeSharedStack(Stack):
    """`network`, `storage`, `notifications` (+ `topic`). Environment-agnostic: no lookups, synthesizes offline.

    It reads only the settings of what it holds (stackName, artifactBucket, retainArtifacts, checkpointExpiryDays,
    logRetentionDays for the flow logs, notifyEmail), never runId or any other per-run setting.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: RunConfig,
                 restrict_default_security_group: bool = True, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description="spotgrade: network, artifacts bucket and topic shared by "
                                                          "every training run", **kwargs)
        self.network = Network(self, "Network", log_retention=RETENTION[config.log_retention_days],
                               restrict_default_security_group=restrict_default_security_group)
        self.storage = ArtifactStore(self, "Storage", existing_bucket=config.artifact_bucket,
                                     checkpoint_expiry_days=config.checkpoint_expiry_days,
                                     retain=config.retain_artifacts)
        if config.artifact_bucket is not None and not config.retain_artifacts:
            Annotations.of(self).add_warning_v2(
                "spotgrade:existingBucketRetained",
                f"retainArtifacts=false has no effect on the existing bucket {config.artifact_bucket}: "
                "the stack did not create it and never deletes it")
        # The topic always exists (an unsubscribed topic costs nothing, and every run's runner, watchdog, group
        # events and alarm always have somewhere to publish); the email subscription only with notifyEmail.
        self.notifications = Notifications(self, "Notifications", email=config.notify_email,
                                           alarm_prefix=outputs.alarm_name_prefix(config.stack_name))
        self.topic: sns.ITopic = self.notifications.topic
        self._outputs(config.stack_name)
        Tags.of(self).add("Project", PROJECT_TAG)

    def _outputs(self, stack_name: str) -> None:
        vpc = self.network.vpc
        values = {
            outputs.BUCKET_NAME: (self.storage.bucket.bucket_name, "Artifacts bucket of every run"),
            outputs.TOPIC_ARN: (self.topic.topic_arn, "SNS topic of every run's notifications (subscribe here)"),
            outputs.TOPIC_KEY_ARN: (self.notifications.key.key_arn, "KMS key of the topic (publishers need it)"),
            outputs.VPC_ID: (vpc.vpc_id, "VPC of the training instances"),
            outputs.PUBLIC_SUBNET_IDS: (Fn.join(",", [s.subnet_id for s in vpc.public_subnets]),
                                        "Public subnets of the training instances, one per Availability Zone"),
            outputs.SECURITY_GROUP_ID: (self.network.security_group.security_group_id,
                                        "Security group of the training instances (no inbound rules)"),
        }
        for key, (value, description) in values.items():
            CfnOutput(self, key, value=value, description=description,
                      export_name=outputs.export_name(stack_name, key))


__all__ = ["PROJECT_TAG", "SpotgradeSharedStack"]
