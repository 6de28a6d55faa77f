"""The lines the run-control commands print, from what training/cloud/control.py found or did."""
from __future__ import annotations

from typing import TYPE_CHECKING

from training.cloud.core import lifecycle
from training.cloud.core.headline import metrics_line

if TYPE_CHECKING:
    from training.cloud.control import LogLine, Pulled, StateChange, StatusReport, Uploaded

FAILURE_TAIL_STATES = (lifecycle.FAILED, lifecycle.RETRYING)  # states whose recorded log tail `status` shows
FAILURE_TAIL_LINES = 10  # the last lines of that tail `status` shows


def duration(seconds: float) -> str:
    """`1h 05m` from an hour on, else `4m 07s`."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def money(dollars: float) -> str:
    """Cents, or six decimals below a cent (a short attempt's cost)."""
    return f"${dollars:,.2f}" if dollars >= 0.01 or dollars == 0 else f"${dollars:.6f}"


# ---------------------------------------------------------------- status


def status_lines(report: StatusReport) -> list[str]:
    run, record = report.run, report.status
    attempts = record.get("attempts") or []
    where = f"stack {run.run_stack}" if run.run_stack else f"its stack {run.stack_name}-{run.run_id} is not deployed"
    lines = [f"run {run.run_id}  ({where}, {run.layout.uri(run.layout.prefix)})",
             f"state:      {record.get('state')}  (attempt {record.get('attempt')}, {report.interruptions} interruption"
             f"{'' if report.interruptions == 1 else 's'})"]
    if attempts:
        current = attempts[-1]
        lines.append(f"instance:   {current.get('instance_type')} {current.get('lifecycle')} in "
                     f"{current.get('availability_zone')} ({current.get('instance_id')})")
        if report.elapsed_seconds is not None:
            lines.append(f"elapsed:    {duration(report.elapsed_seconds)} since the first attempt started")
    if record.get("code"):
        lines.append(f"code:       {code_line(record['code'])}")
    lines.append(f"epochs:     {record.get('last_epoch')} of {record.get('epochs') or '?'} completed")
    lines.append(f"validation: {metrics_line(record.get('validation'))}")
    if report.heartbeat_age_seconds is not None:
        lines.append(f"heartbeat:  {record['heartbeat_at']} ({duration(report.heartbeat_age_seconds)} ago)")
    unpriced = report.unpriced_attempts
    cost = money(report.estimated_cost) + (f" (+{unpriced} attempt(s) without a known price)" if unpriced else "")
    lines.append(f"cost:       {cost} so far, {report.billable_seconds} billable seconds")
    return lines + _failure_lines(report)


def status_json(report: StatusReport) -> dict:
    """`status --json`: the run, status.json as stored (ISO times), and what `status` works out from it."""
    run = report.run
    return {"run_id": run.run_id, "stack": run.stack_name, "run_stack": run.run_stack, "region": run.region,
            "uri": run.layout.uri(run.layout.prefix), "status": report.status,
            "elapsed_seconds": report.elapsed_seconds, "heartbeat_age_seconds": report.heartbeat_age_seconds,
            "billable_seconds": report.billable_seconds, "estimated_cost": report.estimated_cost,
            "unpriced_attempts": report.unpriced_attempts, "interruptions": report.interruptions,
            "log_tail": report.log_tail}


def code_line(code: dict) -> str:
    """`main @ 0123456789ab` (the deployed commit), with the pre-flight override where it was used."""
    commit = code.get("git_commit")
    line = f"{code.get('git_ref')} @ {commit[:12] if commit else 'unresolved at synth'}"
    return line + (" (deployed with allowUnpushedCode=true)" if code.get("allow_unpushed_code") else "")


def _failure_lines(report: StatusReport) -> list[str]:
    """Where it failed, the error and reason, and the log lines that tell why (or the latest ones)."""
    record, lines = report.status, []
    if record.get("failed_step"):
        lines.append(f"failed at:  {record['failed_step']}")
    for key in ("error", "reason"):
        if record.get(key) and (key == "error" or record[key] != record.get("error")):
            lines.append(f"{key + ':':<11} {record[key]}")
    failure_tail = record.get("log_tail") if record.get("state") in FAILURE_TAIL_STATES else None
    if failure_tail:
        lines.append("last lines of its log:")
        lines += [f"  {line}" for line in failure_tail[-FAILURE_TAIL_LINES:]]
    elif report.log_tail:  # the same lines, from CloudWatch, where the failure recorded none
        lines.append("latest log lines:")
        lines += [f"  {line}" for line in report.log_tail]
    return lines


# ---------------------------------------------------------------- logs, pull


def log_line(entry: LogLine) -> str:
    return f"[{entry.source}] {entry.text}"


def pull_lines(pulled: Pulled) -> list[str]:
    lines = [f"downloaded {len(pulled.files)} files to {pulled.target}/"]
    lines += [f"  {path.relative_to(pulled.target)}  ({size:,} bytes)" for path, size in pulled.files.items()]
    if pulled.metrics is not None:
        lines.append(f"test:       {metrics_line(pulled.metrics.get('test'))}")
        lines.append(f"validation: {metrics_line(pulled.metrics.get('validation'))}")
    return lines


# ---------------------------------------------------------------- stop, resume, upload-data


def stop_lines(change: StateChange) -> list[str]:
    run = change.run
    if change.already:
        return [f"run {run.run_id} was already {change.already}; group {run.asg_name} set to 0"]
    return [f"run {run.run_id}: STOPPED; group {run.asg_name} desired capacity 0 (the instance terminates shortly)",
            f"checkpoints kept under {run.layout.uri(run.layout.checkpoints_prefix)}"]


def resume_lines(change: StateChange) -> list[str]:
    run = change.run
    return [f"run {run.run_id}: resuming from epoch {change.status.get('last_epoch')}; group {run.asg_name} "
            "desired capacity 1"]


def upload_lines(uploaded: Uploaded) -> list[str]:
    digest = uploaded.sha256[:12]
    first = (f"{uploaded.uri} is already up to date (sha256 {digest}...)" if uploaded.up_to_date else
             f"uploaded {uploaded.path} ({uploaded.size:,} bytes, sha256 {digest}...) to {uploaded.uri}")
    return [first, f"deploy with:  make deploy RUN=<run-id> ARGS='-c dataUri={uploaded.uri}'"]


# ---------------------------------------------------------------- runs


def runs_lines(rows: list[dict]) -> list[str]:
    """One line per run; STACK says whether its run stack is deployed (`up`) or not (`-`: stop/resume need it)."""
    lines = [f"{'RUN':<20} {'STATE':<11} {'STACK':<5} {'STARTED':<20} {'ENDED':<20} {'INSTANCES':<22} {'COST':>9} "
             f"{'F1(w)':>6}"]
    for r in rows:
        f1 = f"{r['weighted_f1']:.3f}" if isinstance(r["weighted_f1"], (int, float)) else "-"
        lines.append(f"{r['run_id']:<20} {r['state']:<11} {'up' if r.get('stack') else '-':<5} "
                     f"{r['started'] or '-':<20} {r['ended'] or '-':<20} "
                     f"{','.join(r['instance_types']) or '-':<22} {money(r['cost']):>9} {f1:>6}")
    return lines


def runs_json(stack: str, rows: list[dict]) -> dict:
    """`runs --json`: the runs newest first; times ISO 8601, cost in dollars, `stack` the run's deployed stack;
    None where unknown (no status.json yet, not deployed, no metrics)."""
    keys = ("run_id", "state", "stack", "started", "ended", "instance_types", "attempts", "cost", "weighted_f1")
    return {"stack": stack, "runs": [{**{key: row.get(key) for key in keys}, "state": _known(row.get("state")),
                                      "started": _known(row.get("started")), "ended": _known(row.get("ended"))}
                                     for row in rows]}


def _known(value: str | None) -> str | None:
    """None for what the table shows as '-' or leaves empty."""
    return None if value in ("", "-") else value
