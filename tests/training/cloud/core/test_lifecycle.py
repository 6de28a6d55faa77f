"""lifecycle.py: the run's states and transitions, attempts and their end states, the runner's exit statuses."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.training.cloud.core.helpers import INSTANCE, PYTHON39, RUN, T0, at, running, stage_kit, start
from training.cloud.core import lifecycle as lc
from training.cloud.core.lifecycle import (
    FAILED,
    HUNG,
    INTERRUPTED,
    NEW,
    PENDING,
    RETRYING,
    RUNNING,
    STARTING,
    STOPPED,
    SUCCEEDED,
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    RunnerExit,
)


def reach(state: str | None) -> dict | None:
    """A record in `state`, reached from no record through the public transitions only."""
    if state is NEW:
        return None
    if state == STARTING:
        return start(None)
    if state == RUNNING:
        return running()
    if state in (INTERRUPTED, SUCCEEDED, FAILED):
        return lc.end_attempt(running(), state, now=at(30), reason=f"ended {state}")
    if state == RETRYING:
        return lc.end_attempt(running(), "CRASHED", now=at(30), error="boom")
    if state in (STOPPED, HUNG):
        return lc.stop(running(), run_id=RUN, state=state, reason=f"set {state}", now=at(30))
    if state == PENDING:
        return lc.reopen(reach(STOPPED), reason="resumed", now=at(40))
    raise AssertionError(state)


def move(status: dict | None, target: str) -> dict:
    """The public function that moves a run to `target`."""
    now = at(50)
    if target == STARTING:
        return start(status, 50)
    if target == RUNNING:
        return lc.set_running(status, epochs=10, last_epoch=0, now=now)
    if target in (INTERRUPTED, SUCCEEDED):
        return lc.end_attempt(status, target, now=now)
    if target == RETRYING:
        return lc.end_attempt(status, "CRASHED", now=now, error="boom")
    if target == FAILED:
        if lc.open_attempt(status) is not None:
            return lc.end_attempt(status, FAILED, now=now, error="bad flags", step="runner: training settings")
        return lc.boot_failed(status, run_id=RUN, instance=INSTANCE, step="clone", detail="exit status 128",
                              log_tail=["fatal: repository not found"], boot_started=at(45), max_attempts=3,
                              now=now)
    if target in (STOPPED, HUNG):
        return lc.stop(status, run_id=RUN, state=target, reason=f"set {target}", now=now)
    if target == PENDING:
        return lc.reopen(status, reason="resumed", now=now)
    raise AssertionError(target)


LEGAL = sorted(((source, target) for source, targets in TRANSITIONS.items() for target in targets),
               key=lambda pair: (str(pair[0]), pair[1]))


# ---------------------------------------------------------------- states and transitions

def test_the_table_covers_every_state():
    assert set(TRANSITIONS) == {NEW, *lc.STATES}
    assert TERMINAL_STATES == {SUCCEEDED, FAILED, STOPPED, HUNG}
    assert all(target in lc.STATES for targets in TRANSITIONS.values() for target in targets)
    assert TRANSITIONS[SUCCEEDED] == frozenset()  # nothing moves a run out of SUCCEEDED
    assert {s for s in TERMINAL_STATES if TRANSITIONS[s]} == lc.RESUMABLE_STATES
    assert all(TRANSITIONS[s] == {PENDING} for s in lc.RESUMABLE_STATES)


@pytest.mark.parametrize("source", [NEW, *lc.STATES])
def test_every_state_is_reachable(source):
    status = reach(source)
    assert (status or {}).get("state") == source


@pytest.mark.parametrize(("source", "target"), LEGAL, ids=[f"{s}->{t}" for s, t in LEGAL])
def test_every_legal_transition_is_reachable(source, target):
    after = move(reach(source), target)
    assert after["state"] == target
    assert after["run_id"] == RUN


@pytest.mark.parametrize("source", [s for s in lc.STATES if s not in TERMINAL_STATES])
def test_illegal_transitions_from_a_live_state_raise(source):
    for target in set(lc.STATES) - TRANSITIONS[source] - {source}:
        with pytest.raises(IllegalTransition, match=f"{source} -> {target} is not a legal transition"):
            lc._move(reach(source), target)


def test_illegal_transitions_through_the_public_functions():
    with pytest.raises(IllegalTransition, match="PENDING -> RUNNING"):
        lc.set_running(reach(PENDING), epochs=3, last_epoch=0, now=T0)  # no attempt was started
    with pytest.raises(IllegalTransition, match="SUCCEEDED"):
        lc.reopen(reach(SUCCEEDED), reason="again", now=T0)
    with pytest.raises(IllegalTransition, match="RUNNING"):
        lc.reopen(reach(RUNNING), reason="again", now=T0)
    with pytest.raises(IllegalTransition, match="not RUNNING"):
        lc.stop(reach(RUNNING), run_id=RUN, state=RUNNING, reason="?", now=T0)
    with pytest.raises(ValueError, match="attempt end state 'DONE'"):
        lc.end_attempt(reach(RUNNING), "DONE", now=T0)


@pytest.mark.parametrize("source", sorted(TERMINAL_STATES))
def test_a_terminal_state_is_kept_by_every_later_write(source):
    """Only `resume` (reopen) moves a run out of a terminal state; every other writer keeps it."""
    status = reach(source)
    kept = json.loads(json.dumps(status))
    assert lc._move(status, RUNNING) is False and status == kept
    assert start(status, 60)["state"] == source and len(status["attempts"]) == len(kept["attempts"])
    assert lc.set_running(status, epochs=10, last_epoch=0, now=at(61))["state"] == source
    for end_state in (SUCCEEDED, INTERRUPTED, FAILED, "CRASHED"):
        assert lc.end_attempt(json.loads(json.dumps(kept)), end_state, now=at(62), error="late")["state"] == source
    for state in (STOPPED, HUNG, FAILED):
        assert lc.stop(json.loads(json.dumps(kept)), run_id=RUN, state=state, reason="late", now=at(63)) == kept
    assert lc.boot_failed(json.loads(json.dumps(kept)), run_id=RUN, instance=INSTANCE, step="clone", detail="x",
                          log_tail=[], boot_started=None, max_attempts=3, now=at(64)) == kept
    assert lc.attempt_crashed(json.loads(json.dumps(kept)), run_id=RUN, instance=INSTANCE, detail="killed",
                              log_tail=[], boot_started=None, max_attempts=3, now=at(65)) == kept


def test_end_attempt_after_stop_keeps_stopped_but_closes_the_attempt():
    status = running()
    status = lc.stop(status, run_id=RUN, state=STOPPED, reason="stopped by alice", now=at(20))
    assert status["attempts"][-1]["end_state"] == STOPPED and status["attempts"][-1]["ended_at"] == lc.iso(at(20))
    # The runner notices at its next batch and ends its attempt with what really happened.
    status = lc.end_attempt(status, STOPPED, now=at(21), reason="run set to STOPPED out of band")
    assert (status["state"], status["reason"]) == (STOPPED, "stopped by alice")
    [attempt] = status["attempts"]
    assert (attempt["end_state"], attempt["ended_at"]) == (STOPPED, lc.iso(at(21)))
    assert attempt["billable_seconds"] == 21 * 60  # billed until the runner really stopped


def test_end_attempt_closes_an_attempt_left_open_in_a_terminal_run():
    status = running()
    status["state"] = STOPPED  # e.g. written by an older `stop` that did not close the attempt
    status = lc.end_attempt(status, INTERRUPTED, now=at(10))
    assert status["state"] == STOPPED
    assert (status["attempts"][-1]["end_state"], status["attempts"][-1]["ended_at"]) == (INTERRUPTED, lc.iso(at(10)))
    assert lc.open_attempt(status) is None


# ---------------------------------------------------------------- attempts and the failure count

def test_start_attempt_fills_the_record():
    status = start(None, 0, price=0.5)
    assert (status["state"], status["attempt"], status["max_attempts"]) == (STARTING, 1, 3)
    assert status["failed_in_a_row"] == 0
    [attempt] = status["attempts"]
    assert attempt == {**attempt, **INSTANCE, "attempt": 1, "started_at": lc.iso(T0), "last_seen_at": lc.iso(T0),
                       "ended_at": None, "end_state": None, "spot_price": 0.5, "epochs_completed": []}
    assert set(lc.new_status(RUN)) <= set(status)


def test_start_attempt_records_the_code_deployed_and_the_commit_each_attempt_ran():
    deployed, other = "a" * 40, "b" * 40
    code = lc.code_record("main", deployed, True)
    assert code == {"git_ref": "main", "git_commit": deployed, "allow_unpushed_code": True}
    status = lc.start_attempt(None, run_id=RUN, instance=INSTANCE, spot_price=None, max_attempts=3, now=at(0),
                              code=code, git_commit=deployed)
    status = lc.end_attempt(status, INTERRUPTED, now=at(5))
    status = lc.start_attempt(status, run_id=RUN, instance=INSTANCE, spot_price=None, max_attempts=3, now=at(6),
                              git_commit=other)  # no code given: the run's record stays
    assert status["code"] == code
    assert [a["git_commit"] for a in status["attempts"]] == [deployed, other]
    assert lc.new_status(RUN)["code"] is None and start(None)["attempts"][0]["git_commit"] is None


def test_progress_moves_last_seen_and_heartbeat():
    status = running()
    status = lc.heartbeat(status, progress=42, now=at(5))
    assert (status["progress"], status["heartbeat_at"]) == (42, lc.iso(at(5)))
    status = lc.epoch_done(status, epoch=0, validation={"accuracy": 0.5}, now=at(6))
    assert (status["last_epoch"], status["validation"], status["heartbeat_at"]) == (1, {"accuracy": 0.5}, lc.iso(at(6)))
    assert status["attempts"][-1]["epochs_completed"] == [0] and status["attempts"][-1]["last_seen_at"] == lc.iso(at(6))


def test_start_attempt_marks_an_open_attempt_lost():
    status = lc.heartbeat(running(), progress=7, now=at(12))  # then the instance vanished without a word
    status = start(status, 30, instance={**INSTANCE, "instance_id": "i-0bbb"})
    lost, new = status["attempts"]
    assert (lost["end_state"], lost["ended_at"]) == ("LOST", lc.iso(at(12)))  # billed to its last sign of life
    assert lost["billable_seconds"] == 12 * 60 and lost["estimated_cost"] == pytest.approx(0.36 * 12 / 60)
    assert (new["attempt"], new["instance_id"], new["end_state"]) == (2, "i-0bbb", None)
    assert (status["state"], status["attempt"], status["failed_in_a_row"]) == (STARTING, 2, 1)


@pytest.mark.parametrize("died_in", [STARTING, RUNNING])
def test_a_lost_attempt_is_a_failed_one_and_the_next_starts(died_in):
    """The runner was killed (no word from it, no report from the user data) while STARTING or RUNNING: the next
    instance's runner closes the attempt LOST and starts its own (the run passes through RETRYING)."""
    status = start(None) if died_in == STARTING else running()
    status = start(status, 20)
    assert (status["state"], status["attempt"], status["failed_in_a_row"]) == (STARTING, 2, 1)
    assert [a["end_state"] for a in status["attempts"]] == ["LOST", None]


def test_lost_attempts_fail_the_run_at_max_attempts():
    status = running(max_attempts=2)
    status = start(status, 10, max_attempts=2)  # attempt 1 lost: 1 in a row
    status = lc.set_running(status, epochs=10, last_epoch=0, now=at(11))
    status = start(status, 20, max_attempts=2, instance={**INSTANCE, "instance_id": "i-0ccc"})  # attempt 2 lost
    assert (status["state"], status["failed_in_a_row"], status["failed_step"]) == (FAILED, 2, "attempts")
    assert status["error"] == ("2 attempts in a row failed (maxAttempts=2); last: attempt 2 on i-0aaa ended "
                               "without a word")
    assert status["reason"] == status["error"]
    assert [a["end_state"] for a in status["attempts"]] == ["LOST", "LOST"]  # and no attempt 3 was opened
    assert status["attempt"] == 2 and lc.open_attempt(status) is None


def test_crashed_attempts_retry_then_fail_at_the_limit():
    status = None
    for n in (1, 2):
        status = lc.end_attempt(running(status, 10 * n), "CRASHED", now=at(10 * n + 5), error=f"crash {n}",
                                log_tail=[f"Traceback {n}"])
        assert (status["state"], status["failed_in_a_row"]) == (RETRYING, n)
        assert (status["reason"], status["log_tail"]) == (f"crash {n}", [f"Traceback {n}"])
        assert status["attempts"][-1]["end_state"] == "CRASHED"
    status = lc.end_attempt(running(status, 30), "CRASHED", now=at(35), error="crash 3")
    assert (status["state"], status["failed_in_a_row"], status["failed_step"]) == (FAILED, 3, "attempts")
    assert status["error"] == "3 attempts in a row failed (maxAttempts=3); last: crash 3"
    assert [a["end_state"] for a in status["attempts"]] == ["CRASHED"] * 3


def test_max_attempts_one_fails_at_the_first_crash():
    status = lc.end_attempt(running(max_attempts=1), "CRASHED", now=at(5), error="oom")
    assert status["state"] == FAILED and status["failed_in_a_row"] == 1


@pytest.mark.parametrize("end_state", [INTERRUPTED, SUCCEEDED])
def test_interrupted_and_succeeded_reset_the_failure_count(end_state):
    status = lc.end_attempt(running(), "CRASHED", now=at(5), error="a")
    status = lc.end_attempt(running(status, 10), "CRASHED", now=at(15), error="b")
    assert status["failed_in_a_row"] == 2
    status = lc.end_attempt(running(status, 20), end_state, now=at(25))
    assert (status["state"], status["failed_in_a_row"]) == (end_state, 0)


def test_reopen_resets_the_failure_count_and_clears_the_failure():
    status = None
    for n in range(3):
        status = lc.end_attempt(running(status, 10 * n), "CRASHED", now=at(10 * n + 5), error="boom", log_tail=["x"])
    assert status["state"] == FAILED
    status = lc.reopen(status, reason="resumed by bob", now=at(60))
    assert (status["state"], status["failed_in_a_row"], status["reason"]) == (PENDING, 0, "resumed by bob")
    assert (status["error"], status["failed_step"], status["log_tail"]) == (None, None, None)
    assert status["resumed_at"] == lc.iso(at(60))
    status = lc.end_attempt(running(status, 70), "CRASHED", now=at(75), error="again")
    assert (status["state"], status["failed_in_a_row"]) == (RETRYING, 1)  # a fresh count of 3


def test_user_error_fails_the_run_with_step_and_log_tail():
    status = lc.end_attempt(running(), FAILED, now=at(5), error="bad flag --epochz", step="runner: training settings",
                            log_tail=["usage: ...", "error: bad flag --epochz"])
    assert (status["state"], status["failed_step"], status["error"]) == (FAILED, "runner: training settings",
                                                                       "bad flag --epochz")
    assert status["log_tail"][-1] == "error: bad flag --epochz" and status["attempts"][-1]["end_state"] == FAILED


def test_boot_failed_records_an_attempt_of_its_own():
    status = lc.boot_failed(None, run_id=RUN, instance=INSTANCE, step="pip install", detail="exit status 1: No "
                            "matching distribution", log_tail=["ERROR: No matching distribution"], boot_started=at(0),
                            max_attempts=3, now=at(4))
    assert (status["state"], status["failed_step"], status["attempt"]) == (FAILED, "pip install", 1)
    assert status["error"] == "boot step 'pip install' failed: exit status 1: No matching distribution"
    [attempt] = status["attempts"]
    assert (attempt["end_state"], attempt["instance_id"], attempt["failed_step"]) == (FAILED, "i-0aaa", "pip install")
    assert (attempt["started_at"], attempt["billable_seconds"]) == (lc.iso(at(0)), 240)


def test_attempt_crashed_closes_the_runners_attempt_or_records_one():
    status = lc.attempt_crashed(running(), run_id=RUN, instance=INSTANCE, detail="killed by signal 9",
                                log_tail=["Killed"], boot_started=None, max_attempts=3, now=at(9))
    assert (status["state"], len(status["attempts"]), status["attempts"][0]["end_state"]) == (RETRYING, 1, "CRASHED")
    # The runner died before it opened attempt 2: the user data records one for this instance.
    status = lc.attempt_crashed(status, run_id=RUN, instance={**INSTANCE, "instance_id": "i-0ddd"}, detail="exit 1",
                                log_tail=["ImportError"], boot_started=at(10), max_attempts=3, now=at(12))
    second = status["attempts"][1]
    assert (second["attempt"], second["instance_id"], second["end_state"]) == (2, "i-0ddd", "CRASHED")
    assert (second["started_at"], status["state"], status["failed_in_a_row"]) == (lc.iso(at(10)), RETRYING, 2)


def test_closing_an_attempt_bills_it():
    status = lc.end_attempt(running(price=0.72), SUCCEEDED, now=at(10))
    attempt = status["attempts"][0]
    assert attempt["billable_seconds"] == 600 and attempt["estimated_cost"] == pytest.approx(0.12)


# ---------------------------------------------------------------- the runner's exit statuses, standalone use

def test_runner_exit_statuses_stay_clear_of_python_and_the_shell():
    from training.cloud.runner import EXIT_FOR_STATE, EXIT_UNRECORDED

    values = [int(code) for code in RunnerExit]
    assert len(set(values)) == len(values)
    assert not {1, 2} & set(values)  # Python's uncaught exception and usage error
    assert all(0 <= v < 126 for v in values)  # 126+ are the shell's (not executable, not found, signals)
    assert (RunnerExit.SUCCEEDED, RunnerExit.FAILED, RunnerExit.CONFIG, RunnerExit.INTERRUPTED, RunnerExit.STOPPED,
            RunnerExit.RETRY) == (0, 10, 11, 12, 13, 14)
    assert EXIT_UNRECORDED not in values and EXIT_UNRECORDED not in (1, 2)
    assert set(EXIT_FOR_STATE) == TERMINAL_STATES | {INTERRUPTED, RETRYING}


@pytest.mark.skipif(PYTHON39 is None, reason="no python3.9 (the instance's system python) here")
def test_lifecycle_runs_standalone_on_python_3_9(tmp_path):
    """The boot kit's copy: the code asset's files only (no project, no dependencies), Python 3.9."""
    stage_kit(tmp_path)
    code = ("import sys\n"
            "from training.cloud.core import lifecycle\n"
            "from training.cloud.core.clock import utc_now\n"
            "assert 'training.train' not in sys.modules and sys.version_info[:2] == (3, 9)\n"
            "now = utc_now()\n"
            "s = lifecycle.start_attempt(None, run_id='r', instance={}, spot_price=0.1, max_attempts=1, now=now)\n"
            "s = lifecycle.end_attempt(s, 'CRASHED', now=now, error='x')\n"
            "print(s['state'], lifecycle.RunnerExit.RETRY.value)\n")
    out = subprocess.run([PYTHON39, "-E", "-s", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["FAILED", "14"]
