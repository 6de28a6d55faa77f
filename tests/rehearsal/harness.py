"""The rehearsal's world: emulated AWS, a fake instance metadata service, an https git remote and a package
index on loopback, and instances that run the user data exactly as CloudFormation rendered it.

What is replaced, and how (nothing else; the user data's logic is not forked):
- AWS: a moto server on 127.0.0.1, reached by the `aws` CLI and boto3 through AWS_ENDPOINT_URL; the shared stack
  (once) and each run's stack are created in it from the synthesized templates (tests/rehearsal/deploy.py).
- The instance metadata service: tests/training/cloud/fake_imds.py (SPOTGRADE_METADATA_URL), one per boot
  with its own instance id; it can post a spot instance-action notice.
- GitHub: tests/rehearsal/git_server.py, https smart HTTP with a self-signed certificate trusted through git's
  own settings (GIT_CONFIG_GLOBAL), serving a snapshot of this working tree on the branch `rehearsal`.
- PyPI: tests/rehearsal/package_index.py, a PEP 503 index over a wheelhouse, counting the bytes it serves.
- The filesystem root: SPOTGRADE_ROOT (a folder emptied before every boot: each boot is a new instance; instances
  that run at once each have their own).
- The GPU: SPOTGRADE_REQUIREMENTS=training/requirements-cpu.txt, and the stacks deploy a CPU instance type.
- shutdown/poweroff, dnf/apt-get and the CloudWatch agent: shims (tests/rehearsal/shims.py) that log calls.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import boto3
import pytest

from tests.rehearsal.deploy import REGION, Deployed, deploy
from tests.rehearsal.git_server import HttpsGitServer
from tests.rehearsal.package_index import PackageIndex, pip_env
from tests.rehearsal.shims import cloudwatch_agent_ctl, install_shims, read_calls
from tests.training.cloud.fake_imds import FakeImds
from tests.training.cloud.moto_server import wait_for  # noqa: F401 (test modules take it from here)
from training.cloud.core.layout import RunLayout
from training.cloud.core.settings import ResolveCommit
from training.cloud.core.status_store import read_status
from training.cloud.git_remote import resolve_commit

REPO = Path(__file__).resolve().parents[2]
BRANCH = "rehearsal"
SHARED_STACK = "Rehearsal"  # the shared stack of every scenario; run stacks are Rehearsal-<run id>
CPU_REQUIREMENTS = "training/requirements-cpu.txt"
INSTANCE_TYPE = "c5.xlarge"  # CPU TensorFlow runs here, so the rehearsal's group and instances are CPU types
WHEELHOUSE_CACHE = REPO / ".venv" / "rehearsal-wheelhouse"  # ignored; `make clean` removes it
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# The runner's clocks, shortened (settings.py): heartbeat every second, notices polled 5 times a second.
FAST_RUNNER = {"SPOTGRADE_HEARTBEAT_SECONDS": "1", "SPOTGRADE_NOTICE_POLL_SECONDS": "0.2",
               "SPOTGRADE_LOG_FLUSH_SECONDS": "1"}


def small_run(epochs: int, sample: int = 1500) -> str:
    """trainArgs of a small run that trains all `epochs` (no early stopping)."""
    return f"--sample {sample} --epochs {epochs} --batch-size 32 --patience {epochs} --hidden-units 16"


@dataclass
class Boot:
    """One instance running the user data; `wait()` returns its exit status."""

    process: subprocess.Popen
    imds: FakeImds
    rehearsal: "Rehearsal"
    deployed: Deployed
    root: Path
    started: float = field(default_factory=time.monotonic)
    first_epoch_s: float | None = None
    seconds: float | None = None
    index_bytes: int | None = None
    final_log: str | None = None
    _watcher: threading.Thread | None = None

    def watch_first_epoch(self, attempt: int) -> None:
        """Note when attempt `attempt` completes its first epoch (seconds after the boot started)."""
        def watch() -> None:
            while self.process.poll() is None and self.first_epoch_s is None:
                status = self.rehearsal.status(self.deployed) or {}
                attempts = status.get("attempts") or []
                if len(attempts) >= attempt and attempts[attempt - 1].get("epochs_completed"):
                    self.first_epoch_s = time.monotonic() - self.started
                time.sleep(0.2)
        self._watcher = threading.Thread(target=watch, daemon=True)
        self._watcher.start()

    def until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """wait_for(predicate), failing at once where the user data ends first."""
        def check() -> Any:
            if self.process.poll() is not None:
                pytest.fail(f"the user data ended (status {self.process.returncode}) before {what}:\n"
                            f"{self.log()[-3000:]}")
            return predicate()
        return wait_for(check, timeout, interval=0.2, what=what)

    def wait(self, timeout: float = 600) -> int:
        try:
            rc = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the user data did not finish in {timeout:.0f} s:\n{self.log()[-4000:]}")
        self.seconds = time.monotonic() - self.started
        self.index_bytes = self.rehearsal.index.bytes_served
        self.final_log = self.log()
        self.rehearsal.note_packs(self.deployed)
        if self._watcher is not None:
            self._watcher.join(5)
        self.rehearsal.stop_leftovers(self.root)
        self.imds.__exit__(None, None, None)
        return rc

    def kill(self) -> None:
        """The instance is terminated: every process of this boot dies."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)
        self.rehearsal.stop_leftovers(self.root)

    def runner_pid(self) -> int | None:
        """The pid of `python -m training.cloud.run` started by this boot, if it is running."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"training.cloud.run" in cmdline and str(self.root).encode() in b" ".join(cmdline):
                return int(proc.name)
        return None

    def log(self) -> str:
        """The bootstrap log (as it was when the boot ended, once it has: the next boot empties the root)."""
        if self.final_log is not None:
            return self.final_log
        path = self.root / "var/log/spotgrade/bootstrap.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Rehearsal:
    """Deploys stacks into moto and boots instances that run their user data."""

    def __init__(self, endpoint: str, git: HttpsGitServer, git_config: Path, index: PackageIndex, work: Path) -> None:
        self.endpoint, self.git, self.git_config, self.index, self.work = endpoint, git, git_config, index, work
        self.session = boto3.Session(region_name=REGION, **{k.lower(): v for k, v in CREDENTIALS.items()})
        self.root = work / "instance"
        self.bin = install_shims(work / "bin", work / "calls.jsonl", Path(sys.executable).with_name("aws"))
        self.calls_file = work / "calls.jsonl"
        self.packs: list[tuple[str, str]] = []  # (bucket, key) of environment packs seen so far
        # moto copies the whole object for every ranged GET: the CLI's default 8 MiB parts make restoring the
        # 0.5 GB environment pack 4x slower than 64 MiB parts (15.7 s vs 3.6 s measured). Speed only.
        self.aws_config = work / "aws-config"
        self.aws_config.write_text("[default]\ns3 =\n  multipart_chunksize = 64MB\n")

    def client(self, name: str) -> Any:
        return self.session.client(name, endpoint_url=self.endpoint)

    def aws_env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": str(self.aws_config), "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"}

    # ---- deploy ------------------------------------------------------------------------------------------
    def deploy(self, run_id: str, *, resolve: ResolveCommit | None = None, **context: Any) -> Deployed:
        """`make deploy RUN=<run_id>`: the shared stack where it is not there yet (every scenario synthesizes the
        same one), then the run's stack. Synth resolves gitRef to a commit through `resolve` (default:
        `resolve_commit`, asking the loopback server as the laptop would)."""
        from tests.stacks.helpers import synth

        context = {"repoUrl": self.git.url_for("spotgrade"), "gitRef": BRANCH, "runId": run_id,
                   "stackName": SHARED_STACK, "instanceTypes": INSTANCE_TYPE, **context}
        outdir = self.work / "cdk" / run_id
        app = synth(outdir, context, nag=False, restrict_default_security_group=False,
                    resolve=resolve or self.resolve_commit)
        deployed = deploy(self._session_with_endpoint(), outdir, app.shared.stack_name, app.shared.template,
                          app.run.stack_name, app.run.template)
        deployed.queue_url = self._subscribe(deployed)
        return deployed

    def resolve_commit(self, repo_url: str, ref: str, *, git_config: Path | None = None) -> tuple[str | None,
                                                                                                  str | None]:
        """synth's gitRef lookup (git_remote.resolve_commit: git ls-remote) from this machine, its git trusting the
        loopback server's certificate through `git_config` (default: the rehearsal's; it may also hold the
        laptop's credentials for a private server)."""
        with mock.patch.dict(os.environ, {"GIT_CONFIG_GLOBAL": str(git_config or self.git_config),
                                          "GIT_CONFIG_NOSYSTEM": "1"}):
            os.environ.pop("GIT_SSL_CAINFO", None)  # it would override the config's sslCAInfo
            return resolve_commit(repo_url, ref)

    def _session_with_endpoint(self) -> Any:
        rehearsal = self

        class Session:  # the deploy helper's view: clients on the moto server
            def client(self, name: str) -> Any:
                return rehearsal.client(name)
        return Session()

    def _subscribe(self, deployed: Deployed) -> str:
        """An SQS queue subscribed to the (shared) topic: how the rehearsal reads the run's notifications."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"{deployed.stack_name}-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=deployed.topic_arn, Protocol="sqs", Endpoint=arn,
                                     Attributes={"RawMessageDelivery": "true"})
        return url

    def notifications(self, deployed: Deployed) -> list[str]:
        """The notifications about this run since it was deployed (the topic is every run's: others are left out)."""
        sqs, messages = self.client("sqs"), []
        while True:
            got = sqs.receive_message(QueueUrl=deployed.queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return [m for m in messages if m.startswith(f"Run {self.run_id(deployed)}: ")]
            messages += [m["Body"] for m in got]

    def seed_environment(self, deployed: Deployed) -> bool:
        """Copy the packed environment an earlier run made into this run's prefix, as if an earlier attempt
        of this run had installed it (the scenarios that are not about booting start fast); False where no
        run has packed one yet in this session."""
        s3 = self.client("s3")
        for bucket, key in self.packs[:1]:
            target = RunLayout(deployed.bucket, self.run_id(deployed)).env_prefix + key.rsplit("/", 1)[1]
            s3.copy_object(Bucket=deployed.bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
            return True
        return False

    def note_packs(self, deployed: Deployed) -> list[str]:
        """The run's environment packs; remembered for seeding later runs."""
        s3 = self.client("s3")
        prefix = RunLayout(deployed.bucket, self.run_id(deployed)).env_prefix
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=deployed.bucket, Prefix=prefix).get("Contents", [])]
        self.packs += [(deployed.bucket, k) for k in keys if (deployed.bucket, k) not in self.packs]
        return keys

    # ---- boot --------------------------------------------------------------------------------------------
    def boot(self, deployed: Deployed, instance_id: str, *, zone: str = "us-east-1a",
             requirements: str = CPU_REQUIREMENTS, env: dict[str, str] | None = None, root: Path | None = None) -> Boot:
        """A new instance: an empty root (`root`, default the rehearsal's one; give each instance that runs at the
        same time as another its own), the CloudWatch agent of the AMI (a shim), then the user data."""
        root = root or self.root
        self.stop_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        cloudwatch_agent_ctl(root / "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl",
                             self.calls_file)
        script = self.work / f"user-data-{deployed.stack_name}.sh"
        script.write_text(deployed.user_data)
        imds = FakeImds(instance_type=INSTANCE_TYPE, instance_id=instance_id, zone=zone).__enter__()
        python_bin = Path(sys.base_prefix) / "bin"  # the machine's Python (the AMI's python3.x), not this venv
        base = {"PATH": f"{self.bin}:{python_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": str(root),
                "LANG": "C.UTF-8", "TF_CPP_MIN_LOG_LEVEL": "2"}
        process_env = pip_env(self.index, base)
        process_env.update({**self.aws_env(), **FAST_RUNNER, "GIT_CONFIG_GLOBAL": str(self.git_config),
                            "GIT_CONFIG_NOSYSTEM": "1", "SPOTGRADE_ROOT": str(root),
                            "SPOTGRADE_REQUIREMENTS": requirements, "SPOTGRADE_METADATA_URL": imds.url, **(env or {})})
        self.index.reset_counters()
        with open(self.work / f"boot-{instance_id}.out", "wb") as out:
            process = subprocess.Popen(["bash", str(script)], env=process_env, cwd=root, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        return Boot(process, imds, self, deployed, root)

    def stop_leftovers(self, root: Path | None = None) -> None:
        """Stop what a terminated instance leaves behind in its root (the agent shim's shipper, a stuck runner)."""
        ctl = (root or self.root) / "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
        if ctl.exists():
            subprocess.run([str(ctl), "-a", "stop"], capture_output=True, timeout=30)

    # ---- emulated AWS state ------------------------------------------------------------------------------
    @staticmethod
    def run_id(deployed: Deployed) -> str:
        return deployed.outputs["RunId"]

    def status(self, deployed: Deployed) -> dict | None:
        return read_status(self.client("s3"), RunLayout(deployed.bucket, self.run_id(deployed)))

    def desired(self, deployed: Deployed) -> int:
        [group] = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[deployed.group])["AutoScalingGroups"]
        return group["DesiredCapacity"]

    def layout(self, deployed: Deployed) -> RunLayout:
        return RunLayout(deployed.bucket, self.run_id(deployed))

    def artifact(self, deployed: Deployed, name: str) -> bytes:
        return self.client("s3").get_object(Bucket=deployed.bucket,
                                            Key=self.layout(deployed).artifact_key(name))["Body"].read()

    def keys(self, deployed: Deployed, prefix: str) -> list[str]:
        """The run's keys under a prefix of layout.py's (e.g. `layout.artifacts_prefix`), sorted."""
        s3 = self.client("s3")
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=deployed.bucket, Prefix=prefix).get("Contents", []))

    def log_streams(self, deployed: Deployed) -> dict[str, list[str]]:
        logs = self.client("logs")
        streams = logs.describe_log_streams(logGroupName=deployed.log_group)["logStreams"]
        return {s["logStreamName"]: [e["message"] for e in logs.get_log_events(
            logGroupName=deployed.log_group, logStreamName=s["logStreamName"], startFromHead=True)["events"]]
            for s in streams}

    def calls(self, since: float = 0.0) -> list[dict]:
        return [c for c in read_calls(self.calls_file) if c["time"] >= since]

    def cli(self, deployed: Deployed | None, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`python -m training <command> --stack <shared stack> [--run-id <run>]` as the user runs it, against the
        emulated account (deployed=None: no --run-id, the command's default run)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPOTGRADE_"))}
        env.update(self.aws_env(), PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
        run = ["--run-id", self.run_id(deployed)] if deployed is not None else []
        return subprocess.run([sys.executable, "-m", "training", *args, "--stack", SHARED_STACK, *run],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
