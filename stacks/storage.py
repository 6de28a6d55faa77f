"""The artifacts bucket (its keys: training/cloud/core/layout.py) and its server-access-log bucket, or an existing
bucket. Part of the shared stack: one bucket for every run, so nothing here depends on a run id."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from training.cloud.core.layout import SCRATCH_PREFIX


class ArtifactStore(Construct):
    """`bucket`: private, TLS-only, encrypted, versioned, access-logged, retained by default; `log_bucket` its
    access logs (None with an existing bucket, whose policies and lifecycle are its owner's business).

    With `retain=False` both created buckets are emptied (every object version) and deleted when the shared stack
    is destroyed (CDK's auto-delete-objects custom resource); by default both outlive it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, existing_bucket: str | None,
                 checkpoint_expiry_days: int, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.created = existing_bucket is None
        self.log_bucket: s3.Bucket | None = None
        if existing_bucket is not None:
            self.bucket: s3.IBucket = s3.Bucket.from_bucket_name(self, "Artifacts", existing_bucket)
            return
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        common = dict(block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
                      encryption=s3.BucketEncryption.S3_MANAGED, removal_policy=removal, auto_delete_objects=not retain,
                      object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED)
        self.log_bucket = s3.Bucket(
            self, "AccessLogs", versioned=False,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
            **common)
        self.bucket = s3.Bucket(
            self, "Artifacts", versioned=True,
            server_access_logs_bucket=self.log_bucket, server_access_logs_prefix="artifacts/",
            lifecycle_rules=lifecycle_rules(checkpoint_expiry_days),
            **common)


def lifecycle_rules(checkpoint_expiry_days: int) -> list[s3.LifecycleRule]:
    """The artifacts bucket's rules: what expires for every run, and the bucket's own housekeeping."""
    return [
        s3.LifecycleRule(id="abort-incomplete-multipart-uploads",
                         abort_incomplete_multipart_upload_after=Duration.days(1)),
        s3.LifecycleRule(id="expire-noncurrent-versions",
                         noncurrent_version_expiration=Duration.days(30)),
        # Every run's checkpoints and packed Python environment (GBs) live under scratch/<runId>/ (layout.py):
        # they only matter while the run can still resume, and it is over long before (settings.py checks that
        # checkpointExpiryDays outlasts maxRuntimeHours).
        s3.LifecycleRule(id="expire-run-scratch", prefix=SCRATCH_PREFIX,
                         expiration=Duration.days(checkpoint_expiry_days),
                         noncurrent_version_expiration=Duration.days(1)),
    ]
