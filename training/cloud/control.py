"""Run control: status, logs, pull, stop, upload-data and runs for a deployed run.

Each command is a plain function taking a boto3 Session and its arguments; it prints with `out`
and returns what it found (for tests and scripting). Failures the user can fix are one-line
`CloudError`s. The run is found from the stack's outputs (see stack_outputs.py).
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from boto3.s3.transfer import TransferConfig

from training.cloud import costs
from training.cloud.core import layout, lifecycle, notify
from training.cloud.stack_outputs import DEFAULT_STACK, RunStack, aws_errors, find_run_stack
from training.errors import CloudError, DataError

Out = Callable[[str], None]
DATA_PREFIX = "data/"
DEFAULT_TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def _read_status(session: Any, run: RunStack) -> dict:
    status = lifecycle.read_status(session.client("s3"), run.layout)
    if status is None:
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
        price = costs.spot_price_at(ec2, attempt["instance_type"], attempt["availability_zone"],
                                    layout.parse_time(attempt["started_at"]))
        if price is not None:
            prices[attempt["attempt"]] = price
    return prices


def _money(dollars: float) -> str:
    return f"${dollars:,.2f}" if dollars >= 0.01 or dollars == 0 else f"${dollars:.6f}"


def _metrics_line(metrics: dict | None) -> str:
    if not metrics:
        return "-"
    parts = [f"{k} {metrics[k]:.3f}" for k in ("accuracy", "weighted_f1", "macro_f1", "val_accuracy", "val_loss")
             if isinstance(metrics.get(k), (int, float))]
    return "  ".join(parts) or "-"


# ---------------------------------------------------------------- status


def status(session: Any, stack: str = DEFAULT_STACK, *, out: Out = print, log_lines: int = 5,
           now: datetime | None = None) -> dict:
    """Print the run's state, attempts, instance, elapsed time, progress, cost so far and latest log lines."""
    now = now or _now()
    with aws_errors("status"):
        run = find_run_stack(session, stack)
        record = _read_status(session, run)
        seconds, dollars, unpriced = lifecycle.run_cost(record, now, _launch_prices(session, record))
        tail = _log_tail(session, run, record, log_lines)
    attempts = record.get("attempts") or []
    interruptions = sum(1 for a in attempts if a.get("end_state") == "INTERRUPTED")
    out(f"run {run.run_id}  (stack {run.stack_name}, {run.layout.uri(run.layout.prefix)})")
    out(f"state:      {record.get('state')}  (attempt {record.get('attempt')}, {interruptions} interruption"
        f"{'' if interruptions == 1 else 's'})")
    if attempts:
        current = attempts[-1]
        out(f"instance:   {current.get('instance_type')} {current.get('lifecycle')} in "
            f"{current.get('availability_zone')} ({current.get('instance_id')})")
        first = layout.parse_time(attempts[0]["started_at"]) if attempts[0].get("started_at") else None
        last = attempts[-1].get("ended_at") if record.get("state") in lifecycle.TERMINAL_STATES else None
        end = layout.parse_time(last) if last else now
        if first:
            out(f"elapsed:    {_duration((end - first).total_seconds())} since the first attempt started")
    out(f"epochs:     {record.get('last_epoch')} of {record.get('epochs') or '?'} completed")
    out(f"validation: {_metrics_line(record.get('validation'))}")
    if record.get("heartbeat_at"):
        age = (now - layout.parse_time(record["heartbeat_at"])).total_seconds()
        out(f"heartbeat:  {record['heartbeat_at']} ({_duration(max(0, age))} ago)")
    cost = _money(dollars) + (f" (+{unpriced} attempt(s) without a known price)" if unpriced else "")
    out(f"cost:       {cost} so far, {seconds} billable seconds")
    if record.get("failed_step"):
        out(f"failed at:  {record['failed_step']}")
    for key in ("error", "reason"):
        if record.get(key) and (key == "error" or record[key] != record.get("error")):
            out(f"{key + ':':<11} {record[key]}")
    failure_tail = record.get("log_tail") if record.get("state") in (lifecycle.FAILED, lifecycle.RETRYING) else None
    if failure_tail:
        out("last lines of its log:")
        for line in failure_tail[-10:]:
            out(f"  {line}")
    elif tail:  # the same lines, from CloudWatch, where the failure recorded none
        out("latest log lines:")
        for line in tail:
            out(f"  {line}")
    return {"run": run, "status": record, "billable_seconds": seconds, "estimated_cost": dollars,
            "unpriced_attempts": unpriced, "interruptions": interruptions, "log_tail": tail}


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


def _drain(logs: Any, group: str, stream: str, token: str | None, out: Out) -> tuple[str | None, int]:
    """Print a stream's events after `token`; returns the next token and the number of lines printed."""
    printed = 0
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        for event in page["events"]:
            out(f"[{stream.rsplit('/', 1)[-1]}] {event['message'].rstrip()}")
            printed += 1
        if page.get("nextForwardToken") in (None, token) or not page["events"]:
            return page.get("nextForwardToken") or token, printed
        token = page["nextForwardToken"]


def logs(session: Any, stack: str = DEFAULT_STACK, *, follow: bool = False, poll_seconds: float = 5.0,
         out: Out = print, sleep: Callable[[float], None] = time.sleep) -> int:
    """Print the run's CloudWatch log streams in attempt order; with follow, keep printing until the run ends.

    Falls back to the per-attempt logs in S3 where CloudWatch has none. Returns the number of lines printed.
    """
    with aws_errors("logs"):
        run = find_run_stack(session, stack)
        client = session.client("logs")
        tokens: dict[str, str | None] = {}
        printed = 0
        while True:
            record = lifecycle.read_status(session.client("s3"), run.layout)
            finished = bool(record) and record.get("state") in lifecycle.TERMINAL_STATES
            for stream in _streams(client, run) if run.log_group else []:
                tokens[stream], count = _drain(client, run.log_group, stream, tokens.get(stream), out)
                printed += count
            if not tokens and not follow:
                printed += _s3_logs(session, run, out)
                if not printed:
                    raise CloudError(f"run {run.run_id!r} has no logs yet: the instance is probably still booting; "
                                     "try `logs --follow`")
            if not follow or finished:
                return printed
            sleep(poll_seconds)


def _s3_logs(session: Any, run: RunStack, out: Out) -> int:
    s3, printed = session.client("s3"), 0
    for key in _keys(s3, run.bucket, run.layout.logs_prefix):
        name = key.rsplit("/", 1)[-1].removesuffix(".log")
        for line in s3.get_object(Bucket=run.bucket, Key=key)["Body"].read().decode(errors="replace").splitlines():
            out(f"[{name}] {line}")
            printed += 1
    return printed


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


# ---------------------------------------------------------------- pull


def pull(session: Any, stack: str = DEFAULT_STACK, *, dest: str | Path = "outputs", out: Out = print) -> list[Path]:
    """Download the run's artifacts to <dest>/<run_id>/ and print the headline metrics; returns the files."""
    with aws_errors("pull"):
        run = find_run_stack(session, stack)
        s3 = session.client("s3")
        keys = _keys(s3, run.bucket, run.layout.artifacts_prefix)
        if not keys:
            record = lifecycle.read_status(s3, run.layout)
            state = record.get("state") if record else "not started"
            raise CloudError(f"run {run.run_id!r} has no artifacts yet (state {state}): they are uploaded when it "
                             "SUCCEEDS; check `python -m training status`")
        target = Path(dest) / run.run_id
        files = []
        for key in keys:
            path = target / key[len(run.layout.artifacts_prefix):]
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(run.bucket, key, str(path))
            files.append(path)
    out(f"downloaded {len(files)} files to {target}/")
    for path in files:
        out(f"  {path.relative_to(target)}  ({path.stat().st_size:,} bytes)")
    metrics_path = target / "metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        out(f"test:       {_metrics_line(metrics.get('test'))}")
        out(f"validation: {_metrics_line(metrics.get('validation'))}")
    return files


# ---------------------------------------------------------------- stop


def stop(session: Any, stack: str = DEFAULT_STACK, *, out: Out = print, now: datetime | None = None) -> dict:
    """Set the run to STOPPED and its Auto Scaling group to 0; checkpoints stay for a later resume."""
    now = now or _now()
    with aws_errors("stop"):
        run = find_run_stack(session, stack)
        if not run.asg_name:
            raise CloudError(f"stack {run.stack_name!r} has no AutoScalingGroupName output: redeploy with `make deploy`")
        session.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=run.asg_name, DesiredCapacity=0, HonorCooldown=False)
        reason = f"stopped by the user (`python -m training stop`) at {lifecycle.iso(now)}"
        before, record = lifecycle.StatusStore(session.client("s3"), run.layout).change(
            lambda s: lifecycle.stop(s, run_id=run.run_id, state=lifecycle.STOPPED, reason=reason, now=now))
        if lifecycle.is_terminal(before):
            out(f"run {run.run_id} was already {before['state']}; group {run.asg_name} set to 0")
            return record
        notify.publish(session.client("sns"), run.topic_arn, run.run_id, lifecycle.STOPPED, record, reason)
    out(f"run {run.run_id}: STOPPED; group {run.asg_name} desired capacity 0 (the instance terminates shortly)")
    out(f"checkpoints kept under {run.layout.uri(run.layout.checkpoints_prefix)}")
    return record


def resume(session: Any, stack: str = DEFAULT_STACK, *, out: Out = print, now: datetime | None = None) -> dict:
    """Restart a STOPPED, HUNG or FAILED run from its checkpoints: state PENDING, group capacity 1.

    The next instance starts attempt N+1 and resumes from the last checkpoint, with the code and settings of
    the deployed stack. A run waiting for an instance (INTERRUPTED, RETRYING, PENDING) just gets capacity 1.
    The run's wall-clock cap (maxRuntimeHours) still counts from its first attempt, so a run stopped for
    running out of time would be stopped again.
    """
    now = now or _now()
    with aws_errors("resume"):
        run = find_run_stack(session, stack)
        if not run.asg_name:
            raise CloudError(f"stack {run.stack_name!r} has no AutoScalingGroupName output: redeploy with `make deploy`")
        record = _read_status(session, run)
        state = record.get("state")
        if state in lifecycle.RESUMABLE_STATES:
            reason = f"resumed by the user (`python -m training resume`) at {lifecycle.iso(now)}"
            _, record = lifecycle.StatusStore(session.client("s3"), run.layout).change(
                lambda s: lifecycle.reopen(s, reason=reason, now=now))
        elif state not in (lifecycle.PENDING, lifecycle.INTERRUPTED, lifecycle.RETRYING):
            raise CloudError(f"run {run.run_id!r} is {state}: only a {', '.join(sorted(lifecycle.RESUMABLE_STATES))} "
                             "run, or one waiting for an instance, resumes (deploy a new runId to train again)")
        session.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=run.asg_name, DesiredCapacity=1, HonorCooldown=False)
    out(f"run {run.run_id}: resuming from epoch {record.get('last_epoch')}; group {run.asg_name} desired capacity 1")
    return record


# ---------------------------------------------------------------- upload-data


def sha256_file(path: Path, chunk: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def upload_data(session: Any, path: str | Path, stack: str = DEFAULT_STACK, *, key: str | None = None,
                transfer: TransferConfig = DEFAULT_TRANSFER, out: Out = print) -> str:
    """Upload a local data file to s3://<bucket>/data/<name> (multipart, sha256 in the metadata); returns the URI."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; give the path of a Lending Club CSV (.csv, .csv.gz or .zip)")
    with aws_errors("upload-data"):
        run = find_run_stack(session, stack)
        s3 = session.client("s3")
        key = key or DATA_PREFIX + path.name
        digest = sha256_file(path)
        uri = f"s3://{run.bucket}/{key}"
        try:
            existing = s3.head_object(Bucket=run.bucket, Key=key)
        except s3.exceptions.ClientError:
            existing = None
        if existing and existing.get("Metadata", {}).get("sha256") == digest:
            out(f"{uri} is already up to date (sha256 {digest[:12]}...)")
        else:
            s3.upload_file(str(path), run.bucket, key, Config=transfer,
                           ExtraArgs={"Metadata": {"sha256": digest}, "ContentType": "application/octet-stream"})
            out(f"uploaded {path} ({path.stat().st_size:,} bytes, sha256 {digest[:12]}...) to {uri}")
    out(f"deploy with:  make deploy ARGS='-c dataUri={uri}'")
    return uri


# ---------------------------------------------------------------- runs


def _first_start(record: dict) -> str:
    attempts = record.get("attempts") or []
    return (attempts[0].get("started_at") if attempts else None) or record.get("updated_at") or ""


def runs(session: Any, stack: str = DEFAULT_STACK, *, out: Out = print, now: datetime | None = None) -> list[dict]:
    """Every run in the bucket, newest first: state, dates, instance types, cost and test weighted F1."""
    now = now or _now()
    rows = []
    with aws_errors("runs"):
        run = find_run_stack(session, stack)
        s3 = session.client("s3")
        for run_id in layout.list_run_ids(s3, run.bucket):
            here = layout.RunLayout(run.bucket, run_id)
            record = lifecycle.read_status(s3, here) or {"state": "-"}
            _, dollars, _ = lifecycle.run_cost(record, now)
            try:
                metrics = json.loads(s3.get_object(Bucket=run.bucket, Key=here.artifact_key("metrics.json"))["Body"].read())
                f1 = metrics.get("test", {}).get("weighted_f1")
            except s3.exceptions.NoSuchKey:
                f1 = None
            attempts = record.get("attempts") or []
            rows.append({
                "run_id": run_id, "state": record.get("state"), "started": _first_start(record),
                "ended": (attempts[-1].get("ended_at") if attempts else None) or "",
                "instance_types": sorted({a["instance_type"] for a in attempts if a.get("instance_type")}),
                "attempts": len(attempts), "cost": dollars, "weighted_f1": f1,
            })
    rows.sort(key=lambda r: r["started"], reverse=True)
    out(f"{'RUN':<20} {'STATE':<11} {'STARTED':<20} {'ENDED':<20} {'INSTANCES':<22} {'COST':>9} {'F1(w)':>6}")
    for r in rows:
        f1 = f"{r['weighted_f1']:.3f}" if isinstance(r["weighted_f1"], (int, float)) else "-"
        out(f"{r['run_id']:<20} {r['state']:<11} {r['started'] or '-':<20} {r['ended'] or '-':<20} "
            f"{','.join(r['instance_types']) or '-':<22} {_money(r['cost']):>9} {f1:>6}")
    return rows
