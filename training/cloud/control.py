"""Run control: what the commands find out about a run and the changes they make to it.

Each function takes a boto3 Session, the shared stack's name and a run id, and returns what it found or did;
training/cloud/control_view.py turns that into the lines the commands print. Failures the user can fix are one-line
`CloudError`s. The bucket comes from the shared stack's outputs, a run's group and log group from its run stack's
(see stack_outputs.py), so every run in the bucket can be shown, followed and pulled, finished or not, even after
its stack is destroyed; stop and resume need its stack.

Without a run id, a command works on the newest run (`find_run`): the run of the most recently created run stack
of the shared stack, or, with none deployed, the run in the bucket whose first attempt started last (the top line
of `runs`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Optional

from boto3.s3.transfer import TransferConfig

from training.checksums import sha256_file
from training.cloud import aws, spot_prices
from training.cloud.core import billing, clock, layout, lifecycle, notify, status_store
from training.cloud.stack_outputs import (
    DEFAULT_STACK,
    RunStack,
    SharedStack,
    aws_errors,
    deployed_runs,
    find_run_stack,
    find_shared_stack,
)
from training.errors import CloudError, DataError

DEFAULT_TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024)


# ---------------------------------------------------------------- which run


def find_run(session: Any, stack: str = DEFAULT_STACK, run_id: str | None = None) -> RunStack:
    """Run `run_id` of shared stack `stack` (default: the newest run, see the module docstring)."""
    shared = find_shared_stack(session, stack)
    if run_id is None:
        return find_run_stack(session, shared, newest_run_id(session, shared))
    run = find_run_stack(session, shared, layout.validate_run_id(run_id))
    if run.run_stack is None and not session.client("s3").list_objects_v2(
            Bucket=shared.bucket, Prefix=run.layout.prefix, MaxKeys=1).get("KeyCount"):
        raise CloudError(f"no run {run_id!r}: no stack {stack}-{run_id} and nothing under "
                         f"{run.layout.uri(run.layout.prefix)}; `python -m training runs` lists the runs")
    return run


def newest_run_id(session: Any, shared: SharedStack) -> str:
    """The run of the most recently created run stack; with none deployed, the run in the bucket whose first
    attempt started last."""
    deployed = deployed_runs(session, shared.stack_name)
    if deployed:
        return deployed[0].run_id
    s3 = session.client("s3")
    started = {run_id: _first_start(status_store.read_status(s3, layout.RunLayout(shared.bucket, run_id)) or {})
               for run_id in layout.list_run_ids(s3, shared.bucket)}
    if not started:
        raise CloudError(f"no runs yet: no run stack of {shared.stack_name} is deployed and s3://{shared.bucket}/ "
                         "holds no run; deploy one with `make deploy RUN=<run-id>`")
    return max(started, key=lambda run_id: (started[run_id], run_id))


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusReport:
    """A run's status.json with what `status` works out from it (cost so far, times, latest log lines)."""

    run: RunStack
    status: dict
    billable_seconds: int
    estimated_cost: float
    unpriced_attempts: int
    interruptions: int
    log_tail: list[str]  # latest CloudWatch lines of the current attempt
    elapsed_seconds: Optional[float]  # since the first attempt started, up to the end of a finished run
    heartbeat_age_seconds: Optional[float]


def status_report(session: Any, stack: str = DEFAULT_STACK, *, run_id: str | None = None, log_lines: int = 5,
                  now: datetime | None = None) -> StatusReport:
    """The run's state, attempts, instance, elapsed time, progress, cost so far and latest log lines."""
    now = now or clock.utc_now()
    with aws_errors("status"):
        run = find_run(session, stack, run_id)
        record = _read_status(session, run)
        seconds, dollars, unpriced = billing.run_cost(record, now, _launch_prices(session, record))
        tail = _log_tail(session, run, record, log_lines)
    heartbeat = clock.parse_time(record.get("heartbeat_at"))
    return StatusReport(
        run=run, status=record, billable_seconds=seconds, estimated_cost=dollars, unpriced_attempts=unpriced,
        interruptions=sum(1 for a in record.get("attempts") or [] if a.get("end_state") == lifecycle.INTERRUPTED),
        log_tail=tail, elapsed_seconds=_elapsed_seconds(record, now),
        heartbeat_age_seconds=max(0.0, (now - heartbeat).total_seconds()) if heartbeat else None)


def _read_status(session: Any, run: RunStack) -> dict:
    status = status_store.read_status(session.client("s3"), run.layout)
    if status is None:
        if run.run_stack is None:
            raise CloudError(f"run {run.run_id!r} never started (no {run.layout.uri(run.layout.status_key)}) and its "
                             "stack is not deployed")
        raise CloudError(
            f"run {run.run_id!r} has not started yet (no {run.layout.uri(run.layout.status_key)}): the instance "
            "is probably still booting; try again in a few minutes"
        )
    return status


def _launch_prices(session: Any, status: dict) -> dict[int, float]:
    """Spot price at launch for attempts whose status recorded none (from EC2 spot price history)."""
    ec2, prices = None, {}
    for attempt in status.get("attempts") or []:
        if attempt.get("spot_price") is not None or attempt.get("lifecycle") != "spot":
            continue
        if not (attempt.get("instance_type") and attempt.get("availability_zone") and attempt.get("started_at")):
            continue
        ec2 = ec2 or session.client("ec2")
        price = spot_prices.spot_price_at(ec2, attempt["instance_type"], attempt["availability_zone"],
                                    clock.parse_time(attempt["started_at"]))
        if price is not None:
            prices[attempt["attempt"]] = price
    return prices


def _elapsed_seconds(record: dict, now: datetime) -> float | None:
    """Seconds since the first attempt started, up to the last attempt's end once the run is over."""
    attempts = record.get("attempts") or []
    first = clock.parse_time(attempts[0].get("started_at")) if attempts else None
    if first is None:
        return None
    last = attempts[-1].get("ended_at") if record.get("state") in lifecycle.TERMINAL_STATES else None
    return ((clock.parse_time(last) if last else now) - first).total_seconds()


def _log_tail(session: Any, run: RunStack, record: dict, lines: int) -> list[str]:
    if not run.log_group or not record.get("attempt") or lines <= 0:
        return []
    logs = session.client("logs")
    try:
        events = logs.get_log_events(logGroupName=run.log_group, logStreamName=run.layout.log_stream(record["attempt"]),
                                     startFromHead=False, limit=lines)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"].rstrip("\n") for e in events]


# ---------------------------------------------------------------- logs


@dataclass(frozen=True)
class LogLine:
    source: str  # the stream or log file: attempt-0001, boot-<instance-id>
    text: str


def log_entries(session: Any, stack: str = DEFAULT_STACK, *, run_id: str | None = None, follow: bool = False,
                poll_seconds: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> Iterator[LogLine]:
    """The run's CloudWatch log lines in attempt order; with follow, keep yielding new ones until the run ends.

    Falls back to the per-attempt logs in S3 where CloudWatch has none (its log group removed or expired).
    """
    with aws_errors("logs"):
        run = find_run(session, stack, run_id)
        client, s3 = session.client("logs"), session.client("s3")
        tokens: dict[str, str | None] = {}
        count = 0
        while True:
            record = status_store.read_status(s3, run.layout)
            finished = bool(record) and record.get("state") in lifecycle.TERMINAL_STATES
            for stream in _streams(client, run) if run.log_group else []:
                tokens[stream], drained = yield from _drain(client, run.log_group, stream, tokens.get(stream))
                count += drained
            if not tokens and not follow:
                count += yield from _s3_logs(s3, run)
                if not count:
                    raise CloudError(f"run {run.run_id!r} has no logs yet: the instance is probably still booting; "
                                     "try `logs --follow`")
            if not follow or finished or run.run_stack is None:  # without its stack, nothing writes more lines
                return
            sleep(poll_seconds)


def _streams(logs: Any, run: RunStack) -> list[str]:
    """The run's streams (<run_id>/boot-<instance>, <run_id>/attempt-0001, ...) in the order they were created."""
    streams: list[tuple[int, str]] = []
    paginator = logs.get_paginator("describe_log_streams")
    try:
        for page in paginator.paginate(logGroupName=run.log_group, logStreamNamePrefix=f"{run.run_id}/"):
            streams += [(s.get("creationTime", 0), s["logStreamName"]) for s in page["logStreams"]]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [name for _, name in sorted(streams)]


def _drain(logs: Any, group: str, stream: str,
           token: str | None) -> Generator[LogLine, None, tuple[str | None, int]]:
    """A stream's events after `token`; returns the next token and the number of lines."""
    count, source = 0, stream.rsplit("/", 1)[-1]
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        for event in page["events"]:
            yield LogLine(source, event["message"].rstrip())
            count += 1
        if page.get("nextForwardToken") in (None, token) or not page["events"]:
            return page.get("nextForwardToken") or token, count
        token = page["nextForwardToken"]


def _s3_logs(s3: Any, run: RunStack) -> Generator[LogLine, None, int]:
    """The attempts' log files in S3, line by line; returns the number of lines."""
    count = 0
    for key in (o["Key"] for o in aws.list_objects(s3, run.bucket, run.layout.logs_prefix)):
        source = key.rsplit("/", 1)[-1].removesuffix(".log")
        for line in s3.get_object(Bucket=run.bucket, Key=key)["Body"].read().decode(errors="replace").splitlines():
            yield LogLine(source, line)
            count += 1
    return count


# ---------------------------------------------------------------- pull


@dataclass(frozen=True)
class Pulled:
    run: RunStack
    target: Path  # <dest>/<run_id>
    files: dict[Path, int]  # downloaded file -> bytes, in key order
    metrics: Optional[dict]  # metrics.json, where the run wrote one


def pull(session: Any, stack: str = DEFAULT_STACK, *, run_id: str | None = None,
         dest: str | Path = "outputs") -> Pulled:
    """Download the run's artifacts to <dest>/<run_id>/, subdirectories (tensorboard/) included."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DataError(f"--dest {dest} is a file: give a directory (the run goes to {dest}/<run-id>/)")
    with aws_errors("pull"):
        run = find_run(session, stack, run_id)
        s3 = session.client("s3")
        keys = [o["Key"] for o in aws.list_objects(s3, run.bucket, run.layout.artifacts_prefix)]
        if not keys:
            record = status_store.read_status(s3, run.layout)
            state = record.get("state") if record else "not started"
            raise CloudError(f"run {run.run_id!r} has no artifacts yet (state {state}): they are uploaded when it "
                             f"SUCCEEDS; check `python -m training status --run-id {run.run_id}`")
        target = Path(dest) / run.run_id
        try:
            files = {path: path.stat().st_size
                     for path in aws.download_prefix(s3, run.bucket, run.layout.artifacts_prefix, target)}
        except OSError as error:  # a file where a directory goes, no permission, disk full
            raise DataError(f"cannot write the artifacts to {target}/: {error.strerror or error} "
                            f"({error.filename or target}); choose another --dest") from None
    metrics_path = target / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    return Pulled(run, target, files, metrics)


# ---------------------------------------------------------------- stop, resume


@dataclass(frozen=True)
class StateChange:
    run: RunStack
    status: dict  # status.json after the change
    already: Optional[str] = None  # the terminal state the run was already in (nothing changed)


def stop(session: Any, stack: str = DEFAULT_STACK, *, run_id: str | None = None,
         now: datetime | None = None) -> StateChange:
    """Set the run to STOPPED and its Auto Scaling group to 0; checkpoints stay for a later resume."""
    now = now or clock.utc_now()
    with aws_errors("stop"):
        run = _run_with_group(session, stack, run_id, "stop")
        session.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=run.asg_name, DesiredCapacity=0, HonorCooldown=False)
        reason = f"stopped by the user (`python -m training stop`) at {clock.iso(now)}"
        before, record = status_store.StatusStore(session.client("s3"), run.layout).change(
            lambda s: lifecycle.stop(s, run_id=run.run_id, state=lifecycle.STOPPED, reason=reason, now=now))
        if lifecycle.is_terminal(before):
            return StateChange(run, record, already=before["state"])
        notify.publish(session.client("sns"), run.topic_arn, run.run_id, lifecycle.STOPPED, record, reason)
    return StateChange(run, record)


def resume(session: Any, stack: str = DEFAULT_STACK, *, run_id: str | None = None,
           now: datetime | None = None) -> StateChange:
    """Restart a STOPPED, HUNG or FAILED run from its checkpoints: state PENDING, group capacity 1.

    The next instance starts attempt N+1 and resumes from the last checkpoint, with the code and settings of
    the deployed stack. A run waiting for an instance (INTERRUPTED, RETRYING, PENDING) just gets capacity 1.
    The run's wall-clock cap (maxRuntimeHours) still counts from its first attempt, so a run stopped for
    running out of time would be stopped again.
    """
    now = now or clock.utc_now()
    with aws_errors("resume"):
        run = _run_with_group(session, stack, run_id, "resume")
        record = _read_status(session, run)
        state = record.get("state")
        if state in lifecycle.RESUMABLE_STATES:
            reason = f"resumed by the user (`python -m training resume`) at {clock.iso(now)}"
            _, record = status_store.StatusStore(session.client("s3"), run.layout).change(
                lambda s: lifecycle.reopen(s, reason=reason, now=now))
        elif state not in (lifecycle.PENDING, lifecycle.INTERRUPTED, lifecycle.RETRYING):
            raise CloudError(f"run {run.run_id!r} is {state}: only a {', '.join(sorted(lifecycle.RESUMABLE_STATES))} "
                             "run, or one waiting for an instance, resumes (deploy a new run id to train again)")
        session.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=run.asg_name, DesiredCapacity=1, HonorCooldown=False)
    return StateChange(run, record)


def _run_with_group(session: Any, stack: str, run_id: str | None, action: str) -> RunStack:
    """The run, which must have its stack (its Auto Scaling group) for `action`."""
    run = find_run(session, stack, run_id)
    if run.run_stack is None:
        raise CloudError(f"cannot {action} run {run.run_id!r}: its stack {stack}-{run.run_id} is not deployed (nothing "
                         f"of it runs; its files stay in {run.layout.uri(run.layout.prefix)}): redeploy it with "
                         f"`make deploy RUN={run.run_id}` first")
    if not run.asg_name:
        raise CloudError(f"stack {run.run_stack!r} has no AutoScalingGroupName output: redeploy it with "
                         f"`make deploy RUN={run.run_id}`")
    return run


# ---------------------------------------------------------------- upload-data


@dataclass(frozen=True)
class Uploaded:
    path: Path
    uri: str
    size: int
    sha256: str
    up_to_date: bool  # the bucket already held these bytes: nothing was sent


def upload_data(session: Any, path: str | Path, stack: str = DEFAULT_STACK, *, key: str | None = None,
                transfer: TransferConfig = DEFAULT_TRANSFER) -> Uploaded:
    """Upload a local data file to s3://<bucket>/data/<name> (multipart, sha256 in the metadata)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "no such file"
        raise DataError(f"{path}: {what}; give the path of a Lending Club CSV (.csv, .csv.gz or .zip)")
    with aws_errors("upload-data"):
        run = find_shared_stack(session, stack)
        s3 = session.client("s3")
        key = key or layout.data_key(path.name)
        digest = sha256_file(path)
        try:
            existing = s3.head_object(Bucket=run.bucket, Key=key)
        except s3.exceptions.ClientError:
            existing = None
        up_to_date = bool(existing) and existing.get("Metadata", {}).get(aws.SHA256_METADATA_KEY) == digest
        if not up_to_date:
            s3.upload_file(str(path), run.bucket, key, Config=transfer,
                           ExtraArgs={"Metadata": {aws.SHA256_METADATA_KEY: digest},
                                      "ContentType": "application/octet-stream"})
    return Uploaded(path, f"s3://{run.bucket}/{key}", path.stat().st_size, digest, up_to_date)


# ---------------------------------------------------------------- runs


def runs(session: Any, stack: str = DEFAULT_STACK, *, now: datetime | None = None) -> list[dict]:
    """Every run in the bucket, and every deployed run stack of the shared stack, newest first: state, dates,
    instance types, cost, test weighted F1 and whether its stack is deployed."""
    now = now or clock.utc_now()
    with aws_errors("runs"):
        shared = find_shared_stack(session, stack)
        s3 = session.client("s3")
        deployed = {r.run_id: r for r in deployed_runs(session, shared.stack_name)}
        run_ids = sorted(set(layout.list_run_ids(s3, shared.bucket)) | set(deployed))
        rows = [_run_row(s3, layout.RunLayout(shared.bucket, run_id), now) for run_id in run_ids]
    for row in rows:
        stack_run = deployed.get(row["run_id"])
        row["stack"] = stack_run.stack_name if stack_run else None
        deployed_at = clock.iso(stack_run.created) if stack_run and stack_run.created else ""
        row["newest"] = row["started"] or deployed_at
    rows.sort(key=lambda r: (r["newest"], r["run_id"]), reverse=True)
    return rows


def _run_row(s3: Any, here: layout.RunLayout, now: datetime) -> dict:
    record = status_store.read_status(s3, here) or {"state": "-"}
    _, dollars, _ = billing.run_cost(record, now)
    try:
        metrics = json.loads(s3.get_object(Bucket=here.bucket, Key=here.artifact_key("metrics.json"))["Body"].read())
        f1 = metrics.get("test", {}).get("weighted_f1")
    except s3.exceptions.NoSuchKey:
        f1 = None
    attempts = record.get("attempts") or []
    return {
        "run_id": here.run_id, "state": record.get("state"), "started": _first_start(record),
        "ended": (attempts[-1].get("ended_at") if attempts else None) or "",
        "instance_types": sorted({a["instance_type"] for a in attempts if a.get("instance_type")}),
        "attempts": len(attempts), "cost": dollars, "weighted_f1": f1,
    }


def _first_start(record: dict) -> str:
    attempts = record.get("attempts") or []
    return (attempts[0].get("started_at") if attempts else None) or record.get("updated_at") or ""
