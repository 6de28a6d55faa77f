"""Shared synth helpers: each variant of the stack is synthesized once and its template shared."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_URL = "https://git.example.com/team/spotgrade.git"
# A realistic run: own repo, data prefix, extra flags. The default synth uses this context.
CONTEXT: dict[str, Any] = {
    "repoUrl": REPO_URL,
    "gitRef": "v1.2.0",
    "dataUri": "s3://lc-data-bucket/lendingclub/",
    "trainArgs": "--epochs 40 --features reference",
    "runId": "exp-7",
}


@dataclass
class Synth:
    template: dict[str, Any]
    outdir: Path

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == cfn_type}

    def one(self, cfn_type: str) -> dict[str, Any]:
        found = list(self.resources(cfn_type).values())
        assert len(found) == 1, f"expected one {cfn_type}, found {len(found)}"
        return found[0]["Properties"]


def synth(outdir: Path, context: dict[str, Any], *, nag: bool = True, **kwargs: Any) -> Synth:
    """Build the app as app.py does (repo_dir=None: no git lookup) and synthesize it to outdir."""
    from stacks.spotgrade_stack import build_app

    app, stack = build_app(context, repo_dir=None, nag=nag, outdir=str(outdir), **kwargs)
    app.synth()
    return Synth(json.loads((outdir / f"{stack.stack_name}.template.json").read_text()), outdir)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The realistic run, with cdk-nag's AwsSolutionsChecks live."""
    return synth(tmp_path_factory.mktemp("cdk-default"), CONTEXT)
