"""The user data's boot kit: records in status.json what the runner could not, through lifecycle.py.

    python3 -m training.cloud.core.boot_report --bucket B --run-id R --asg-name G --topic-arn T \\
        --max-attempts N boot-failed --step STEP --exit-status N --log BOOT_LOG --boot-started EPOCH
    python3 -m training.cloud.core.boot_report ... runner-exited --exit-status N --log BOOT_LOG --boot-started EPOCH

`boot-failed`: a boot step (clone, Python, pip install) failed: the run is FAILED with the step and the log's
last lines. `runner-exited`: the runner ended with a status that is not a RunnerExit (killed, crashed before
recording) or could not read its settings: the attempt is CRASHED (RETRYING, or FAILED after maxAttempts in a
row) or the run FAILED. Either way the full bootstrap log goes to the run's boot log key (layout.py), a
notification is published, and a run that ended gets its group's capacity set to 0. Prints the run's state.

It runs with the instance's system Python (3.9 on Amazon Linux 2023) from the unpacked code asset, before or
without the project's environment, with the `aws` CLI as its AWS client.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from training.cloud.core import layout, lifecycle, notify
from training.cloud.core.clock import utc_now
from training.cloud.core.imds import Imds, MetadataError, metadata_url
from training.cloud.core.status_store import StatusStore

_ERROR_CODE = re.compile(r"An error occurred \(([A-Za-z0-9]+)\)")


class CliError(Exception):
    """A failed `aws` call, with botocore's error shape (response["Error"]["Code"])."""

    def __init__(self, command: List[str], stderr: str) -> None:
        match = _ERROR_CODE.search(stderr)
        self.response = {"Error": {"Code": match.group(1) if match else "", "Message": stderr.strip()}}
        super().__init__(f"aws {' '.join(command[:2])}: {stderr.strip().splitlines()[-1] if stderr.strip() else '?'}")


def aws(*args: str) -> str:
    """Run the `aws` CLI; its stdout, or CliError."""
    done = subprocess.run(["aws", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise CliError(list(args), done.stderr)
    return done.stdout


class CliS3:
    """The two S3 calls StatusStore makes, through the `aws` CLI (conditional puts included)."""

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 (boto3's names)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "body"
            meta = json.loads(aws("s3api", "get-object", "--bucket", Bucket, "--key", Key, str(path)))
            return {"Body": io.BytesIO(path.read_bytes()), "ETag": meta.get("ETag")}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str = "",  # noqa: N803
                   CacheControl: str = "", IfMatch: str = "", IfNoneMatch: str = "") -> dict:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "body"
            path.write_bytes(Body)
            args = ["s3api", "put-object", "--bucket", Bucket, "--key", Key, "--body", str(path)]
            for flag, value in (("--content-type", ContentType), ("--cache-control", CacheControl),
                                ("--if-match", IfMatch), ("--if-none-match", IfNoneMatch)):
                if value:
                    args += [flag, value]
            return json.loads(aws(*args) or "{}")


def cause(tail: List[str]) -> str:
    """The last line that is not spotgrade's own narration: usually git's or pip's error."""
    for line in reversed(tail):
        if line.strip() and not line.startswith("spotgrade:"):
            return line.strip()[:300]
    return "see the bootstrap log"


def exit_meaning(status: int) -> str:
    if status > 128:
        return f"the runner was killed by signal {status - 128}"
    return f"the runner exited with status {status} without recording the attempt"


def instance_info() -> dict:
    try:
        info = Imds(metadata_url()).instance_info()
    except MetadataError:
        return {}
    return {"instance_id": info.instance_id, "instance_type": info.instance_type,
            "availability_zone": info.availability_zone, "lifecycle": info.lifecycle}


def report(args: argparse.Namespace) -> str:
    run = layout.RunLayout(args.bucket, args.run_id)
    instance = instance_info()
    tail = lifecycle.log_tail(args.log)
    now = utc_now()
    started = datetime.fromtimestamp(args.boot_started, timezone.utc) if args.boot_started else None
    common = dict(run_id=args.run_id, instance=instance, log_tail=tail, boot_started=started,
                  max_attempts=args.max_attempts, now=now)
    if args.command == "boot-failed":
        change = lambda s: lifecycle.boot_failed(  # noqa: E731
            s, step=args.step, detail=f"exit status {args.exit_status}: {cause(tail)}", **common)
    elif args.exit_status == lifecycle.RunnerExit.CONFIG:
        change = lambda s: lifecycle.boot_failed(  # noqa: E731
            s, step="runner settings", detail=cause(tail), **common)
    else:
        change = lambda s: lifecycle.attempt_crashed(  # noqa: E731
            s, detail=exit_meaning(args.exit_status), **common)
    try:
        aws("s3", "cp", "--quiet", str(args.log), run.uri(run.boot_log_key(instance.get("instance_id") or "unknown")))
    except CliError as error:
        print(f"spotgrade: could not upload the bootstrap log: {error}", file=sys.stderr)
    before, after = StatusStore(CliS3(), run).change(change)
    state = (after or {}).get("state") or "unknown"
    if after != before and args.topic_arn:
        subject, body = notify.format_message(args.run_id, state, after, after.get("error") or after.get("reason"))
        try:
            aws("sns", "publish", "--topic-arn", args.topic_arn, "--subject", subject, "--message", body)
        except CliError as error:
            print(f"spotgrade: notification failed: {error}", file=sys.stderr)
    if state in lifecycle.TERMINAL_STATES and args.asg_name:
        aws("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", args.asg_name,
            "--desired-capacity", "0")
    return state


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m training.cloud.core.boot_report",
                                     description=__doc__.split("\n\n")[0])
    for flag in ("--bucket", "--run-id"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--asg-name", default="")
    parser.add_argument("--topic-arn", default="")
    parser.add_argument("--max-attempts", type=int, default=lifecycle.DEFAULT_MAX_ATTEMPTS)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("boot-failed", "runner-exited"):
        command = commands.add_parser(name)
        if name == "boot-failed":
            command.add_argument("--step", required=True)
        command.add_argument("--exit-status", type=int, required=True)
        command.add_argument("--log", type=Path, required=True)
        command.add_argument("--boot-started", type=float, default=None)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(report(args))
    except Exception as error:  # the caller falls back to scaling the group to 0
        print(f"spotgrade: could not record the boot outcome: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
