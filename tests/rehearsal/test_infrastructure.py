"""The rehearsal's loopback stand-ins work as an instance would use them: git over https, a package index, shims."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.rehearsal.git_server import HttpsGitServer, clean_git_env, snapshot_repo, write_git_config
from tests.rehearsal.package_index import MARKER, PackageIndex, build_wheelhouse, pip_env
from tests.rehearsal.shims import NO_PACKAGES, cloudwatch_agent_ctl, install_shims, read_calls
from tests.training.cloud.fake_imds import FakeImds
from tests.training.cloud.moto_server import moto_endpoint  # noqa: F401 (the shared moto server fixture)

REPO = Path(__file__).resolve().parents[2]
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _user_data_clone(dest: Path, url: str, ref: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The user data's clone: init, add origin, shallow fetch of the ref, detach at FETCH_HEAD."""
    for args in (["git", "init", "-q", str(dest)], ["git", "-C", str(dest), "remote", "add", "origin", url]):
        subprocess.run(args, env=env, check=True, capture_output=True)
    fetched = _run(["git", "-C", str(dest), "fetch", "-q", "--depth", "1", "origin", ref], env)
    if fetched.returncode != 0:
        return fetched
    return _run(["git", "-C", str(dest), "checkout", "-q", "--detach", "FETCH_HEAD"], env)


def test_git_snapshot_served_over_https_clones_as_the_user_data_does(tmp_path):
    sha = snapshot_repo(REPO, tmp_path / "repos" / "spotgrade.git", "rehearsal")
    with HttpsGitServer(tmp_path / "repos") as server:
        env = clean_git_env(GIT_CONFIG_GLOBAL=str(write_git_config(tmp_path / "gitconfig", server)))
        url = server.url_for("spotgrade")

        cloned = _user_data_clone(tmp_path / "src", url, "rehearsal", env)
        assert cloned.returncode == 0, cloned.stderr
        head = _run(["git", "-C", str(tmp_path / "src"), "rev-parse", "HEAD"], env).stdout.strip()
        assert head == sha
        assert (tmp_path / "src" / "training" / "cloud" / "run.py").is_file()
        assert (tmp_path / "src" / "tests" / "rehearsal" / "git_server.py").is_file()  # untracked, not ignored
        assert not (tmp_path / "src" / ".venv").exists()
        assert ("GET", "/spotgrade.git/info/refs?service=git-upload-pack") in server.requests
        assert ("POST", "/spotgrade.git/git-upload-pack") in server.requests

        by_sha = _user_data_clone(tmp_path / "pinned", url, sha, env)
        assert by_sha.returncode == 0, by_sha.stderr
        fallback = _run(["git", "-C", str(tmp_path / "pinned"), "fetch", "-q", "--tags", "origin",
                         "+refs/heads/*:refs/remotes/origin/*"], env)
        assert fallback.returncode == 0, fallback.stderr

        missing = _user_data_clone(tmp_path / "missing", url, "no-such-branch", env)
        assert missing.returncode != 0 and "couldn't find remote ref no-such-branch" in missing.stderr

        untrusted = _user_data_clone(tmp_path / "untrusted", url, "rehearsal", clean_git_env())
        assert untrusted.returncode != 0 and "certificate" in untrusted.stderr.lower(), untrusted.stderr


def test_snapshot_leaves_out_deleted_files_and_keeps_untracked_ones(tmp_path):
    source = tmp_path / "source"
    env = clean_git_env(GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@b", GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@b")
    subprocess.run(["git", "init", "-q", str(source)], env=env, check=True)
    (source / ".gitignore").write_text("ignored.txt\n")
    for name in ("kept.txt", "deleted.txt", "run.sh"):
        (source / name).write_text(name)
    (source / "run.sh").chmod(0o755)
    subprocess.run(["git", "-C", str(source), "add", "."], env=env, check=True)
    subprocess.run(["git", "-C", str(source), "commit", "-q", "-m", "x"], env=env, check=True)
    (source / "deleted.txt").unlink()
    (source / "kept.txt").write_text("edited")
    (source / "new.txt").write_text("new")
    (source / "ignored.txt").write_text("ignored")

    sha = snapshot_repo(source, tmp_path / "bare.git", "main")
    listing = _run(["git", "--git-dir", str(tmp_path / "bare.git"), "ls-tree", "main"], env).stdout
    names = sorted(line.split("\t")[1] for line in listing.splitlines())
    assert names == [".gitignore", "kept.txt", "new.txt", "run.sh"]
    assert "100755 blob" in next(line for line in listing.splitlines() if line.endswith("run.sh"))
    assert _run(["git", "--git-dir", str(tmp_path / "bare.git"), "show", "main:kept.txt"], env).stdout == "edited"
    assert _run(["git", "--git-dir", str(tmp_path / "bare.git"), "rev-parse", "main"], env).stdout.strip() == sha


@pytest.mark.slow
def test_package_index_serves_the_wheelhouse_to_a_fresh_venv(tmp_path_factory):
    cache = tmp_path_factory.mktemp("wheels")
    wheelhouse = build_wheelhouse(["six==1.16.0"], cache)
    assert (wheelhouse / MARKER).exists() and build_wheelhouse(["six==1.16.0"], cache) == wheelhouse
    six = wheelhouse / "six-1.16.0-py2.py3-none-any.whl"
    assert six.is_file() and any(p.name.startswith("pip-") for p in wheelhouse.iterdir())

    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    with PackageIndex(wheelhouse) as index:
        env = pip_env(index)
        upgraded = _run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], env)
        assert upgraded.returncode == 0, upgraded.stderr
        assert index.files_served and index.files_served[0].startswith("pip-")

        index.reset_counters()
        installed = _run([python, "-m", "pip", "install", "-q", "six==1.16.0"], env)
        assert installed.returncode == 0, installed.stderr
        assert index.files_served == [six.name] and index.bytes_served == six.stat().st_size
        assert _run([python, "-c", "import six; print(six.__version__)"], env).stdout.strip() == "1.16.0"

        index.reset_counters()
        unknown = _run([python, "-m", "pip", "install", "-q", "spotgrade-no-such-package==1.0"], env)
        assert unknown.returncode != 0 and "No matching distribution" in unknown.stderr
        assert index.bytes_served == 0


def test_wheelhouse_without_its_marker_is_downloaded_again(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, check: calls.append(args))
    first = build_wheelhouse(["six==1.16.0"], tmp_path)
    assert build_wheelhouse(["six==1.16.0"], tmp_path) == first and len(calls) == 1
    (first / MARKER).unlink()
    assert build_wheelhouse(["six==1.16.0"], tmp_path) == first and len(calls) == 2
    assert build_wheelhouse(["six==1.17.0"], tmp_path) != first
    assert calls[0][calls[0].index("-d") + 2:] == ["pip", "six==1.16.0"]


def test_command_shims_log_their_calls(tmp_path):
    calls = tmp_path / "calls.jsonl"
    bin_dir = install_shims(tmp_path / "bin", calls, Path(sys.executable).with_name("aws"))
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    assert _run(["bash", "-c", "shutdown -h now"], env).returncode == 0
    apt = _run(["bash", "-c", "apt-get install -y git"], env)
    assert apt.returncode == 1 and NO_PACKAGES in apt.stderr
    assert [(c["cmd"], c["args"]) for c in read_calls(calls)] == [("shutdown", ["-h", "now"]),
                                                                  ("apt-get", ["install", "-y", "git"])]
    assert all(isinstance(c["time"], float) for c in read_calls(calls))
    aws = _run(["bash", "-c", "command -v aws && aws --version"], env)
    assert aws.returncode == 0 and aws.stdout.startswith(str(bin_dir / "aws")) and "aws-cli/" in aws.stdout + aws.stderr


def test_cloudwatch_agent_ctl_ships_a_file_to_its_stream(tmp_path, moto_endpoint):  # noqa: F811 (fixture)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=moto_endpoint)
    logs = boto3.client("logs", region_name="us-east-1", endpoint_url=moto_endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing")
    logs.create_log_group(logGroupName="/spotgrade/rehearsal")
    calls = tmp_path / "calls.jsonl"
    ctl = cloudwatch_agent_ctl(tmp_path / "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl", calls)
    boot_log = tmp_path / "boot.log"
    boot_log.write_text("line 1\nline 2\n")
    config = tmp_path / "etc" / "cw.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"logs": {"logs_collected": {"files": {"collect_list": [
        {"file_path": str(boot_log), "log_group_name": "/spotgrade/rehearsal",
         "log_stream_name": "run-1/boot-{instance_id}", "retention_in_days": -1}]}}}}))

    with FakeImds() as imds:
        env["SPOTGRADE_METADATA_URL"] = imds.url
        started = _run([str(ctl), "-a", "fetch-config", "-m", "ec2", "-s", "-c", f"file:{config}"], env)
        assert started.returncode == 0, started.stderr
    pidfile = config.with_name("cw.json.shipper.pid")
    assert pidfile.exists()
    stream = {"logGroupName": "/spotgrade/rehearsal", "logStreamName": "run-1/boot-i-0123456789abcdef0"}

    def shipped() -> list[str]:
        try:
            return [e["message"] for e in logs.get_log_events(**stream, startFromHead=True)["events"]]
        except logs.exceptions.ResourceNotFoundException:
            return []

    with open(boot_log, "a") as log:
        log.write("line 3\n")
        log.flush()
        deadline = time.monotonic() + 10
        while shipped() != ["line 1", "line 2", "line 3"] and time.monotonic() < deadline:  # shipped while running
            time.sleep(0.1)
        assert shipped() == ["line 1", "line 2", "line 3"]
        log.write("line 4\nline 5")  # the last line is unterminated: shipped at stop
    status = _run([str(ctl), "-a", "status"], env)
    assert json.loads(status.stdout)["status"] == "running"
    stopped = _run([str(ctl), "-a", "stop"], env)
    assert stopped.returncode == 0, stopped.stderr
    assert not pidfile.exists()

    assert shipped() == [f"line {i}" for i in range(1, 6)]
    assert [c["args"][:2] for c in read_calls(calls)] == [["-a", "fetch-config"], ["-a", "status"], ["-a", "stop"]]
