"""A private repository and the exact code deployed, rehearsed (the world of tests/rehearsal/harness.py).

- A run deployed with repoTokenSecret clones from an https server on loopback that refuses git without the token,
  trains and SUCCEEDS; the token, which only Secrets Manager (moto) holds, is afterwards in no file under the
  instance's root, the user data, the env file, the boot log, the run's CloudWatch log events, status.json or the
  run's objects in S3, and no process's command line or environment held it while the boot ran (/proc polled
  throughout, seen to cover git's https helper and the `aws secretsmanager` call).
- A run whose branch moves on after the deploy: the attempt after an interruption runs the deployed commit, not
  the branch's new tip, and status.json and run.json name it.

Run them with `pytest -m rehearsal -k private_repo` (a minute or two each; the first installs the environment
unless an earlier scenario of the session packed one).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from tests.rehearsal.git_server import AUTHOR, HttpsGitServer, clean_git_env, write_git_config
from tests.rehearsal.harness import BRANCH, Rehearsal, small_run, wait_for
from training.cloud.core import lifecycle

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
SECRET = "spotgrade/rehearsal-repo-token"


class ProcessWatch:
    """Polls every process's command line and environment (/proc) while a boot runs: `found` holds those that
    contained `needle`, `seen` the command lines of the boot's own processes (its session)."""

    def __init__(self, needle: bytes, session: int) -> None:
        self.needle, self.session = needle, session
        self.found: list[str] = []
        self.seen: set[str] = set()
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-watch", daemon=True)

    def __enter__(self) -> "ProcessWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self.scans += 1
            self._stop.wait(0.005)

    def scan(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    cmdline = f.read()
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    environ = f.read()
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    session = int(f.read().rpartition(b")")[2].split()[3])  # state, ppid, pgrp, session
            except (OSError, ValueError, IndexError):  # gone, or not ours to read
                continue
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:300]
            if self.needle in cmdline or self.needle in environ:
                self.found.append(f"{entry.name}: {shown}")
            if session == self.session:
                self.seen.add(shown)


def files_holding(root: Path, needle: bytes) -> list[str]:
    """Every regular file under `root` whose bytes contain `needle`."""
    holding = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            try:
                if needle in path.read_bytes():
                    holding.append(str(path.relative_to(root)))
            except OSError:
                continue
    return holding


def git(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], env=env or clean_git_env(), capture_output=True, text=True, timeout=60)


def test_a_private_repository_cloned_with_a_token_nobody_sees(rehearsal: Rehearsal, tmp_path: Path) -> None:
    token = "ghp_" + secrets.token_hex(18)
    needle = token.encode()
    # The watch finds the token where a process's environment or command line holds it.
    check = ProcessWatch(needle, session=-1)
    with subprocess.Popen(["sleep", "30"], env={"PATH": os.environ["PATH"], "SHOWN": token}) as by_env, \
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", token]) as by_argument:
        deadline = time.monotonic() + 10
        while len(check.found) < 2 and time.monotonic() < deadline:  # a loaded machine may start them slowly
            check.found.clear()
            check.scan()
            time.sleep(0.05)
        by_env.kill()
        by_argument.kill()
    assert len(check.found) == 2, check.found
    with HttpsGitServer(rehearsal.git.root, token=token) as private:
        url = private.url_for("spotgrade")
        instance_config = write_git_config(tmp_path / "instance-gitconfig", private)  # trusts the certificate only

        # The server refuses git without the token, and with a wrong one; the laptop's own credentials get in.
        anonymous = git("ls-remote", url, env=clean_git_env(GIT_CONFIG_GLOBAL=str(instance_config)))
        assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr, anonymous.stderr
        wrong = tmp_path / "wrong-credentials"
        wrong.write_text(f"https://x-access-token:not-the-token@127.0.0.1:{private.port}\n")
        laptop_config = tmp_path / "laptop-gitconfig"
        laptop_config.write_text(instance_config.read_text() + f"[credential]\n\thelper = store --file={wrong}\n")
        denied = git("ls-remote", url, env=clean_git_env(GIT_CONFIG_GLOBAL=str(laptop_config)))
        assert denied.returncode != 0 and "Authentication failed" in denied.stderr, denied.stderr
        assert private.refused >= 2
        credentials = tmp_path / "laptop-credentials"
        credentials.write_text(f"https://x-access-token:{token}@127.0.0.1:{private.port}\n")
        laptop_config.write_text(instance_config.read_text() + f"[credential]\n\thelper = store --file={credentials}\n")

        rehearsal.client("secretsmanager").create_secret(Name=SECRET, SecretString=token)
        run = rehearsal.deploy("private", repoUrl=url, repoTokenSecret=SECRET, trainArgs=small_run(2),
                               resolve=partial(rehearsal.resolve_commit, git_config=laptop_config))
        deployed = git("--git-dir", str(rehearsal.git.root / "spotgrade.git"), "rev-parse", BRANCH).stdout.strip()
        assert f"readonly SPOTGRADE_GIT_COMMIT={deployed}\n" in run.user_data  # synth asked the private server
        rehearsal.seed_environment(run)
        refused_before = private.refused
        boot = rehearsal.boot(run, "i-0e000000000000001", env={"GIT_CONFIG_GLOBAL": str(instance_config)})
        with ProcessWatch(needle, session=boot.process.pid) as watch:
            assert boot.wait(900) == 0, boot.log()[-3000:]
        assert private.refused > refused_before  # git asked without credentials first, then with the helper's

    status = rehearsal.status(run)
    assert status["state"] == lifecycle.SUCCEEDED, boot.log()[-3000:]
    assert status["code"] == {"git_ref": BRANCH, "git_commit": deployed, "allow_unpushed_code": False}
    assert f"git reads the repository token from secret {SECRET} when the server asks" in boot.log()

    # No process held the token in its command line or environment, and the watch saw the moments it was fetched.
    assert watch.found == []
    assert any("git-remote-https" in line for line in watch.seen), sorted(watch.seen)
    assert any("secretsmanager get-secret-value" in line and SECRET in line for line in watch.seen), sorted(watch.seen)

    # No file, log, record or rendered setting holds it.
    root = boot.root
    assert files_holding(root, needle) == []
    env_file = root / "etc/spotgrade/run.env"
    assert env_file.is_file() and needle not in env_file.read_bytes()
    assert boot.log() and token not in boot.log()
    assert token not in (rehearsal.work / "boot-i-0e000000000000001.out").read_text(errors="replace")
    assert token not in run.user_data and SECRET in run.user_data
    streams = rehearsal.log_streams(run)
    assert streams and not [s for s, lines in streams.items() for line in lines if token in line]
    assert token not in json.dumps(status)
    s3 = rehearsal.client("s3")
    objects = rehearsal.keys(run, rehearsal.layout(run).prefix)
    assert any(k.endswith("run.json") for k in objects) and any("/logs/" in k for k in objects)
    assert [k for k in objects if needle in s3.get_object(Bucket=run.bucket, Key=k)["Body"].read()] == []
    src = root / "opt/spotgrade/src"
    assert git("-C", str(src), "config", "--get", "remote.origin.url").stdout.strip() == url  # credential-free
    print(f"\nMEASURED private: {watch.scans} scans of /proc during the boot, {len(watch.seen)} distinct command "
          f"lines of the boot seen, none holding the token; {private.refused} requests refused without it")


def push_commit(bare: Path, branch: str, name: str) -> str:
    """A new commit on `branch` of the bare repository that adds the file `name` (a push after the deploy)."""
    env = clean_git_env(GIT_DIR=str(bare), **AUTHOR)
    with tempfile.TemporaryDirectory() as tmp:
        env["GIT_INDEX_FILE"] = str(Path(tmp, "index"))
        subprocess.run(["git", "read-tree", branch], env=env, check=True)
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], input=b"pushed after the deploy\n", env=env,
                              capture_output=True, check=True).stdout.decode().strip()
        subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}"], env=env, check=True)
        tree = subprocess.run(["git", "write-tree"], env=env, capture_output=True, text=True, check=True).stdout.strip()
        commit = subprocess.run(["git", "commit-tree", tree, "-p", branch, "-m", "pushed after the deploy"], env=env,
                                capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "update-ref", f"refs/heads/{branch}", commit], env=env, check=True)
    return commit


def test_a_replacement_runs_the_deployed_commit_not_the_branchs_new_tip(rehearsal: Rehearsal) -> None:
    bare = rehearsal.git.root / "moving.git"  # a copy: the other scenarios keep cloning an unmoved branch
    shutil.copytree(rehearsal.git.root / "spotgrade.git", bare)
    run = rehearsal.deploy("pinned", repoUrl=rehearsal.git.url_for("moving"), trainArgs=small_run(8, sample=3000))
    deployed = git("--git-dir", str(bare), "rev-parse", BRANCH).stdout.strip()
    assert f"readonly SPOTGRADE_GIT_COMMIT={deployed}\n" in run.user_data
    rehearsal.seed_environment(run)

    first = rehearsal.boot(run, "i-0f000000000000001")
    first.until(lambda: (rehearsal.status(run) or {}).get("last_epoch", 0) >= 1, 900, "epoch 1 of the first attempt")
    first.imds.notice()
    wait_for(lambda: rehearsal.status(run)["state"] == lifecycle.INTERRUPTED, 120, interval=0.1, what="INTERRUPTED")
    assert first.wait(120) == 0, first.log()[-3000:]

    moved = push_commit(bare, BRANCH, "PUSHED_AFTER_DEPLOY.txt")
    assert git("--git-dir", str(bare), "rev-parse", BRANCH).stdout.strip() == moved != deployed
    second = rehearsal.boot(run, "i-0f000000000000002")
    assert second.wait(900) == 0, second.log()[-3000:]

    status = rehearsal.status(run)
    assert status["state"] == lifecycle.SUCCEEDED, second.log()[-3000:]
    assert [a["end_state"] for a in status["attempts"]] == [lifecycle.INTERRUPTED, lifecycle.SUCCEEDED]
    assert [a["git_commit"] for a in status["attempts"]] == [deployed, deployed]
    assert status["code"] == {"git_ref": BRANCH, "git_commit": deployed, "allow_unpushed_code": False}
    assert f"at {BRANCH} = {deployed} (the deployed commit)" in second.log()
    assert not (second.root / "opt/spotgrade/src/PUSHED_AFTER_DEPLOY.txt").exists()
    run_json = json.loads(rehearsal.artifact(run, "run.json"))
    assert run_json["git_commit"] == deployed and run_json["cloud"]["code"]["git_commit"] == deployed
    assert [a["git_commit"] for a in run_json["cloud"]["attempts"]] == [deployed, deployed]
