"""training/cloud/core as one S3 asset: the watchdog Lambda's code, and the boot kit the instance's user data uses
to record a failed boot in status.json (before the repository is even cloned).

The zip holds the package as it is in the repository (training/__init__.py, training/errors.py,
training/cloud/__init__.py and all of training/cloud/core/), so both import `training.cloud.core.<module>`
exactly as the instance does: the Lambda's handler is `training.cloud.core.watchdog.handler`, and the user data
runs `python3 -m training.cloud.core.boot_report` in the unpacked kit.
"""
from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, IgnoreMode
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parent.parent
CORE_DIR = "training/cloud/core"
# The package files above core that make `training.cloud.core` importable (core raises training.errors').
SKELETON = ("training/__init__.py", "training/errors.py", "training/cloud/__init__.py")
# gitignore syntax, applied to REPO_ROOT: everything but SKELETON and CORE_DIR, and no byte code.
EXCLUDE = ("/*", "!/training/", "/training/*", "!/training/cloud/", "/training/cloud/*",
           *(f"!/{path}" for path in SKELETON), f"!/{CORE_DIR}/", "__pycache__/", "*.pyc")


def asset_files(root: Path = REPO_ROOT) -> list[str]:
    """The asset's files, relative to the repository root (what EXCLUDE leaves; a test checks they agree)."""
    core = [path.relative_to(root).as_posix() for path in (root / CORE_DIR).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"]
    return sorted([*SKELETON, *core])


class CloudCode(Construct):
    """`asset`: the zip in the CDK assets bucket; `object_arn` and `object_url` name it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.asset = s3_assets.Asset(self, "Asset", path=str(REPO_ROOT), ignore_mode=IgnoreMode.GIT,
                                     exclude=list(EXCLUDE))
        self.object_url = self.asset.s3_object_url
        self.object_arn = f"arn:{Aws.PARTITION}:s3:::{self.asset.s3_bucket_name}/{self.asset.s3_object_key}"

    def grant_read(self, role: iam.IRole) -> None:
        """GetObject on this one object (not the whole assets bucket)."""
        role.add_to_principal_policy(iam.PolicyStatement(sid="BootKitRead", actions=["s3:GetObject"],
                                                         resources=[self.object_arn]))
