"""The stack of one training run, named `<stackName>-<runId>` (core/outputs.run_stack_name): launch template, Auto
Scaling group, instance role, log group, watchdog and its alarm, and the code asset they run.

It holds only what belongs to this run; the network, the artifacts bucket and the topic are the shared stack's,
imported through its exports (core/outputs.py). Deploying it changes no other run's stack and not the shared stack;
destroying it keeps the run's files in the bucket and, by default, its log group.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.cloud_code import CloudCode
from stacks.compute import SpotCompute
from stacks.network import AZ_COUNT
from stacks.repo_access import RepoAccess
from stacks.retention import RETENTION
from stacks.shared_stack import PROJECT_TAG
from stacks.watchdog import RunWatchdog
from training.cloud.core import outputs
from training.cloud.core.settings import RunConfig

RUN_TAG = "spotgrade:run-id"


class SharedImports(Construct):
    """The shared stack's resources, as this run stack sees them: `bucket`, `topic`, `topic_key_arn`, `vpc`,
    `security_group` (each one a `Fn::ImportValue` of the shared stack's export)."""

    def __init__(self, scope: Construct, construct_id: str, *, shared_stack_name: str) -> None:
        super().__init__(scope, construct_id)

        def value(key: str) -> str:
            return Fn.import_value(outputs.export_name(shared_stack_name, key))

        self.bucket: s3.IBucket = s3.Bucket.from_bucket_name(self, "Artifacts", value(outputs.BUCKET_NAME))
        self.topic: sns.ITopic = sns.Topic.from_topic_arn(self, "Topic", value(outputs.TOPIC_ARN))
        self.topic_key_arn = value(outputs.TOPIC_KEY_ARN)
        azs = Fn.get_azs()
        self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
            self, "Vpc", vpc_id=value(outputs.VPC_ID),
            availability_zones=[Fn.select(i, azs) for i in range(AZ_COUNT)],
            public_subnet_ids=Fn.split(",", value(outputs.PUBLIC_SUBNET_IDS), AZ_COUNT))
        self.security_group: ec2.ISecurityGroup = ec2.SecurityGroup.from_security_group_id(
            self, "InstanceSecurityGroup", value(outputs.SECURITY_GROUP_ID), mutable=False)


class SpotgradeRunStack(Stack):
    """`shared` (the imports), `cloud_code`, `compute`, `watchdog` of the run `config.run_id`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: RunConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"spotgrade training run {config.run_id}", **kwargs)
        self.config = config
        retention = RETENTION[config.log_retention_days]
        self.shared = SharedImports(self, "Shared", shared_stack_name=config.stack_name)

        # The standard-library part of training/cloud: the watchdog's code and the instance's boot kit. Each run
        # stack pins its own copy, so a later deploy with newer code never changes a live run's.
        self.cloud_code = CloudCode(self, "CloudCode")
        self.compute = SpotCompute(self, "Compute", config=config, vpc=self.shared.vpc,
                                   security_group=self.shared.security_group, bucket=self.shared.bucket,
                                   log_retention=retention, topic=self.shared.topic,
                                   topic_key_arn=self.shared.topic_key_arn, boot_kit=self.cloud_code)
        if config.repo_token_secret:  # a private repoUrl: the instance may read that one secret (stacks/repo_access.py)
            RepoAccess(self, "RepoAccess", secret=config.repo_token_secret).grant_read(self.compute.role)

        # Out-of-band guard: every 5 minutes, scale the group to 0 when the run is over, past
        # maxRuntimeHours or silent for heartbeatMinutes (training/cloud/core/watchdog.py).
        self.watchdog = RunWatchdog(self, "Watchdog", code=self.cloud_code, bucket=self.shared.bucket,
                                    run_id=config.run_id, group_name=config.asg_name,
                                    max_runtime_hours=config.max_runtime_hours,
                                    heartbeat_minutes=config.heartbeat_minutes, log_retention=retention,
                                    topic=self.shared.topic, topic_key_arn=self.shared.topic_key_arn,
                                    alarm_name=f"{self.stack_name}-watchdog-failing")
        # The Lambda names the group by its explicit name; make it exist before the first scheduled check.
        self.watchdog.node.add_dependency(self.compute.group)

        self._outputs()
        Tags.of(self).add("Project", PROJECT_TAG)
        Tags.of(self).add(RUN_TAG, config.run_id)

    def _outputs(self) -> None:
        """The run's names (no import is repeated as an output: the bucket and the topic are the shared stack's)."""
        config = self.config
        group_name = self.compute.group.auto_scaling_group_name
        CfnOutput(self, outputs.RUN_ID, value=config.run_id, description="The run's id")
        CfnOutput(self, outputs.SHARED_STACK, value=config.stack_name,
                  description="The shared stack: its outputs name the artifacts bucket and the topic")
        CfnOutput(self, outputs.RUN_PREFIX, value=config.run_prefix,
                  description="The run's key prefix in the artifacts bucket: status, artifacts and logs")
        CfnOutput(self, outputs.ASG_NAME, value=group_name,
                  description="The run's Auto Scaling group (set its desired capacity to 0 to stop)")
        CfnOutput(self, outputs.LOG_GROUP_NAME, value=self.compute.log_group.log_group_name,
                  description="CloudWatch log group of the run (aws logs tail --follow)")
        CfnOutput(self, outputs.CONSOLE_LINK, description="The run's Auto Scaling group in the EC2 console",
                  value=f"https://console.aws.amazon.com/ec2/home?region={self.region}"
                        f"#AutoScalingGroupDetails:id={group_name};view=activity")


__all__ = ["RUN_TAG", "SpotgradeRunStack"]
