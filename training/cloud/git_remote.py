"""The checkout's `origin` remote as an https URL an instance can clone (the default repoUrl)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path


def origin_https_url(repo_dir: Path) -> str | None:
    """The checkout's `origin` remote as an https URL (ssh forms converted, credentials dropped)."""
    try:
        out = subprocess.run(["git", "-C", str(repo_dir), "remote", "get-url", "origin"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return to_https(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


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
