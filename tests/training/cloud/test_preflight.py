"""preflight.py: `make deploy`'s pre-flight validates the settings `cdk deploy` would use, refuses a deploy with no
repoUrl, and says so in one line with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training.cloud.preflight import check_deploy, main
from training.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _git_repo(path: Path, origin: str | None) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if origin:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    (path / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    return path


def test_repo_url_defaults_to_origin_as_https(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path, "git@git.example.com:team/spotgrade.git")
    config = check_deploy([], repo_dir=repo)
    assert config.repo_url == "https://git.example.com/team/spotgrade.git"


def test_check_deploy_refuses_without_repo_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _git_repo(tmp_path, None)
    with pytest.raises(ConfigError, match=r"no repoUrl.*-c repoUrl="):
        check_deploy([], repo_dir=repo)
    config = check_deploy(["--require-approval", "never", "-c", "repoUrl=https://h.example/o/r.git",
                           "--context=runId=r2"], repo_dir=repo)
    assert (config.repo_url, config.run_id) == ("https://h.example/o/r.git", "r2")
    with pytest.raises(ConfigError, match="gitRef"):
        check_deploy(["-c", "repoUrl=https://h.example/o/r.git", "-c", "gitRef=$(id)"], repo_dir=repo)


def test_check_deploy_cli_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = subprocess.run([sys.executable, "-m", "training.cloud.preflight", "-c",
                         "repoUrl=https://h.example/o/r.git"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "deploying run 'default' from https://h.example/o/r.git at main\n"
    bad = subprocess.run([sys.executable, "-m", "training.cloud.preflight", "-c", "capacity=cheap"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: context key 'capacity'") and bad.stderr.count("\n") == 1
    assert main([], repo_dir=_git_repo(tmp_path, None)) == 2
    assert capsys.readouterr().err.startswith("error: no repoUrl: ")
