"""preflight.py: `make deploy`'s pre-flight validates the settings `cdk deploy` would use (as synth does) and the
code it would run: no repoUrl, a gitRef the remote lacks, a dirty tree, an unpushed commit, another branch, a
remote that moved on or cannot be asked; each refusal is one line with what to do and exit status 2, and
allowUnpushedCode lets the code problems through as warnings.

The remote is a local bare repository (the checkout's origin) that git also reaches for the https repoUrl in the
checkout's cdk.json, through `url.<base>.insteadOf` in a test git config (GIT_CONFIG_GLOBAL), so the code under
test runs real `git ls-remote https://...` commands.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from training.cloud.preflight import check_deploy, main, read_deploy_settings
from training.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
URL = "https://git.example.com/team/spotgrade.git"
OVERRIDE = ["-c", "allowUnpushedCode=true"]


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *(["-C", str(cwd)] if cwd else []), *args], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@dataclass
class Repos:
    work: Path     # the checkout `make deploy` runs in; its cdk.json has repoUrl = URL
    remote: Path   # the bare repository URL leads to
    tmp: Path

    def head(self) -> str:
        return _git("rev-parse", "HEAD", cwd=self.work)

    def commit(self, name: str = "file.txt", text: str = "more\n", cwd: Path | None = None) -> str:
        where = cwd or self.work
        (where / name).write_text(text)
        _git("add", name, cwd=where)
        _git("commit", "-q", "-m", f"change {name}", cwd=where)
        return _git("rev-parse", "HEAD", cwd=where)


@pytest.fixture
def repos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repos]:
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    remote = tmp_path / "remote.git"
    config = tmp_path / "gitconfig"
    config.write_text(f'[user]\n\tname = t\n\temail = t@example.com\n[init]\n\tdefaultBranch = main\n'
                      f'[url "{remote.as_uri()}"]\n\tinsteadOf = {URL}\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    _git("init", "-q", "--bare", str(remote))
    work = tmp_path / "work"
    _git("init", "-q", str(work))
    _git("remote", "add", "origin", str(remote), cwd=work)
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    cdk_json["context"]["repoUrl"] = URL
    repos = Repos(work, remote, tmp_path)
    repos.commit("cdk.json", json.dumps(cdk_json, indent=2))
    _git("push", "-q", "-u", "origin", "main", cwd=work)
    yield repos


def refused(repos: Repos, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """main()'s one error line (exit status 2)."""
    assert main(args, repo_dir=repos.work) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    return err.rstrip("\n")


def test_a_clean_pushed_checkout_deploys(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    checked = check_deploy([], repo_dir=repos.work)
    assert checked.config.repo_url == URL
    assert (checked.commit, checked.warnings) == (repos.head(), ())
    (repos.work / "untracked.txt").write_text("notes")  # untracked files are not deployed code
    assert main(["--require-approval", "never"], repo_dir=repos.work) == 0
    assert capsys.readouterr() == (f"deploying run 'default' from {URL} at main = {repos.head()}\n", "")


def test_check_deploy_refuses_without_repo_url(tmp_path: Path) -> None:
    _git("init", "-q", str(tmp_path))
    (tmp_path / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    with pytest.raises(ConfigError, match=r"^no repoUrl.*-c repoUrl="):
        check_deploy([], repo_dir=tmp_path)
    with pytest.raises(ConfigError, match="gitRef"):
        check_deploy(["-c", "repoUrl=https://h.example/o/r.git", "-c", "gitRef=$(id)"], repo_dir=tmp_path)


def test_a_dirty_tree_is_refused(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    (repos.work / "file.txt").write_text("tracked\n")
    _git("add", "file.txt", cwd=repos.work)  # staged counts too
    assert refused(repos, [], capsys) == (
        "error: the working tree has uncommitted changes to 1 tracked file(s) (file.txt), which the instance would "
        "not run: commit and push them (or git stash them), then deploy again, "
        "or deploy anyway with -c allowUnpushedCode=true")


def test_an_unpushed_commit_is_refused(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    pushed = repos.head()
    head = repos.commit()
    assert refused(repos, [], capsys) == (
        f"error: HEAD {head[:12]} has commits that are not on the remote ({URL}'s 'main' is {pushed[:12]}): "
        "push them (git push origin main), or deploy anyway with -c allowUnpushedCode=true")
    _git("push", "-q", cwd=repos.work)
    assert main([], repo_dir=repos.work) == 0


def test_another_branch_than_git_ref_is_refused(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    _git("checkout", "-q", "-b", "feature", cwd=repos.work)
    head = repos.commit()
    _git("push", "-q", "origin", "feature", cwd=repos.work)
    message = refused(repos, [], capsys)
    assert message.startswith(f"error: this checkout is on branch 'feature' (HEAD {head[:12]}) but gitRef is 'main' ")
    assert message.endswith(": push it and deploy it with -c gitRef=feature, or check out main, "
                            "or deploy anyway with -c allowUnpushedCode=true")
    assert check_deploy(["-c", "gitRef=feature"], repo_dir=repos.work).commit == head


def test_a_remote_that_moved_on_is_refused(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    other = repos.tmp / "other"
    _git("clone", "-q", str(repos.remote), str(other))
    theirs = repos.commit("theirs.txt", cwd=other)
    _git("push", "-q", cwd=other)
    assert refused(repos, [], capsys) == (
        f"error: HEAD {repos.head()[:12]} lacks commits of the remote ({URL}'s 'main' is {theirs[:12]}): "
        "pull them (git pull), check the result, then deploy again, or deploy anyway with -c allowUnpushedCode=true")
    _git("pull", "-q", cwd=repos.work)
    repos.commit("mine.txt")
    _git("fetch", "-q", cwd=repos.work)
    _git("reset", "-q", "--hard", "HEAD~1", cwd=repos.work)
    assert main([], repo_dir=repos.work) == 0  # back at the remote's commit
    capsys.readouterr()
    mine = repos.commit("mine2.txt")
    other_tip = repos.commit("theirs2.txt", cwd=other)
    _git("push", "-q", cwd=other)
    _git("fetch", "-q", cwd=repos.work)
    assert refused(repos, [], capsys) == (
        f"error: HEAD {mine[:12]} and the remote have diverged ({URL}'s 'main' is {other_tip[:12]}): merge or rebase "
        "onto the remote and push, then deploy again, or deploy anyway with -c allowUnpushedCode=true")


def test_a_git_ref_the_remote_lacks_is_refused_even_with_the_override(
        repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    expected = (f"error: gitRef 'release-9' is no branch or tag of {URL}: push it (git push origin release-9) or "
                "deploy an existing one with -c gitRef=...")
    assert refused(repos, ["-c", "gitRef=release-9"], capsys) == expected
    assert refused(repos, ["-c", "gitRef=release-9", *OVERRIDE], capsys) == expected


def test_a_tag_resolves_to_its_commit(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    _git("tag", "-a", "v1", "-m", "release", cwd=repos.work)
    _git("push", "-q", "origin", "v1", cwd=repos.work)
    assert check_deploy(["-c", "gitRef=v1"], repo_dir=repos.work).commit == repos.head()


def test_a_full_commit_git_ref(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    pushed = repos.head()
    assert check_deploy([f"--context=gitRef={pushed}"], repo_dir=repos.work).commit == pushed
    head = repos.commit()
    assert refused(repos, ["-c", f"gitRef={head}"], capsys) == (
        f"error: commit {head[:12]} is on no branch or tag of {URL} that this checkout knows: push it (git push "
        "origin HEAD:BRANCH), or git fetch if it is there already, or deploy anyway with -c allowUnpushedCode=true")
    assert refused(repos, ["-c", f"gitRef={pushed}"], capsys) == (
        f"error: HEAD {head[:12]} is not gitRef {pushed[:12]}: check out {pushed[:12]}, or push HEAD and deploy it "
        f"with -c gitRef={head}, or deploy anyway with -c allowUnpushedCode=true")
    _git("push", "-q", cwd=repos.work)
    _git("checkout", "-q", pushed, cwd=repos.work)  # an older commit of main: no tip, but main's tip holds it
    assert check_deploy(["-c", f"gitRef={pushed}"], repo_dir=repos.work).commit == pushed


def test_an_unreachable_remote_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          repos: Repos) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}/team/spotgrade.git"
    message = refused(repos, ["-c", f"repoUrl={url}"], capsys)
    assert message.startswith(f"error: could not ask {url} what gitRef 'main' is (unable to access ")
    assert message.endswith(f"): check repoUrl and your access to it (git ls-remote {url}), "
                            "or deploy anyway with -c allowUnpushedCode=true")


def test_the_override_lets_code_problems_through_as_warnings(repos: Repos,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    pushed = repos.head()
    head = repos.commit()
    (repos.work / "file.txt").write_text("edited\n")
    checked = check_deploy(OVERRIDE, repo_dir=repos.work)
    assert checked.config.allow_unpushed_code is True and checked.commit == pushed
    assert checked.warnings == (
        "the working tree has uncommitted changes to 1 tracked file(s) (file.txt), which the instance would not "
        "run; deploying anyway (allowUnpushedCode=true, recorded with the run)",
        f"HEAD {head[:12]} has commits that are not on the remote ({URL}'s 'main' is {pushed[:12]}); "
        "deploying anyway (allowUnpushedCode=true, recorded with the run)")
    assert main(OVERRIDE, repo_dir=repos.work) == 0
    out, err = capsys.readouterr()
    assert out == f"deploying run 'default' from {URL} at main = {pushed}\n"
    assert err.splitlines() == [f"warning: {w}" for w in checked.warnings]


def test_not_a_checkout(tmp_path: Path, capsys: pytest.CaptureFixture[str], repos: Repos) -> None:
    bare_dir = tmp_path / "export"
    bare_dir.mkdir()
    (bare_dir / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    assert main(["-c", f"repoUrl={URL}"], repo_dir=bare_dir) == 2
    assert capsys.readouterr().err == (
        f"error: {bare_dir} is not a git checkout with a commit, so what deploys cannot be checked: deploy from your "
        "clone of repoUrl, or deploy anyway with -c allowUnpushedCode=true\n")


def test_settings_are_read_as_synth_reads_them(repos: Repos, capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown keys and trainArgs that train's parser refuses stop the pre-flight before any git command."""
    assert refused(repos, ["-c", "maxRuntimeHour=3"], capsys).startswith(
        "error: context key 'maxRuntimeHour' is unknown; did you mean 'maxRuntimeHours'? (known keys: ")
    assert refused(repos, ["-c", "trainArgs=--epohcs 40"], capsys) == (
        "error: context key 'trainArgs': '--epohcs 40' is not allowed; `python -m training train` says: "
        "unrecognized arguments: --epohcs 40 (set it with -c trainArgs=...)")
    config = read_deploy_settings({"trainArgs": "--epochs 3", "repoUrl": URL}, repo_dir=None,
                                  resolve=lambda url, ref: ("a" * 40, None))
    assert (config.train_args, config.git_commit) == ("--epochs 3", "a" * 40)


def test_check_deploy_cli_exit_status() -> None:
    bad = subprocess.run([sys.executable, "-m", "training", "preflight", "-c", "capacity=cheap"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: context key 'capacity'") and bad.stderr.count("\n") == 1


def test_outside_a_checkout_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An installed copy of the package, away from the repository: no cdk.json to check."""
    assert main(["-c", f"repoUrl={URL}"], repo_dir=tmp_path) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path} has no cdk.json: the pre-flight checks the checkout `make deploy` runs in; run it from "
        "your clone of the repository (make deploy RUN=<run-id>)\n")
