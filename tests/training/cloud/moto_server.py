"""A moto server on 127.0.0.1 (a session fixture, shared with tests/rehearsal), the resources of one run in it,
and helpers to drive runs against it."""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from training.cloud import aws as cloud_aws
from training.cloud.core import env as env_keys
from training.cloud.core.layout import RunLayout
from training.cloud.core.status_store import read_status

REPO = Path(__file__).resolve().parents[3]
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


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
        path.write_text("".join(f"{getattr(env_keys, k)}={shlex.quote(v)}\n" for k, v in values.items()))
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
        self.clients.autoscaling.set_desired_capacity(AutoScalingGroupName=self.group, DesiredCapacity=n)

    def start_runner(self, env_file: Path, output: Path) -> subprocess.Popen:
        """`python -m training.cloud.run --env-file ...` as the user data starts it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", env_keys.PREFIX))}
        env.update(self.aws_env(), PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
        with open(output, "wb") as out:
            return subprocess.Popen([sys.executable, "-m", "training.cloud.run", "--env-file", str(env_file)],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll predicate() until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
