"""The CDK app: the shared stack (`stackName`) and the stack of one run (`<stackName>-<runId>`).

`build_app` is what app.py (and the tests) call: it reads the settings from the app's context
(training/cloud/core/settings.py), builds both stacks and registers cdk-nag's AwsSolutionsChecks as a validation
plugin. The run stack depends on the shared stack (it imports the shared stack's exports), so `cdk deploy` of both
creates the shared one first; `cdk destroy` of a run stack leaves the shared one alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.retention import RETENTION
from stacks.run_stack import SpotgradeRunStack
from stacks.shared_stack import PROJECT_TAG, SpotgradeSharedStack
from training.cloud.core.outputs import run_stack_name
from training.cloud.core.settings import REPO_ROOT, ResolveCommit, RunConfig
from training.cloud.git_remote import resolve_commit
from training.cloud.preflight import read_deploy_settings

# CDK feature flags this app relies on (the CLI's cdk.json context may add more, never fewer).
FEATURE_FLAGS: dict[str, Any] = {
    # Server access logs are granted by bucket policy, so both buckets can be BucketOwnerEnforced (no ACLs).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


@dataclass(frozen=True)
class Stacks:
    shared: SpotgradeSharedStack
    run: SpotgradeRunStack


def build_stacks(app: App, config: RunConfig, *, restrict_default_security_group: bool = True) -> Stacks:
    """The shared stack and the run stack of `config` in `app` (ConfigError where the run id names no stack)."""
    run_name = run_stack_name(config.stack_name, config.run_id)
    shared = SpotgradeSharedStack(app, config.stack_name, config=config,
                                  restrict_default_security_group=restrict_default_security_group)
    run = SpotgradeRunStack(app, run_name, config=config)
    run.add_stack_dependency(shared, "imports the shared stack's exports")
    if config.repo_url is None:
        Annotations.of(run).add_warning_v2(
            "spotgrade:noRepoUrl",
            "no repoUrl: this checkout has no 'origin' remote that an instance can clone over https, "
            "so the instance would have nothing to clone; "
            "this synth is for review only. Deploy with -c repoUrl=https://host/owner/repo.git")
    if config.git_commit_note:
        Annotations.of(run).add_warning_v2(
            "spotgrade:gitCommitUnresolved",
            f"{config.git_commit_note}; each instance checks out what gitRef names when it boots, so a replacement "
            "may run other code than the first attempt. Deploy where the remote can be asked, or give gitRef as a "
            "full commit")
    return Stacks(shared, run)


def build_app(context: Mapping[str, Any] | None = None, *, repo_dir: Path | None = REPO_ROOT,
              nag: bool = True, outdir: str | None = None, app: App | None = None,
              restrict_default_security_group: bool = True,
              resolve: ResolveCommit | None = resolve_commit) -> tuple[App, SpotgradeRunStack]:
    """The CDK app with both stacks; returns it and the run stack (`.config`, and the shared stack at
    `app.node.find_child(config.stack_name)`). Config errors raise ConfigError before anything is built.

    The settings are the app's whole context read by `read_deploy_settings` (unknown keys refused, trainArgs
    through train's parser). Without a repoUrl in the context, the checkout at `repo_dir` supplies its origin
    remote (None: no lookup); `resolve(repo_url, git_ref)` turns gitRef into the commit the instances check out
    (None: no lookup, and the run stack warns that gitRef is checked out as it is at boot).
    """
    if app is None:
        app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    config = read_deploy_settings(app.node.get_all_context(), repo_dir=repo_dir, resolve=resolve)
    stacks = build_stacks(app, config, restrict_default_security_group=restrict_default_security_group)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stacks.run


__all__ = ["FEATURE_FLAGS", "PROJECT_TAG", "RETENTION", "Stacks", "build_app", "build_stacks"]
