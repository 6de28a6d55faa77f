"""CloudCode on a bare stack of its own: the asset holds training/cloud/core and the package skeleton above it,
nothing else, and grant_read allows exactly that object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.stacks.helpers import Synth, bare_stack, code_asset, flatten, staged_files, synth_stack


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from aws_cdk import aws_iam as iam

    from stacks.cloud_code import CloudCode

    outdir = tmp_path_factory.mktemp("cloud-code")
    app, stack = bare_stack(outdir, "CloudCodeTest")
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    CloudCode(stack, "CloudCode").grant_read(role)
    return synth_stack(app, stack, outdir)


def test_the_asset_is_the_core_package_with_its_skeleton(synthesized: Synth) -> None:
    from stacks.cloud_code import REPO_ROOT, SKELETON, asset_files

    [manifest] = synthesized.outdir.glob("*.assets.json")
    zips = [a for a in json.loads(manifest.read_text())["files"].values() if a["source"].get("packaging") == "zip"]
    assert len(zips) == 1
    files = staged_files(synthesized.outdir / zips[0]["source"]["path"])
    assert files == asset_files()
    core = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "training/cloud/core").glob("*.py"))
    assert files == sorted([*SKELETON, *core])  # every core module (no list kept by hand), no byte code
    assert {"training/cloud/core/watchdog.py", "training/cloud/core/boot_report.py",
            "training/cloud/core/lifecycle.py", "training/errors.py"} <= set(files)


def test_grant_read_allows_exactly_the_asset_object(synthesized: Synth) -> None:
    [destination] = code_asset(synthesized)["destinations"].values()
    [statement] = synthesized.one("AWS::IAM::Policy")["PolicyDocument"]["Statement"]
    assert (statement["Sid"], statement["Action"]) == ("BootKitRead", "s3:GetObject")
    assert flatten(statement["Resource"]) == (f"arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-"
                                              f"<AWS::Region>/{destination['objectKey']}")


def test_the_asset_ignores_byte_code(tmp_path: Path) -> None:
    from stacks.cloud_code import asset_files

    (tmp_path / "training/cloud/core/__pycache__").mkdir(parents=True)
    (tmp_path / "training/cloud/core/__pycache__/layout.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "training/cloud/core/layout.py").write_text("")
    files = asset_files(tmp_path)
    assert "training/cloud/core/layout.py" in files and not [f for f in files if "pycache" in f]
