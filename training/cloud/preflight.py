"""The settings as a deploy reads them, and `make deploy`'s pre-flight.

`read_deploy_settings` is the one reader of the deploy settings: synth (stacks/spotgrade_stack.py), this
pre-flight and `estimate` all call it. It adds to core/settings.py's `read_settings` what core may not import:
trainArgs checked by `python -m training train`'s own parser, the checkout's origin as the default repoUrl and
the gitRef lookup (`git ls-remote`).

    python -m training preflight [cdk deploy args, e.g. -c repoUrl=https://host/owner/repo.git]

Reads cdk.json's context and the `-c key=value` among the arguments as the CDK app will, then refuses, each with
one line saying what to do and exit status 2: no repoUrl; a gitRef that is no branch or tag of repoUrl; a
working tree with uncommitted changes to tracked files; a HEAD that is not the commit gitRef names on repoUrl
(unpushed commits, another branch checked out, a remote that moved on); a remote that cannot be asked.
`-c allowUnpushedCode=true` lets all but the first two through with a `warning:` line (the run records it).
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from training.cloud.core.context import cdk_context_args, load_context, read_settings
from training.cloud.core.settings import FULL_COMMIT, REPO_ROOT, ResolveCommit, RunConfig
from training.cloud.git_remote import (
    LS_REMOTE_TIMEOUT,
    GitRemoteError,
    commit_of,
    git,
    ls_remote,
    origin_https_url,
    resolve_commit,
)
from training.errors import ConfigError
from training.train_flags import parse_train_flags

OVERRIDE = "allowUnpushedCode"


def read_deploy_settings(context: Mapping[str, Any], *, repo_dir: Path | None = REPO_ROOT,
                         resolve: ResolveCommit | None = resolve_commit) -> RunConfig:
    """The validated settings of a deploy's whole context: unknown keys refused, every value checked, trainArgs
    parsed by train's own parser; without repoUrl, the origin of the checkout at `repo_dir` (None: no lookup);
    gitRef resolved to a commit by `resolve` (None: no lookup). ConfigError: one line naming the key."""
    return read_settings(context, default_repo_url=None if repo_dir is None else partial(origin_https_url, repo_dir),
                         resolve_commit=resolve, check_train_args=parse_train_flags)


# ---------------------------------------------------------------- what the checkout holds vs what deploys

@dataclass(frozen=True)
class Problem:
    """One reason the deployed code would differ from the checkout: `what`, then `fix` (what to do)."""

    what: str
    fix: str
    overridable: bool = True

    def error(self) -> str:
        more = f", or deploy anyway with -c {OVERRIDE}=true" if self.overridable else ""
        return f"{self.what}: {self.fix}{more}"

    def warning(self) -> str:
        return f"{self.what}; deploying anyway ({OVERRIDE}=true, recorded with the run)"


@dataclass(frozen=True)
class Preflight:
    config: RunConfig
    commit: str | None           # what gitRef names on repoUrl now (None: could not be found out)
    warnings: tuple[str, ...]    # the problems allowUnpushedCode let through


def _out(repo_dir: Path, *args: str) -> str | None:
    """A local git command's stdout (stripped), or None where it failed."""
    done = git(*args, cwd=repo_dir)
    return done.stdout.strip() if done is not None and done.returncode == 0 else None


def _is_ancestor(repo_dir: Path, older: str, newer: str) -> bool:
    done = git("merge-base", "--is-ancestor", older, newer, cwd=repo_dir)
    return done is not None and done.returncode == 0


def _dirty(repo_dir: Path) -> Problem | None:
    done = git("status", "--porcelain", "--untracked-files=no", cwd=repo_dir)
    files = [line[3:] for line in done.stdout.splitlines() if line.strip()] if done and done.returncode == 0 else []
    if not files:
        return None
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return Problem(f"the working tree has uncommitted changes to {len(files)} tracked file(s) ({shown}), which "
                   "the instance would not run",
                   "commit and push them (or git stash them), then deploy again")


def _remote_commit(url: str, ref: str, timeout: float) -> tuple[str | None, Problem | None]:
    """(what gitRef names on the remote, None) or (None, the problem)."""
    if FULL_COMMIT.fullmatch(ref):
        return ref.lower(), None
    try:
        commit = commit_of(ls_remote(url, ref, ref + "^{}", timeout=timeout), ref)
    except GitRemoteError as error:
        return None, Problem(f"could not ask {url} what gitRef {ref!r} is ({error})",
                             "check repoUrl and your access to it (git ls-remote " + url + ")")
    if commit is None:
        return None, Problem(f"gitRef {ref!r} is no branch or tag of {url}",
                             f"push it (git push origin {ref}) or deploy an existing one with -c gitRef=...",
                             overridable=False)
    return commit, None


def _head_problem(repo_dir: Path, url: str, ref: str, commit: str, head: str) -> Problem | None:
    """Why HEAD is not `commit` (gitRef on the remote), or None when it is."""
    if head == commit:
        return None
    short, at = head[:12], f"{url}'s {ref!r} is {commit[:12]}"
    if FULL_COMMIT.fullmatch(ref):
        return Problem(f"HEAD {short} is not gitRef {commit[:12]}",
                       f"check out {commit[:12]}, or push HEAD and deploy it with -c gitRef={head}")
    branch = _out(repo_dir, "symbolic-ref", "-q", "--short", "HEAD")
    if branch and branch != ref:
        return Problem(f"this checkout is on branch {branch!r} (HEAD {short}) but gitRef is {ref!r} ({at})",
                       f"push it and deploy it with -c gitRef={branch}, or check out {ref}")
    known = _out(repo_dir, "cat-file", "-t", commit) == "commit"
    if known and _is_ancestor(repo_dir, commit, head):
        return Problem(f"HEAD {short} has commits that are not on the remote ({at})",
                       f"push them (git push origin {ref})" if branch == ref
                       else "push them to a branch and deploy it with -c gitRef=BRANCH")
    if not known or _is_ancestor(repo_dir, head, commit):
        return Problem(f"HEAD {short} lacks commits of the remote ({at})",
                       "pull them (git pull), check the result, then deploy again")
    return Problem(f"HEAD {short} and the remote have diverged ({at})",
                   "merge or rebase onto the remote and push, then deploy again")


def _commit_on_remote(repo_dir: Path, url: str, commit: str, timeout: float) -> Problem | None:
    """For a gitRef of 40 hex digits: None where a branch or tag of the remote holds the commit (as far as this
    checkout knows those refs), else the problem."""
    try:
        tips = set(ls_remote(url, "refs/heads/*", "refs/tags/*", timeout=timeout).values())
    except GitRemoteError as error:
        return Problem(f"could not ask {url} whether it holds commit {commit[:12]} ({error})",
                       "check repoUrl and your access to it (git ls-remote " + url + ")")
    if commit in tips:
        return None
    # Commits of `commit` that no tip reaches (tips this checkout lacks are skipped): none = the remote has it.
    if tips and _out(repo_dir, "rev-list", "--ignore-missing", "--max-count=1", commit, "--not", *sorted(tips)) == "":
        return None
    return Problem(f"commit {commit[:12]} is on no branch or tag of {url} that this checkout knows",
                   "push it (git push origin HEAD:BRANCH), or git fetch if it is there already")


def check_code(config: RunConfig, repo_dir: Path, *, timeout: float = LS_REMOTE_TIMEOUT) -> tuple[str | None,
                                                                                                  list[Problem]]:
    """(the commit gitRef names on repoUrl or None, every reason the deployed code would differ from the
    checkout at `repo_dir`)."""
    assert config.repo_url is not None
    url, ref = config.repo_url, config.git_ref
    head = _out(repo_dir, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    if head is None:
        problems = [Problem(f"{repo_dir} is not a git checkout with a commit, so what deploys cannot be checked",
                            "deploy from your clone of repoUrl")]
        commit, problem = _remote_commit(url, ref, timeout)
        return commit, problems + ([problem] if problem else [])
    problems = [p for p in (_dirty(repo_dir),) if p]
    commit, problem = _remote_commit(url, ref, timeout)
    if problem is not None:
        return None, problems + [problem]
    assert commit is not None
    problem = _head_problem(repo_dir, url, ref, commit, head)
    if problem is None and FULL_COMMIT.fullmatch(ref):
        problem = _commit_on_remote(repo_dir, url, commit, timeout)
    return commit, problems + ([problem] if problem else [])


def check_deploy(args: Sequence[str], *, repo_dir: Path = REPO_ROOT,
                 timeout: float = LS_REMOTE_TIMEOUT) -> Preflight:
    """Validate the settings `cdk deploy` would use and the code it would run; ConfigError (one line) for the
    first refusal, the problems allowUnpushedCode lets through as warnings."""
    if not (repo_dir / "cdk.json").is_file():
        raise ConfigError(f"{repo_dir} has no cdk.json: the pre-flight checks the checkout `make deploy` runs in; "
                          "run it from your clone of the repository (make deploy RUN=<run-id>)")
    context = load_context(cdk_context_args(args), repo_dir / "cdk.json")
    config = read_deploy_settings(context, repo_dir=repo_dir, resolve=None)
    if config.repo_url is None:
        raise ConfigError("no repoUrl: this checkout has no 'origin' remote that an instance can clone over "
                          "https; pass the repository the instance should clone, "
                          "e.g. make deploy ARGS='-c repoUrl=https://host/owner/repo.git'")
    commit, problems = check_code(config, repo_dir, timeout=timeout)
    refused = [p for p in problems if not p.overridable or not config.allow_unpushed_code]
    if refused:
        first = next((p for p in refused if not p.overridable), refused[0])
        raise ConfigError(first.error())
    return Preflight(config, commit, tuple(p.warning() for p in problems))


def main(argv: Sequence[str] | None = None, *, repo_dir: Path = REPO_ROOT) -> int:
    """The pre-flight on `cdk deploy` arguments: 0 and one line naming what deploys (after any `warning:` lines),
    or 2 and `error: ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        checked = check_deploy(args, repo_dir=repo_dir)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for warning in checked.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    config = checked.config
    at = f"{config.git_ref} = {checked.commit}" if checked.commit and checked.commit != config.git_ref else \
        config.git_ref
    print(f"deploying run {config.run_id!r} from {config.repo_url} at {at}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
