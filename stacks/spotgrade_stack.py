"""The stack of one training run: network + storage + notifications + compute + watchdog, grants,
outputs and tags.

`build_app` is what app.py (and the tests) call: it reads the settings from the app's context
(training/cloud/core/settings.py), builds the stack and registers cdk-nag's AwsSolutionsChecks as a validation
plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, App, CfnOutput, Stack, Tags, Validations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from stacks.cloud_code import CloudCode
from stacks.compute import SpotCompute
from stacks.network import Network
from stacks.notifications import Notifications
from stacks.storage import ArtifactStore
from stacks.watchdog import RunWatchdog
from training.cloud.core import outputs
from training.cloud.core.layout import RUNS_PREFIX
from training.cloud.core.settings import REPO_ROOT, RunConfig
from training.cloud.git_remote import origin_https_url

PROJECT_TAG = "spotgrade"
# CDK feature flags this app relies on (the CLI's cdk.json context may add more, never fewer).
FEATURE_FLAGS: dict[str, Any] = {
    # Server access logs are granted by bucket policy, so both buckets can be BucketOwnerEnforced (no ACLs).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


class SpotgradeStack(Stack):
    """Everything one run needs. Environment-agnostic: no lookups, synthesizes offline.

    The notifications topic is always created (KMS-encrypted, TLS-only); only its email subscription is
    optional (notifyEmail). The watchdog Lambda always runs on its schedule.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: RunConfig,
                 restrict_default_security_group: bool = True, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"spotgrade training run {config.run_id}", **kwargs)
        self.config = config
        retention = RETENTION[config.log_retention_days]
        if config.repo_url is None:
            Annotations.of(self).add_warning_v2(
                "spotgrade:noRepoUrl",
                "no repoUrl: this checkout has no 'origin' remote that an instance can clone over https, "
                "so the instance would have nothing to clone; "
                "this synth is for review only. Deploy with -c repoUrl=https://host/owner/repo.git")

        self.network = Network(self, "Network", log_retention=retention,
                               restrict_default_security_group=restrict_default_security_group)
        self.storage = ArtifactStore(self, "Storage", existing_bucket=config.artifact_bucket,
                                     run_id=config.run_id,
                                     checkpoint_expiry_days=config.checkpoint_expiry_days,
                                     retain=config.retain_artifacts)

        # Notifications: the topic always exists (an unsubscribed topic costs nothing, and the runner, the
        # watchdog and the group's scaling events always have somewhere to publish); the email
        # subscription exists only where notifyEmail is set. SpotCompute grants the instance role
        # sns:Publish on it, passes it to the runner (env.TOPIC_ARN) and sends group events to it.
        self.notifications = Notifications(self, "Notifications", email=config.notify_email)
        self.topic: sns.ITopic = self.notifications.topic

        # The standard-library part of training/cloud: the watchdog's code and the instance's boot kit.
        self.cloud_code = CloudCode(self, "CloudCode")
        self.compute = SpotCompute(self, "Compute", config=config, vpc=self.network.vpc,
                                   security_group=self.network.security_group, bucket=self.storage.bucket,
                                   log_retention=retention, topic=self.topic, boot_kit=self.cloud_code)

        # Out-of-band guard: every 5 minutes, scale the group to 0 when the run is over, past
        # maxRuntimeHours or silent for heartbeatMinutes (training/cloud/core/watchdog.py).
        self.watchdog = RunWatchdog(self, "Watchdog", code=self.cloud_code, bucket=self.storage.bucket,
                                    run_id=config.run_id,
                                    group_name=config.asg_name, max_runtime_hours=config.max_runtime_hours,
                                    heartbeat_minutes=config.heartbeat_minutes, log_retention=retention,
                                    topic=self.topic)
        # The Lambda names the group by its explicit name; make it exist before the first scheduled check.
        self.watchdog.node.add_dependency(self.compute.group)

        self._outputs()
        Tags.of(self).add("Project", PROJECT_TAG)
        Tags.of(self).add("spotgrade:run-id", config.run_id)

    def _outputs(self) -> None:
        config, bucket = self.config, self.storage.bucket
        group_name = self.compute.group.auto_scaling_group_name
        CfnOutput(self, outputs.BUCKET_NAME, value=bucket.bucket_name, description="Artifacts bucket")
        CfnOutput(self, outputs.RUN_ID, value=config.run_id,
                  description=f"The run's id (its key prefix {RUNS_PREFIX}<RunId>/)")
        CfnOutput(self, outputs.RUN_PREFIX, value=f"s3://{bucket.bucket_name}/{config.run_prefix}",
                  description="Where this run's status, checkpoints, artifacts and logs go")
        CfnOutput(self, outputs.ASG_NAME, value=group_name,
                  description="The run's Auto Scaling group (set its desired capacity to 0 to stop)")
        CfnOutput(self, outputs.LOG_GROUP_NAME, value=self.compute.log_group.log_group_name,
                  description="CloudWatch log group of the run (aws logs tail --follow)")
        CfnOutput(self, outputs.CONSOLE_LINK, description="The run's Auto Scaling group in the EC2 console",
                  value=f"https://console.aws.amazon.com/ec2/home?region={self.region}"
                        f"#AutoScalingGroupDetails:id={group_name};view=activity")
        CfnOutput(self, outputs.TOPIC_ARN, value=self.topic.topic_arn,
                  description="SNS topic of the run's notifications (subscribe more endpoints here)")


_R = logs.RetentionDays
# settings.LOG_RETENTION_DAYS -> the CDK enum (whose Python values are names, not days).
RETENTION: dict[int, logs.RetentionDays] = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS, 30: _R.ONE_MONTH,
    60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS, 150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS,
    365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS, 545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1096: _R.THREE_YEARS,
    1827: _R.FIVE_YEARS, 2192: _R.SIX_YEARS, 2557: _R.SEVEN_YEARS, 2922: _R.EIGHT_YEARS, 3288: _R.NINE_YEARS,
    3653: _R.TEN_YEARS,
}


def build_app(context: Mapping[str, Any] | None = None, *, repo_dir: Path | None = REPO_ROOT,
              nag: bool = True, outdir: str | None = None, app: App | None = None,
              restrict_default_security_group: bool = True) -> tuple[App, SpotgradeStack]:
    """The CDK app with the one stack (config errors raise ConfigError before anything is built).

    Without a repoUrl in the context, the checkout at `repo_dir` supplies its origin remote (None: no lookup).
    """
    if app is None:
        app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    config = RunConfig.from_context(
        app.node.try_get_context, default_repo_url=None if repo_dir is None else partial(origin_https_url, repo_dir))
    stack = SpotgradeStack(app, config.stack_name, config=config,
                           restrict_default_security_group=restrict_default_security_group)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


__all__ = ["SpotgradeStack", "build_app"]
