"""The standard-library modules of training/cloud as one S3 asset: the watchdog Lambda's code, and the kit the
instance's user data uses to record a failed boot in status.json (before the repository is even cloned)."""
from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

CLOUD_DIR = Path(__file__).resolve().parent.parent / "training" / "cloud" / "core"
# Standard library only (plus boto3 in Lambda): nothing else of training/cloud goes into the asset.
FILES = ("watchdog.py", "layout.py", "lifecycle.py", "notify.py", "imds.py", "boot_report.py")


class CloudCode(Construct):
    """`asset`: the zip of FILES in the CDK assets bucket; `object_arn` and `object_url` name it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.asset = s3_assets.Asset(self, "Asset", path=str(CLOUD_DIR),
                                     exclude=["*", *(f"!{name}" for name in FILES)])
        self.object_url = self.asset.s3_object_url
        self.object_arn = f"arn:{Aws.PARTITION}:s3:::{self.asset.s3_bucket_name}/{self.asset.s3_object_key}"

    def grant_read(self, role: iam.IRole) -> None:
        """GetObject on this one object (not the whole assets bucket)."""
        role.add_to_principal_policy(iam.PolicyStatement(sid="BootKitRead", actions=["s3:GetObject"],
                                                         resources=[self.object_arn]))
