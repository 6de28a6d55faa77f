"""A moto server on 127.0.0.1 shared by the runner tests, and helpers to drive runs against it."""
from __future__ import annotations

import itertools
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from training.cloud import aws as cloud_aws
from training.cloud.core.layout import RunLayout
from training.cloud.core.lifecycle import read_status

REPO = Path(__file__).resolve().parents[3]
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
_names = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass
class Cloud:
    """One bucket, log group and Auto Scaling group (desired 1) on the moto server."""

    endpoint: str
    clients: cloud_aws.Clients
    bucket: str
    group: str
    log_group: str

    def aws_env(self) -> dict[str, str]:
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def write_env_file(self, path: Path, run_id: str, metadata_url: str, work_dir: Path, **extra: str) -> Path:
        values = {"RUN_ID": run_id, "BUCKET": self.bucket, "DATA_URI": "", "MAX_RUNTIME_HOURS": "",
                  "ASG_NAME": self.group, "LOG_GROUP": self.log_group, "CAPACITY": "spot", "TOPIC_ARN": "",
                  "METADATA_URL": metadata_url, "WORK_DIR": str(work_dir), "HEARTBEAT_SECONDS": "1",
                  "NOTICE_POLL_SECONDS": "0.2", "LOG_FLUSH_SECONDS": "1", **extra}
        path.write_text("".join(f"SPOTGRADE_{k}={shlex.quote(v)}\n" for k, v in values.items()))
        return path

    def status(self, run_id: str) -> dict | None:
        return read_status(self.clients.s3, RunLayout(self.bucket, run_id))

    def keys(self, prefix: str) -> list[str]:
        return sorted(o["Key"] for o in cloud_aws.list_objects(self.clients.s3, self.bucket, prefix))

    def read(self, key: str) -> bytes:
        return self.clients.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def desired(self) -> int:
        groups = self.clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
        return groups["AutoScalingGroups"][0]["DesiredCapacity"]

    def set_desired(self, n: int) -> None:
        self.clients.autoscaling.update_auto_scaling_group(AutoScalingGroupName=self.group, MinSize=n,
                                                           DesiredCapacity=n)

    def start_runner(self, env_file: Path, output: Path) -> subprocess.Popen:
        """`python -m training.cloud.run --env-file ...` as the user data starts it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPOTGRADE_"))}
        env.update(self.aws_env(), PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
        with open(output, "wb") as out:
            return subprocess.Popen([sys.executable, "-m", "training.cloud.run", "--env-file", str(env_file)],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def cloud(moto_endpoint, monkeypatch):
    for key in [k for k in os.environ if k.startswith(("AWS_", "SPOTGRADE_"))]:
        monkeypatch.delenv(key)
    n = next(_names)
    cloud = Cloud(moto_endpoint, None, f"spotgrade-runs-{n}", f"spotgrade-group-{n}", f"/spotgrade/runs-{n}")  # type: ignore[arg-type]
    for key, value in cloud.aws_env().items():
        monkeypatch.setenv(key, value)
    cloud.clients = cloud_aws.make_clients("us-east-1")
    cloud.clients.s3.create_bucket(Bucket=cloud.bucket)
    cloud.clients.logs.create_log_group(logGroupName=cloud.log_group)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    template = ec2.create_launch_template(LaunchTemplateName=f"lt-{n}",
                                          LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "c5.large"})
    cloud.clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=cloud.group, MinSize=1, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]},
        AvailabilityZones=["us-east-1a"])
    return cloud


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll predicate() until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture()
def aws_env(monkeypatch):
    """Fake credentials and region in the environment (no profile), for boto3 against moto."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture()
def aws(aws_env):
    """In-process moto (mock_aws) with fake credentials; yields a boto3 session in its region."""
    from moto import mock_aws

    from tests.training.cloud.moto_run import session

    with mock_aws():
        yield session()


@pytest.fixture()
def no_aws_credentials(monkeypatch, tmp_path):
    """No credentials anywhere boto3 looks: environment, files, instance metadata."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
