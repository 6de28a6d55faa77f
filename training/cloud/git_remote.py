"""git, as the deploy path needs it: the checkout's `origin` remote as an https URL an instance can clone (the
default repoUrl), and a remote's refs (`git ls-remote`), so synth can resolve gitRef to the commit that runs.

git never prompts here (GIT_TERMINAL_PROMPT=0, GCM_INTERACTIVE=never) and every call has a timeout; a credential
helper you have configured still answers, so a private repository you can reach resolves as a public one.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from training.cloud.core.settings import FULL_COMMIT

LS_REMOTE_TIMEOUT = 20.0  # seconds; an unreachable host must not stall synth for long
_ABBREVIATED_COMMIT = re.compile(r"[0-9a-fA-F]{4,39}")


class GitRemoteError(Exception):
    """A remote that could not be asked (unreachable, refused, timed out); the message is one line."""


def git(*args: str, cwd: Path | None = None, timeout: float = 10.0) -> subprocess.CompletedProcess[str] | None:
    """`git [-C cwd] args...` without prompts; None when git is missing or did not finish within `timeout`."""
    command = ["git", *(["-C", str(cwd)] if cwd is not None else []), *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never", "LC_ALL": "C"}
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None


def origin_https_url(repo_dir: Path) -> str | None:
    """The checkout's `origin` remote as an https URL (ssh forms converted, credentials dropped)."""
    out = git("remote", "get-url", "origin", cwd=repo_dir)
    return to_https(out.stdout.strip()) if out is not None and out.returncode == 0 and out.stdout.strip() else None


def to_https(remote: str) -> str | None:
    """`git@host:o/r.git` / `ssh://git@host/o/r.git` / `https://user:tok@host/o/r` -> `https://host/o/r...`."""
    scp = re.match(r"^(?:[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?!//)(?P<path>[^\s]+)$", remote)
    if scp and not remote.startswith(("http://", "https://", "ssh://", "git://")):
        return f"https://{scp.group('host')}/{scp.group('path').lstrip('/')}"
    url = re.match(r"^(?:ssh|git|https?)://(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+)(?::[0-9]+)?(?P<path>/[^\s]*)$",
                   remote)
    if url:
        # ssh ports are not https ports: drop any port; keep an https URL's own port.
        port = re.match(r"^https://(?:[^@/\s]+@)?[A-Za-z0-9.-]+(?P<port>:[0-9]+)", remote)
        return f"https://{url.group('host')}{port.group('port') if port else ''}{url.group('path')}"
    return None


def ls_remote(url: str, *patterns: str, timeout: float = LS_REMOTE_TIMEOUT) -> dict[str, str]:
    """{ref name: object id} of the remote's refs matching `patterns` (all refs without any); annotated tags
    also as `refs/tags/NAME^{}` -> their commit where a pattern names them so. GitRemoteError: one line why not."""
    out = git("ls-remote", "--", url, *patterns, timeout=timeout)
    if out is None:
        raise GitRemoteError(f"git ls-remote gave no answer within {timeout:g} s (or git is not installed)")
    if out.returncode != 0:
        lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"git ls-remote exited with status {out.returncode}"
        raise GitRemoteError(reason.removeprefix("fatal: ")[:300])
    refs: dict[str, str] = {}
    for line in out.stdout.splitlines():
        object_id, _, name = line.partition("\t")
        if FULL_COMMIT.fullmatch(object_id) and name:
            refs[name] = object_id.lower()
    return refs


def commit_of(refs: Mapping[str, str], ref: str) -> str | None:
    """The commit `ref` names among a remote's refs, in the order `git fetch origin REF` tries them (REF,
    refs/REF, refs/tags/REF, refs/heads/REF, ...), an annotated tag peeled to its commit; None if none."""
    for name in (ref, f"refs/{ref}", f"refs/tags/{ref}", f"refs/heads/{ref}", f"refs/remotes/{ref}",
                 f"refs/remotes/{ref}/HEAD"):
        found = refs.get(name + "^{}") or refs.get(name)
        if found:
            return found
    return None


def resolve_commit(repo_url: str, ref: str, *,
                   timeout: float = LS_REMOTE_TIMEOUT) -> tuple[str | None, str | None]:
    """(the commit gitRef `ref` names on `repo_url`, None) or (None, one line saying why it could not be found).

    A ref of 40 hex digits is the commit itself (no network); otherwise `git ls-remote` asks the remote.
    """
    if FULL_COMMIT.fullmatch(ref):
        return ref.lower(), None
    try:
        refs = ls_remote(repo_url, ref, ref + "^{}", timeout=timeout)
    except GitRemoteError as error:
        return None, f"could not resolve gitRef {ref!r} to a commit on {repo_url}: {error}"
    commit = commit_of(refs, ref)
    if commit is not None:
        return commit, None
    hint = (" (an abbreviated commit cannot be looked up on a remote: give all 40 hex digits)"
            if _ABBREVIATED_COMMIT.fullmatch(ref) else "")
    return None, f"gitRef {ref!r} is no branch or tag of {repo_url}{hint}"
