"""Shared synth helpers of the stack tests: the realistic context, synthesizing the app (its shared stack and one run
stack) or a bare stack, and reading CloudFormation expressions and IAM statements back out of a template."""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """One synthesized stack."""

    template: dict[str, Any]
    outdir: Path
    stack_name: str = ""

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == cfn_type}

    def one(self, cfn_type: str) -> dict[str, Any]:
        found = list(self.resources(cfn_type).values())
        assert len(found) == 1, f"expected one {cfn_type}, found {len(found)}"
        return found[0]["Properties"]


@dataclass
class AppSynth:
    """The synthesized app: the shared stack and the run stack."""

    shared: Synth
    run: Synth
    outdir: Path


def synth(outdir: Path, context: dict[str, Any], *, nag: bool = True, **kwargs: Any) -> AppSynth:
    """Build the app as app.py does (repo_dir=None, resolve=None: no git lookup unless `resolve` is given) and
    synthesize it to outdir."""
    from stacks.spotgrade_stack import build_app

    kwargs.setdefault("resolve", None)
    app, run = build_app(context, repo_dir=None, nag=nag, outdir=str(outdir), **kwargs)
    app.synth()
    return AppSynth(stack_synth(outdir, run.config.stack_name), stack_synth(outdir, run.stack_name), outdir)


def stack_synth(outdir: Path, stack_name: str) -> Synth:
    return Synth(json.loads((outdir / f"{stack_name}.template.json").read_text()), outdir, stack_name)


def import_of(key: str, stack_name: str = "Spotgrade") -> dict[str, str]:
    """How a run stack refers to one of the shared stack's outputs (core/outputs.py)."""
    from training.cloud.core.outputs import export_name

    return {"Fn::ImportValue": export_name(stack_name, key)}


def bare_stack(outdir: Path, name: str) -> tuple[Any, Any]:
    """(app, stack): an empty stack for one construct, with the app's feature flags (the stack's FEATURE_FLAGS)."""
    from aws_cdk import App, Stack

    from stacks.spotgrade_stack import FEATURE_FLAGS

    app = App(outdir=str(outdir), context=FEATURE_FLAGS)
    return app, Stack(app, name)


def synth_stack(app: Any, stack: Any, outdir: Path) -> Synth:
    """Synthesize an app holding a bare stack (one construct and what it needs) to outdir."""
    app.synth()
    return Synth(json.loads((outdir / f"{stack.stack_name}.template.json").read_text()), outdir, stack.stack_name)


def run_config(context: dict[str, Any] | None = None) -> Any:
    """The validated settings of a context (CONTEXT by default), without a git lookup."""
    from training.cloud.core.settings import RunConfig

    return RunConfig.from_context((CONTEXT if context is None else context).get)


def flatten(value: Any) -> str:
    """A CloudFormation string expression as text; Refs/GetAtts as <...> placeholders."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(flatten(p) for p in parts)
    if "Fn::Base64" in value:
        return flatten(value["Fn::Base64"])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::ImportValue" in value:
        return f"<import {value['Fn::ImportValue']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):  # e.g. the CDK assets bucket's URL
        return re.sub(r"\$\{([^}!][^}]*)\}", r"<\1>", value["Fn::Sub"])
    raise AssertionError(f"unexpected expression {value}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def user_data_of(s: Synth) -> str:
    data = s.one("AWS::EC2::LaunchTemplate")["LaunchTemplateData"]["UserData"]
    return base64.b64decode(data).decode() if isinstance(data, str) else flatten(data)


def identity_statements(s: Synth) -> list[dict[str, Any]]:
    statements = []
    for resource in s.template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            statements += props["PolicyDocument"]["Statement"]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                statements += policy["PolicyDocument"]["Statement"]
    assert statements
    return statements


def instance_policy(s: Synth) -> dict[str, dict[str, Any]]:
    """The instance role's statements by Sid (grants without one: by their actions joined with '+')."""
    role_id = next(k for k, v in s.resources("AWS::IAM::Role").items()
                   if "ec2.amazonaws.com" in json.dumps(v["Properties"]["AssumeRolePolicyDocument"]))
    policy = next(v for v in s.resources("AWS::IAM::Policy").values()
                  if {"Ref": role_id} in v["Properties"]["Roles"])
    return {st.get("Sid") or "+".join(as_list(st["Action"])): st
            for st in policy["Properties"]["PolicyDocument"]["Statement"]}


def code_asset(s: Synth) -> dict[str, Any]:
    """The CloudCode asset (the zip of stacks.cloud_code.asset_files()) in the stack's asset manifest."""
    from stacks.cloud_code import asset_files

    assets = json.loads((s.outdir / f"{s.stack_name}.assets.json").read_text())["files"]
    found = [a for a in assets.values() if a["source"].get("packaging") == "zip"
             and staged_files(s.outdir / a["source"]["path"]) == asset_files()]
    assert len(found) == 1, "one asset holds exactly stacks.cloud_code.asset_files()"
    return found[0]


def staged_files(folder: Path) -> list[str]:
    """The files under a staged asset folder, relative to it, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
