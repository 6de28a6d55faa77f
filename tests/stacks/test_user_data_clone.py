"""The user data's clone step on its own (`git_fetch`, `clone` and the token's credential helper, cut out of the
rendered script): the deployed commit is checked out whatever the branch holds now, with or without a server that
allows fetching a commit by id; and the helper hands git the token from `aws secretsmanager` and nothing else.

The remote is a local bare repository (file://), so these run in a second; tests/rehearsal/test_private_repo.py
runs the whole user data against an https server that wants the token.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from stacks.user_data import BODY
from tests.rehearsal.git_server import AUTHOR, clean_git_env

TOKEN = "rehearsal-token-7f3c9a1e5b"
SECRET = "spotgrade/repo-token"
# git's wire protocol v0 refuses a commit asked for by id unless the server allows it (v2 allows it).
PROTOCOL_V0 = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.version", "GIT_CONFIG_VALUE_0": "0"}


def functions() -> str:
    """The clone step's definitions, as user_data.sh has them."""
    body = BODY.read_text()
    start, end = body.index("# git fetch, never prompting."), body.index("# The venv: ")
    return body[start:end]


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=clean_git_env(**AUTHOR), check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(a bare repository whose branch `main` moved on after `deployed`, deployed, the branch's tip)."""
    root = tmp_path_factory.mktemp("remote")
    bare, work = root / "repo.git", root / "work"
    git("init", "-q", "--bare", "--initial-branch=main", str(bare))
    git("init", "-q", "--initial-branch=main", str(work))
    commits = []
    for text in ("deployed", "pushed after the deploy"):
        (work / "train.py").write_text(f"# {text}\n")
        git("add", "train.py", cwd=work)
        git("commit", "-q", "-m", text, cwd=work)
        git("push", "-q", str(bare), "main", cwd=work)
        commits.append(git("rev-parse", "HEAD", cwd=work))
    return bare, commits[0], commits[1]


def run_clone(tmp_path: Path, bare: Path, commit: str, *, ref: str = "main", secret: str = "",
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    header = (f"set -euo pipefail\nreadonly SRC_DIR={shlex.quote(str(tmp_path / 'src'))}\n"
              f"readonly SPOTGRADE_REPO_URL=file://{bare}\nreadonly SPOTGRADE_GIT_REF={ref}\n"
              f"readonly SPOTGRADE_GIT_COMMIT={commit}\nreadonly SPOTGRADE_REPO_TOKEN_SECRET={secret}\n")
    return subprocess.run(["bash", "-c", header + functions() + "clone\n"], capture_output=True, text=True,
                          env=clean_git_env(**(env or {})))


def head(tmp_path: Path) -> str:
    return git("-C", str(tmp_path / "src"), "rev-parse", "HEAD")


def test_the_deployed_commit_not_the_branchs_tip(tmp_path: Path, remote: tuple[Path, str, str]) -> None:
    bare, deployed, tip = remote
    done = run_clone(tmp_path, bare, deployed)
    assert done.returncode == 0, done.stderr
    assert head(tmp_path) == deployed != tip
    assert git("-C", str(tmp_path / "src"), "rev-parse", "--is-shallow-repository") == "true"  # that one commit
    assert f"at main = {deployed} (the deployed commit)" in done.stdout


def test_a_server_that_refuses_a_commit_by_id_gets_the_full_fetch(tmp_path: Path,
                                                                  remote: tuple[Path, str, str]) -> None:
    bare, deployed, _ = remote
    done = run_clone(tmp_path, bare, deployed, env=PROTOCOL_V0)
    assert done.returncode == 0, done.stderr
    assert "unadvertised object" in done.stderr  # the shallow fetch was refused ...
    assert head(tmp_path) == deployed  # ... and the fallback found the commit among the branches


def test_a_commit_no_branch_holds_any_more_stops_the_boot(tmp_path: Path, remote: tuple[Path, str, str]) -> None:
    bare, _, _ = remote
    gone = "0123456789abcdef0123456789abcdef01234567"
    done = run_clone(tmp_path, bare, gone, env=PROTOCOL_V0)
    assert done.returncode == 1
    assert f"error: commit {gone} (gitRef 'main' when deployed) is on no branch or tag of" in done.stderr


def test_unresolved_at_synth_checks_out_the_ref_and_says_so(tmp_path: Path, remote: tuple[Path, str, str]) -> None:
    bare, _, tip = remote
    done = run_clone(tmp_path, bare, "")
    assert done.returncode == 0, done.stderr
    assert head(tmp_path) == tip
    assert "gitRef 'main' was not resolved to a commit at synth; checking out what it names now" in done.stdout


# ---------------------------------------------------------------- the token's credential helper

def fake_aws(folder: Path, output: str, *, status: int = 0) -> Path:
    """An `aws` that records its arguments and environment (JSON lines in folder/aws-calls) and prints `output`."""
    folder.mkdir(parents=True, exist_ok=True)
    calls = folder / "aws-calls"
    script = folder / "aws"
    script.write_text("#!/usr/bin/env python3\nimport json, os, sys\n"
                      f"open({str(calls)!r}, 'a').write(json.dumps({{'argv': sys.argv, 'env': dict(os.environ)}}) "
                      "+ '\\n')\n"
                      f"sys.stdout.write({output!r} + '\\n')\nsys.exit({status})\n")
    script.chmod(0o755)
    return calls


def credential_fill(tmp_path: Path, bin_dir: Path, *, action: str = "fill") -> subprocess.CompletedProcess[str]:
    """`git credential fill` (what git-remote-https does on a 401) through git_fetch's helper settings, where the
    machine's git config names the `store` helper (which would write ~/.git-credentials)."""
    script = (functions() + "\nGIT_TERMINAL_PROMPT=0 REPO_TOKEN_SECRET=" + shlex.quote(SECRET)
              + ' git -c credential.helper= -c "credential.helper=$TOKEN_HELPER" credential ' + action + "\n")
    config = bin_dir / "gitconfig"
    config.write_text("[credential]\n\thelper = store\n")
    env = clean_git_env(PATH=f"{bin_dir}:{os.environ['PATH']}", HOME=str(tmp_path), GIT_CONFIG_GLOBAL=str(config))
    return subprocess.run(["bash", "-c", script], input="protocol=https\nhost=git.example.com\npath=team/repo.git\n\n",
                          capture_output=True, text=True, env=env)


def test_the_helper_gives_git_the_secrets_value_as_the_password(tmp_path: Path) -> None:
    calls = fake_aws(tmp_path / "bin", TOKEN)
    done = credential_fill(tmp_path, tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    assert "username=x-access-token\n" in done.stdout and f"password={TOKEN}\n" in done.stdout
    [call] = [json.loads(line) for line in calls.read_text().splitlines()]
    assert call["argv"][1:] == ["secretsmanager", "get-secret-value", "--secret-id", SECRET, "--query",
                                "SecretString", "--output", "text"]
    assert TOKEN not in json.dumps(call)  # the token is the CLI's output, never its input
    assert done.stderr == ""


def test_the_helper_stores_nothing_and_a_failed_lookup_gives_git_nothing(tmp_path: Path) -> None:
    fake_aws(tmp_path / "bin", TOKEN)
    done = credential_fill(tmp_path, tmp_path / "bin", action="approve")  # git's "store" after a success
    assert done.returncode == 0 and done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # no .git-credentials, nothing else
    fake_aws(tmp_path / "denied", "", status=254)
    done = credential_fill(tmp_path, tmp_path / "denied")
    assert done.returncode != 0 and "password=" not in done.stdout
