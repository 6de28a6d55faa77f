"""git_remote.py: the checkout's origin remote as an https URL (the default repoUrl)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from training.cloud.git_remote import origin_https_url, to_https


@pytest.mark.parametrize(("remote", "https"), [
    ("git@github.example:owner/repo.git", "https://github.example/owner/repo.git"),
    ("ssh://git@git.example.com:2222/owner/repo.git", "https://git.example.com/owner/repo.git"),
    ("https://user:secret@git.example.com/owner/repo.git", "https://git.example.com/owner/repo.git"),
    ("https://git.example.com:8443/owner/repo", "https://git.example.com:8443/owner/repo"),
    ("/srv/git/repo.git", None),
])
def test_remote_to_https(remote: str, https: str | None) -> None:
    assert to_https(remote) == https


def test_origin_https_url(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert origin_https_url(tmp_path) is None  # no origin
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@git.example.com:team/spotgrade.git"],
                   check=True)
    assert origin_https_url(tmp_path) == "https://git.example.com/team/spotgrade.git"
    assert origin_https_url(tmp_path / "not-a-repo") is None
