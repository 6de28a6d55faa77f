"""`make deploy`'s pre-flight: validate the settings `cdk deploy` would use, and refuse a deploy with no repoUrl.

    python -m training preflight [cdk deploy args, e.g. -c repoUrl=https://host/owner/repo.git]

Reads cdk.json's context and the `-c key=value` among the arguments as the CDK app will (core/settings.py),
with the checkout's origin remote as the default repoUrl. Exit status 0, or 2 with one line naming the problem.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from training.cloud.core.settings import REPO_ROOT, RunConfig, cdk_context_args, load_context
from training.cloud.git_remote import origin_https_url
from training.errors import ConfigError


def check_deploy(args: Sequence[str], *, repo_dir: Path = REPO_ROOT) -> RunConfig:
    """Validate the settings `cdk deploy` would use; ConfigError when no repoUrl can be found."""
    context = load_context(cdk_context_args(args), repo_dir / "cdk.json")
    config = RunConfig.from_context(context.get, default_repo_url=lambda: origin_https_url(repo_dir))
    if config.repo_url is None:
        raise ConfigError("no repoUrl: this checkout has no 'origin' remote that an instance can clone over "
                          "https; pass the repository the instance should clone, "
                          "e.g. make deploy ARGS='-c repoUrl=https://host/owner/repo.git'")
    return config


def main(argv: Sequence[str] | None = None, *, repo_dir: Path = REPO_ROOT) -> int:
    """The pre-flight on `cdk deploy` arguments: 0 and one line naming what deploys, or 2 and `error: ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = check_deploy(args, repo_dir=repo_dir)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"deploying run {config.run_id!r} from {config.repo_url} at {config.git_ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
