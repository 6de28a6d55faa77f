"""What watches a training attempt from beside it: the spot-notice poller and the monitor (heartbeat, runtime cap,
out-of-band stop), and the stop request and progress count they share with training."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from training.cloud.core import lifecycle
from training.cloud.core.imds import Imds, MetadataError

log = logging.getLogger("spotgrade.runner")


class StopRequest:
    """The first reason to stop training wins: INTERRUPTED (spot notice) or STOPPED (cap, `stop`)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.state: str | None = None
        self.reason: str | None = None
        self.at: float | None = None
        self._lock = threading.Lock()

    def request(self, state: str, reason: str) -> None:
        with self._lock:
            if self.state is None:
                self.state, self.reason, self.at = state, reason, time.monotonic()
                log.warning("stopping at the next batch: %s", reason)
                self.event.set()


class Progress:
    """Counts what the attempt got done (batches, epochs, set-up steps): the heartbeat follows it, not a clock."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def advance(self) -> None:
        with self._lock:
            self.count += 1


def watch_notices(imds: Imds, stop: StopRequest, done: threading.Event, poll_seconds: float,
                  measurements: dict[str, float]) -> None:
    """Poll IMDS for a spot instance action every poll_seconds (404: none) until done; a notice stops training."""
    warned = False
    while not done.is_set() and not stop.event.is_set():
        try:
            action = imds.spot_action()
        except MetadataError as error:
            if not warned:
                log.warning("spot notice poll failed (will keep trying): %s", error)
                warned = True
            action = None
        if action:
            measurements["notice_seen_at"] = time.time()
            stop.request(lifecycle.INTERRUPTED, f"spot interruption notice: {action.get('action')} at "
                                                f"{action.get('time', 'unknown time')}")
            return
        done.wait(poll_seconds)


def monitor(progress: Progress, stop: StopRequest, done: threading.Event, *, heartbeat_seconds: float,
            deadline: float | None, max_runtime_hours: float | None, beat: Callable[[int], dict],
            read: Callable[[], Any]) -> None:
    """Heartbeat while training advances; stop on the max runtime cap or a terminal state set out of band.

    `beat(count)` writes a heartbeat and returns the status; `read()` reads it. A beat is written only when the
    progress count moved since the last one, so a stuck input pipeline or GPU lets the heartbeat go stale and
    the watchdog sees the run HUNG.
    """
    next_beat = time.monotonic() + heartbeat_seconds
    beaten = progress.count
    while not done.wait(min(1.0, heartbeat_seconds)):
        if deadline is not None and time.time() >= deadline:
            stop.request(lifecycle.STOPPED, f"max runtime of {max_runtime_hours:g} h reached")
        if time.monotonic() < next_beat:
            continue
        next_beat = time.monotonic() + heartbeat_seconds
        count = progress.count
        try:
            if count != beaten:
                status = beat(count)
                beaten = count
            else:
                status = read() or {}
        except Exception as error:  # keep training; the next beat retries
            log.warning("heartbeat failed: %s", error)
            continue
        if lifecycle.is_terminal(status):
            stop.request(lifecycle.STOPPED, f"run set to {status['state']} out of band: {status.get('reason')}")
