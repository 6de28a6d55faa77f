"""cdk-nag AwsSolutionsChecks (live, every acknowledgement reasoned) and cfn-lint on the synthesized template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stacks.helpers import CONTEXT, AppSynth

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def nag_violations(outdir: Path) -> list[dict]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [v for plugin in report["pluginReports"] for v in plugin["violations"]]


def test_aws_solutions_checks_pass(default_synth: AppSynth) -> None:
    # default_synth registered AwsSolutionsChecks; synth would have raised on any unacknowledged finding.
    assert nag_violations(default_synth.outdir) == []


def test_every_acknowledgement_states_its_reason(default_synth: AppSynth) -> None:
    acknowledged = {}
    for stack in (default_synth.shared, default_synth.run):
        metadata = json.loads((default_synth.outdir / f"{stack.stack_name}.metadata.json").read_text())
        acknowledged.update({rule: reason for entries in metadata.values() for entry in entries
                             if entry["type"] == "aws:cdk:acknowledged-rules"
                             for rule, reason in entry["data"].items() if "AwsSolutions-" in rule})
    rules = {rule.removeprefix("Annotation::").split("[")[0] for rule in acknowledged}
    # AS3 (group notifications) is not acknowledged: the group reports to the notifications topic; IAM4 (managed
    # policies) neither: Session Manager's permissions are an inline policy.
    assert rules == {"AwsSolutions-IAM5", "AwsSolutions-EC26"}
    for rule, reason in acknowledged.items():
        assert len(reason.split()) >= 6, f"{rule} needs a real reason: {reason!r}"


def test_checks_are_live_without_tls_enforcement(tmp_path: Path) -> None:
    from stacks.spotgrade_stack import build_app

    app, run = build_app(CONTEXT, repo_dir=None, resolve=None, outdir=str(tmp_path))
    artifacts = app.node.find_child(run.config.stack_name).storage.bucket
    assert artifacts.node.try_remove_child("Policy")  # the TLS-only bucket policy
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    failed = {(v["ruleName"], c["constructPath"]) for v in nag_violations(tmp_path) for c in v["violatingConstructs"]}
    assert ("AwsSolutions-S10", "Spotgrade/Storage/Artifacts/Resource") in failed


@pytest.mark.slow
def test_cfn_lint_reports_nothing(default_synth: AppSynth) -> None:
    templates = [str(default_synth.outdir / f"{s.stack_name}.template.json")
                 for s in (default_synth.shared, default_synth.run)]
    done = subprocess.run([str(CFN_LINT), "--format", "parseable", *templates], capture_output=True, text=True)
    assert done.stdout == "" and done.returncode == 0, done.stdout + done.stderr
