"""The run's life cycle: the one owner of status.json (states, transitions, attempts, billing, writes).

States of a run, and who moves them (see docs/aws.md, "Life cycle"):

    (none) ---------------------------------> STARTING      runner: an attempt starts on an instance
    PENDING | INTERRUPTED | RETRYING -------> STARTING      runner: the next attempt starts
    STARTING ------------------------------> RUNNING       runner: training begins
    STARTING | RUNNING --------------------> INTERRUPTED   runner: spot notice or SIGTERM (the group replaces
                                                           the instance; the next attempt resumes)
    STARTING | RUNNING --------------------> RETRYING      runner or user data: the attempt crashed; the group
                                                           replaces the instance (RETRYING is FAILED once
                                                           max_attempts attempts in a row have failed)
                                                           (runner: the open attempt it finds was LOST)
    STARTING | RUNNING --------------------> SUCCEEDED     runner
    any live state ------------------------> FAILED        runner (a user error), user data (a boot step failed)
    any live state ------------------------> STOPPED       runner (maxRuntimeHours), `stop`, watchdog (time cap)
    any live state ------------------------> HUNG          watchdog: no training progress for heartbeatMinutes
    STOPPED | HUNG | FAILED ---------------> PENDING       `resume` (the one way out of a terminal state)

SUCCEEDED, FAILED, STOPPED and HUNG are terminal: nothing but `resume` moves a run out of them, and a writer
that finds one keeps it (it may still close its own attempt). Every write is a conditional put (If-Match on the
ETag it read, If-None-Match for a new record) retried on conflict, so the runner, the user data, the watchdog
and `stop`/`resume` never lose each other's updates.

Each attempt records its instance, times, end state, billable seconds and estimated cost; `billable_seconds`
is the one billing rule (EC2 bills Linux per second with a one-minute minimum).

The runner's exit statuses (`RunnerExit`) are defined here too: the user data acts on them.

Standard library only (an S3 client is passed in): the watchdog Lambda and the user data's boot reporter use
this module without the training package. Python 3.9 compatible (the instance's system python).
"""
from __future__ import annotations

import copy
import enum
import json
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

try:
    from training.cloud.core import layout as _layout
except ImportError:  # the Lambda asset and the boot kit: sibling modules at the top level
    import layout as _layout  # type: ignore[no-redef]

RunLayout = _layout.RunLayout

PENDING, STARTING, RUNNING = "PENDING", "STARTING", "RUNNING"
INTERRUPTED, RETRYING = "INTERRUPTED", "RETRYING"
SUCCEEDED, FAILED, STOPPED, HUNG = "SUCCEEDED", "FAILED", "STOPPED", "HUNG"
STATES = (PENDING, STARTING, RUNNING, INTERRUPTED, RETRYING, SUCCEEDED, FAILED, STOPPED, HUNG)
TERMINAL_STATES = frozenset({SUCCEEDED, FAILED, STOPPED, HUNG})
RESUMABLE_STATES = frozenset({STOPPED, HUNG, FAILED})
# An attempt ends in one of these; CRASHED and LOST count towards max_attempts.
ATTEMPT_END_STATES = (SUCCEEDED, FAILED, INTERRUPTED, STOPPED, HUNG, "CRASHED", "LOST")
NEW = None  # no status.json yet

TRANSITIONS: Dict[Optional[str], frozenset] = {
    NEW: frozenset({STARTING, FAILED, STOPPED, HUNG}),
    PENDING: frozenset({STARTING, FAILED, STOPPED, HUNG}),
    INTERRUPTED: frozenset({STARTING, FAILED, STOPPED, HUNG}),
    RETRYING: frozenset({STARTING, FAILED, STOPPED, HUNG}),
    STARTING: frozenset({RUNNING, INTERRUPTED, RETRYING, SUCCEEDED, FAILED, STOPPED, HUNG}),
    RUNNING: frozenset({INTERRUPTED, RETRYING, SUCCEEDED, FAILED, STOPPED, HUNG}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset({PENDING}),
    STOPPED: frozenset({PENDING}),
    HUNG: frozenset({PENDING}),
}

DEFAULT_MAX_ATTEMPTS = 3
MINIMUM_BILLED_SECONDS = 60
LOG_TAIL_LINES = 20
_CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
_MISSING_CODES = ("NoSuchKey", "404", "NotFound")


class RunnerExit(enum.IntEnum):
    """`python -m training.cloud.run` exit statuses, and what the user data does with each.

    They stay clear of Python's own 1 (an uncaught exception, e.g. a broken environment) and 2 (usage), so
    any other status, a signal included, means the runner died without recording: the user data then records
    the attempt CRASHED itself (`attempt_crashed`).
    """

    SUCCEEDED = 0     # the run is SUCCEEDED (or was already terminal): the runner set capacity 0; power off
    FAILED = 10       # the run is FAILED (a user error): the runner set capacity 0; power off
    CONFIG = 11       # the settings file could not be read: nothing recorded; the user data records FAILED
    INTERRUPTED = 12  # spot notice / SIGTERM: the platform reclaims the instance; do NOT scale to 0 or power off
    STOPPED = 13      # the run is STOPPED or HUNG (`stop`, maxRuntimeHours, watchdog): capacity 0; power off
    RETRY = 14        # the attempt crashed and is recorded (RETRYING): power off, the group starts a replacement


class IllegalTransition(ValueError):
    """A writer asked for a move the life cycle does not allow (e.g. out of SUCCEEDED)."""


# ---------------------------------------------------------------- time and billing

def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> Optional[datetime]:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return _layout.parse_time(str(value))


def billable_seconds(attempt: dict, now: datetime) -> Optional[int]:
    """Seconds from started_at to ended_at (or now, while it runs), at least 60; None without a start."""
    started = parse_time(attempt.get("started_at"))
    if started is None:
        return None
    ended = parse_time(attempt.get("ended_at")) or now
    return max(MINIMUM_BILLED_SECONDS, int((ended - started).total_seconds()))


def attempt_cost(attempt: dict, now: datetime, price: Optional[float] = None) -> Optional[float]:
    """Estimated dollars of one attempt (price $/hour at launch); None where its price or start is unknown."""
    price = attempt.get("spot_price") if price is None else price
    seconds = billable_seconds(attempt, now)
    if price is None or seconds is None:
        return None
    return float(price) * seconds / 3600.0


def run_cost(status: dict, now: datetime, prices: Optional[Dict[int, float]] = None) -> tuple:
    """(billable seconds, estimated dollars, attempts without a known price) over all attempts.

    `prices` maps attempt number -> $/hour for attempts whose record has no spot_price.
    """
    seconds, dollars, unpriced = 0, 0.0, 0
    for attempt in status.get("attempts") or []:
        seconds += billable_seconds(attempt, now) or 0
        price = attempt.get("spot_price")
        if price is None and prices:
            price = prices.get(attempt.get("attempt"))
        cost = attempt_cost(attempt, now, price)
        if cost is None:
            unpriced += 1
        else:
            dollars += cost
    return seconds, dollars, unpriced


def _bill(attempt: dict, now: datetime) -> None:
    attempt["billable_seconds"] = billable_seconds(attempt, now)
    cost = attempt_cost(attempt, now)
    attempt["estimated_cost"] = None if cost is None else round(cost, 6)


# ---------------------------------------------------------------- the record and its transitions

def new_status(run_id: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> dict:
    """A record with every field of the contract and no attempt yet (not written: see start_attempt)."""
    return {
        "run_id": _layout.validate_run_id(run_id),
        "state": None,
        "attempt": 0,
        "attempts": [],
        "max_attempts": max_attempts,
        "failed_in_a_row": 0,
        "last_epoch": 0,
        "epochs": None,
        "heartbeat_at": None,
        "progress": 0,
        "updated_at": None,
        "error": None,
        "failed_step": None,
        "log_tail": None,
        "validation": None,
        "reason": None,
    }


def is_terminal(status: Optional[dict]) -> bool:
    return bool(status) and status.get("state") in TERMINAL_STATES


def _move(status: dict, state: str) -> bool:
    """Set the run's state where the life cycle allows it; False (unchanged) where the run is terminal."""
    current = status.get("state")
    if current == state:
        return True
    if state not in TRANSITIONS.get(current, frozenset()):
        if current in TERMINAL_STATES:
            return False
        raise IllegalTransition(f"run {status.get('run_id')}: {current} -> {state} is not a legal transition")
    status["state"] = state
    return True


def open_attempt(status: Optional[dict]) -> Optional[dict]:
    attempts = (status or {}).get("attempts") or []
    return attempts[-1] if attempts and not attempts[-1].get("ended_at") else None


def _close(attempt: dict, end_state: str, now: datetime, **fields: Any) -> None:
    if end_state not in ATTEMPT_END_STATES:
        raise ValueError(f"attempt end state {end_state!r} is not one of {', '.join(ATTEMPT_END_STATES)}")
    attempt.update(fields)
    attempt["ended_at"] = iso(now)
    attempt["end_state"] = end_state
    _bill(attempt, now)


def _count_failure(status: dict, reason: str) -> bool:
    """Count a failed attempt; True (and the run FAILED) once max_attempts have failed in a row."""
    status["failed_in_a_row"] = int(status.get("failed_in_a_row") or 0) + 1
    limit = int(status.get("max_attempts") or DEFAULT_MAX_ATTEMPTS)
    if status["failed_in_a_row"] >= limit:
        if _move(status, FAILED):
            status["failed_step"] = status.get("failed_step") or "attempts"
            status["error"] = (f"{status['failed_in_a_row']} attempts in a row failed (maxAttempts={limit}); "
                               f"last: {reason}")
            status["reason"] = status["error"]
        return True
    return False


def _open_attempt(status: dict, instance: dict, *, started: datetime, spot_price: Optional[float]) -> dict:
    """Append attempt N+1 on `instance` (instance_id, instance_type, availability_zone, lifecycle) and return it."""
    attempt = {
        "attempt": int(status.get("attempt") or 0) + 1,
        "instance_id": instance.get("instance_id"),
        "instance_type": instance.get("instance_type"),
        "availability_zone": instance.get("availability_zone"),
        "lifecycle": instance.get("lifecycle"),
        "started_at": iso(started),
        "last_seen_at": iso(started),
        "ended_at": None,
        "end_state": None,
        "spot_price": spot_price,
        "billable_seconds": None,
        "estimated_cost": None,
        "epochs_completed": [],
    }
    status.setdefault("attempts", []).append(attempt)
    status["attempt"] = attempt["attempt"]
    return attempt


def log_tail(path: Any, lines: int = LOG_TAIL_LINES) -> list:
    """The last `lines` lines of a log file (each cut at 500 characters) for status.json; [] where unreadable."""
    try:
        with open(path, errors="replace") as handle:
            return [line[:500] for line in handle.read().splitlines()[-lines:]]
    except OSError:
        return []


def start_attempt(status: Optional[dict], *, run_id: str, instance: dict, spot_price: Optional[float],
                  max_attempts: int, now: datetime) -> dict:
    """Attempt N+1 on this instance: an attempt still open died without a word (LOST, a failed attempt).

    Where that makes max_attempts failures in a row the run becomes FAILED and no attempt opens.
    """
    status = status if status is not None else new_status(run_id, max_attempts)
    status["max_attempts"] = max_attempts
    lost = open_attempt(status)
    if lost is not None:
        lost_at = parse_time(lost.get("last_seen_at") or lost.get("started_at")) or now
        _close(lost, "LOST", lost_at)
        if _count_failure(status, f"attempt {lost['attempt']} on {lost.get('instance_id')} ended without a word"):
            return status
        if status.get("state") in (STARTING, RUNNING):
            _move(status, RETRYING)  # a failed attempt (RUNNING -> STARTING is not a transition)
    if status.get("state") in TERMINAL_STATES or not _move(status, STARTING):
        return status
    _open_attempt(status, instance, started=now, spot_price=spot_price)
    status.update(error=None, reason=None, failed_step=None, log_tail=None)
    return status


def set_running(status: dict, *, epochs: int, last_epoch: int, now: datetime) -> dict:
    if _move(status, RUNNING):
        status.update(epochs=epochs, last_epoch=last_epoch, heartbeat_at=iso(now))
    return status


def epoch_done(status: dict, *, epoch: int, validation: Optional[dict], now: datetime) -> dict:
    """Epoch `epoch` (0-based) completed and its checkpoint is in S3: recorded in the runner's attempt, the last
    one, even where `stop` has already closed it (the runner finishes the epoch it is in)."""
    attempt = (status.get("attempts") or [None])[-1]
    if attempt is not None:
        attempt["epochs_completed"] = list(attempt.get("epochs_completed") or []) + [epoch]
        attempt["last_seen_at"] = iso(now)
    status["last_epoch"] = epoch + 1
    if validation:
        status["validation"] = validation
    status["heartbeat_at"] = iso(now)
    return status


def heartbeat(status: dict, *, progress: int, now: datetime) -> dict:
    """Training advanced to `progress` (batches and steps so far): the run is alive."""
    status["progress"] = progress
    status["heartbeat_at"] = iso(now)
    attempt = open_attempt(status)
    if attempt is not None:
        attempt["last_seen_at"] = iso(now)
    return status


def end_attempt(status: dict, end_state: str, *, now: datetime, reason: Optional[str] = None,
                error: Optional[str] = None, step: Optional[str] = None, log_tail: Optional[list] = None) -> dict:
    """The runner (or the user data, for a crash) ends the open attempt; the run's state follows from it.

    CRASHED moves the run to RETRYING, or FAILED at max_attempts failures in a row. A run already terminal
    (stopped out of band) keeps its state; the attempt is still closed with what really happened.
    """
    attempt = open_attempt(status) or ((status.get("attempts") or [None])[-1])
    if attempt is not None:
        _close(attempt, end_state, now, last_seen_at=iso(now))
    live = status.get("state") not in TERMINAL_STATES
    if end_state == "CRASHED":
        if live:
            if not _count_failure(status, error or reason or "the attempt crashed"):
                _move(status, RETRYING)
                status["reason"] = error or reason
            status["log_tail"] = log_tail
        return status
    if end_state in (SUCCEEDED, INTERRUPTED):
        status["failed_in_a_row"] = 0
    if live and _move(status, end_state):
        status.update(reason=reason, error=error, failed_step=step, log_tail=log_tail)
    return status


def boot_failed(status: Optional[dict], *, run_id: str, instance: dict, step: str, detail: str,
                log_tail: list, boot_started: Optional[datetime], max_attempts: int, now: datetime) -> dict:
    """The user data failed at `step` before the runner could start: the run is FAILED (fix and redeploy)."""
    status = status if status is not None else new_status(run_id, max_attempts)
    if status.get("state") in TERMINAL_STATES:
        return status
    attempt = _open_attempt(status, instance, started=boot_started or now, spot_price=None)
    _close(attempt, FAILED, now, last_seen_at=iso(now), failed_step=step)
    _move(status, FAILED)
    status.update(error=f"boot step '{step}' failed: {detail}", failed_step=step, log_tail=log_tail,
                  reason=f"the instance could not start the runner (step '{step}')")
    return status


def attempt_crashed(status: Optional[dict], *, run_id: str, instance: dict, detail: str, log_tail: list,
                    boot_started: Optional[datetime], max_attempts: int, now: datetime) -> dict:
    """The runner died without recording (a signal, an out-of-memory kill, a broken environment): the user data
    ends its attempt CRASHED, or records one where the runner never opened it. RETRYING, or FAILED once
    max_attempts attempts in a row have failed."""
    status = status if status is not None else new_status(run_id, max_attempts)
    status["max_attempts"] = max_attempts
    if open_attempt(status) is None:
        if status.get("state") in TERMINAL_STATES:
            return status
        _open_attempt(status, instance, started=boot_started or now, spot_price=None)
        if status.get("state") in (None, PENDING, INTERRUPTED, RETRYING):
            _move(status, STARTING)
    return end_attempt(status, "CRASHED", now=now, error=detail, log_tail=log_tail)


def stop(status: Optional[dict], *, run_id: str, state: str, reason: str, now: datetime) -> dict:
    """`stop` (STOPPED), the watchdog (STOPPED for the time cap, HUNG): end a live run, close its attempt."""
    if state not in (STOPPED, HUNG, FAILED):
        raise IllegalTransition(f"stop() moves a run to STOPPED, HUNG or FAILED, not {state}")
    status = status if status is not None else new_status(run_id)
    if status.get("state") in TERMINAL_STATES or not _move(status, state):
        return status
    attempt = open_attempt(status)
    if attempt is not None:
        _close(attempt, state, now)
    status["reason"] = reason
    if state in (HUNG, FAILED):
        status["error"] = reason
    return status


def reopen(status: dict, *, reason: str, now: datetime) -> dict:
    """`resume`: a STOPPED, HUNG or FAILED run waits for a new instance (PENDING); the failure count restarts."""
    if status.get("state") not in RESUMABLE_STATES:
        raise IllegalTransition(f"run {status.get('run_id')} is {status.get('state')}: only "
                                f"{', '.join(sorted(RESUMABLE_STATES))} runs can be resumed")
    _move(status, PENDING)
    status.update(reason=reason, error=None, failed_step=None, log_tail=None, failed_in_a_row=0,
                  resumed_at=iso(now))
    return status


# ---------------------------------------------------------------- status.json in S3

def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


class StatusStore:
    """Read and change status.json with conditional writes.

    `change(fn)` reads the record and its ETag, applies `fn` to a copy and puts the result with If-Match (or
    If-None-Match for a new record); on a conflict it reads again and re-applies `fn`, so concurrent writers
    never lose each other's updates. `s3` is a boto3 client, or any object with get_object/put_object.
    """

    def __init__(self, s3: Any, layout: RunLayout, retries: int = 20) -> None:
        self.s3, self.layout, self.retries = s3, layout, retries

    def read(self) -> Optional[dict]:
        return self._get()[0]

    def _get(self) -> tuple:
        try:
            response = self.s3.get_object(Bucket=self.layout.bucket, Key=self.layout.status_key)
        except Exception as error:
            if _error_code(error) in _MISSING_CODES:
                return None, None
            raise
        status = json.loads(response["Body"].read())
        if not isinstance(status, dict):
            raise ValueError(f"{self.layout.uri(self.layout.status_key)} does not hold a JSON object")
        return status, response.get("ETag")

    def change(self, fn: Callable[[Optional[dict]], Optional[dict]]) -> tuple:
        """Apply fn to the current record and write it; returns (before, after). fn returning None writes nothing."""
        for _ in range(self.retries):
            before, etag = self._get()
            after = fn(copy.deepcopy(before))
            if after is None or after == before:
                return before, before if after is None else after
            if after.get("state") not in STATES:
                raise IllegalTransition(f"status state {after.get('state')!r} is not one of {', '.join(STATES)}")
            after["updated_at"] = iso(utc_now())
            body = json.dumps(after, indent=2, sort_keys=True, default=str).encode()
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(Bucket=self.layout.bucket, Key=self.layout.status_key, Body=body,
                                   ContentType="application/json", CacheControl="no-cache", **condition)
            except Exception as error:
                if _error_code(error) in _CONFLICT_CODES:
                    continue  # someone else wrote in between: read again and re-apply
                raise
            return before, after
        raise RuntimeError(f"{self.layout.uri(self.layout.status_key)}: {self.retries} conflicting writes in a row")


def read_status(s3: Any, layout: RunLayout) -> Optional[dict]:
    """The run's status.json, or None where the run has none yet."""
    return StatusStore(s3, layout).read()
