"""The run's life cycle: the one owner of what status.json holds (states, transitions, attempts).

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
that finds one keeps it (it may still close its own attempt). The functions here change a record in memory;
status_store.py writes it (conditional puts, so the runner, the user data, the watchdog and `stop`/`resume`
never lose each other's updates).

Each attempt records its instance, times, end state, billable seconds and estimated cost (billing.py's rule), and
the commit it ran (`git_commit`); the run records the code deployed (`code`: gitRef, the commit it named at synth,
whether allowUnpushedCode let the pre-flight's objections through).

The runner's exit statuses (`RunnerExit`) are defined here too: the user data acts on them.
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Dict, Optional

from training.cloud.core.billing import bill
from training.cloud.core.clock import iso, parse_time
from training.cloud.core.layout import validate_run_id

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
LOG_TAIL_LINES = 20


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


# ---------------------------------------------------------------- the record and its transitions

def new_status(run_id: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> dict:
    """A record with every field of the contract and no attempt yet (not written: see start_attempt)."""
    return {
        "run_id": validate_run_id(run_id),
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
        "code": None,
    }


def is_terminal(status: Optional[dict]) -> bool:
    return status is not None and status.get("state") in TERMINAL_STATES


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
    bill(attempt, now)


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
    attempt: Dict[str, Any] = {
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


def code_record(git_ref: Optional[str], git_commit: Optional[str], allow_unpushed_code: bool) -> dict:
    """The run's `code` record: the gitRef deployed, the commit it named at synth (None: unresolved, each attempt
    checked out what gitRef named at its boot) and whether allowUnpushedCode was set."""
    return {"git_ref": git_ref, "git_commit": git_commit, "allow_unpushed_code": bool(allow_unpushed_code)}


def start_attempt(status: Optional[dict], *, run_id: str, instance: dict, spot_price: Optional[float],
                  max_attempts: int, now: datetime, code: Optional[dict] = None,
                  git_commit: Optional[str] = None) -> dict:
    """Attempt N+1 on this instance: an attempt still open died without a word (LOST, a failed attempt).

    Where that makes max_attempts failures in a row the run becomes FAILED and no attempt opens. `code`
    (code_record's) is the run's deployed code, `git_commit` the commit this attempt checked out.
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
    attempt = _open_attempt(status, instance, started=now, spot_price=spot_price)
    attempt["git_commit"] = git_commit
    if code is not None:
        status["code"] = code
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
