"""git_remote.py: the checkout's origin remote as an https URL (the default repoUrl), and gitRef resolved to a
commit on the remote (git ls-remote: git's own order, tags peeled, one-line notes, no prompt, no hang)."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from training.cloud.git_remote import commit_of, ls_remote, origin_https_url, resolve_commit, to_https


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


# ---------------------------------------------------------------- gitRef -> commit (git ls-remote)

def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *(["-C", str(cwd)] if cwd else []), *args], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """A bare repository with a branch, a nested branch of the same tail, an annotated and a lightweight tag."""
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "t")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "t@example.com")
    work = tmp_path / "work"
    _git("init", "-q", "-b", "main", str(work))
    _git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    _git("tag", "-a", "v1", "-m", "release", cwd=work)
    _git("commit", "-q", "--allow-empty", "-m", "two", cwd=work)
    second = _git("rev-parse", "HEAD", cwd=work)
    _git("branch", "feature/main", first, cwd=work)
    _git("tag", "light", first, cwd=work)
    bare = tmp_path / "remote.git"
    _git("clone", "-q", "--bare", str(work), str(bare))
    return bare, {"first": first, "second": second}


def test_resolve_commit_follows_gits_fetch_order_and_peels_tags(remote: tuple[Path, dict[str, str]]) -> None:
    bare, commits = remote
    url = str(bare)
    assert resolve_commit(url, "main") == (commits["second"], None)  # not refs/heads/feature/main
    assert resolve_commit(url, "feature/main") == (commits["first"], None)
    assert resolve_commit(url, "v1") == (commits["first"], None)  # the commit, not the tag object
    assert resolve_commit(url, "light") == (commits["first"], None)
    assert resolve_commit(url, "refs/heads/main") == (commits["second"], None)
    assert resolve_commit(url, "HEAD") == (commits["second"], None)
    refs = ls_remote(url)
    assert commit_of(refs, "v1") == commits["first"] and refs["refs/tags/v1"] != commits["first"]
    assert commit_of(refs, "nope") is None


def test_a_full_commit_is_taken_as_is_without_network() -> None:
    sha = "0123456789abcdef0123456789ABCDEF01234567"
    assert resolve_commit("https://unreachable.invalid/o/r.git", sha) == (sha.lower(), None)


def test_a_missing_ref_is_a_one_line_note(remote: tuple[Path, dict[str, str]]) -> None:
    bare, _ = remote
    commit, note = resolve_commit(str(bare), "release-9")
    assert commit is None and note == f"gitRef 'release-9' is no branch or tag of {bare}"
    commit, note = resolve_commit(str(bare), "abc1234")
    assert commit is None and note is not None and note.endswith("give all 40 hex digits)")


def test_an_unreachable_remote_is_a_one_line_note_not_a_hang(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}/team/sg.git"
    started = time.monotonic()
    commit, note = resolve_commit(url, "main", timeout=30)
    assert commit is None and note is not None and "\n" not in note
    assert note.startswith(f"could not resolve gitRef 'main' to a commit on {url}: ")
    assert time.monotonic() - started < 20
    commit, note = resolve_commit(str(tmp_path / "no-such-repo"), "main")
    assert commit is None and note is not None and "\n" not in note


class _AsksForCredentials(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_remote_asking_for_credentials_never_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIT_TERMINAL_PROMPT=0: git says it cannot prompt instead of waiting for a user name."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # no credential helper of this machine's
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AsksForCredentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/team/private.git"
        commit, note = resolve_commit(url, "main", timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert commit is None and note is not None and "terminal prompts disabled" in note and "\n" not in note
