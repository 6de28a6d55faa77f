"""The runner's side of status.json: one attempt's record, heartbeats, and stops set out of band."""
from __future__ import annotations

import threading
from typing import Any

from training.cloud.imds import InstanceInfo
from training.cloud.layout import TERMINAL_STATES, RunLayout, new_status, parse_time, read_status, utc_now, write_status


class StatusRecorder:
    """Read-modify-write of status.json under a lock.

    A terminal state written by someone else (the `stop` command, the watchdog) is kept: the runner then
    only updates its own attempt's fields and `external_stop` holds that state.
    """

    def __init__(self, s3: Any, layout: RunLayout, status: dict | None) -> None:
        self.s3, self.layout = s3, layout
        self.status = status if status is not None else new_status(layout.run_id)
        self.external_stop: str | None = None
        self._lock = threading.Lock()

    @property
    def attempt(self) -> dict:
        return self.status["attempts"][-1]

    def start_attempt(self, info: InstanceInfo, spot_price: float | None, epochs: int | None) -> dict:
        """Close a previous attempt that died without a word, open attempt N+1, write STARTING."""
        with self._lock:
            for old in self.status.get("attempts", []):
                if not old.get("ended_at"):
                    old["ended_at"] = old.get("last_seen_at") or old.get("started_at")
                    old["end_state"] = "LOST"
                    _bill(old)
            number = int(self.status.get("attempt") or 0) + 1
            entry = {
                "attempt": number,
                "instance_id": info.instance_id,
                "instance_type": info.instance_type,
                "availability_zone": info.availability_zone,
                "lifecycle": info.lifecycle,
                "started_at": utc_now(),
                "ended_at": None,
                "end_state": None,
                "spot_price": spot_price,
                "billable_seconds": 0,
                "estimated_cost": None,
                "epochs_completed": [],
            }
            self.status.setdefault("attempts", []).append(entry)
            self.status.update(attempt=number, state="STARTING", error=None, reason=None)
            if epochs is not None:
                self.status["epochs"] = epochs
            self._write()
            return entry

    def update(self, state: str | None = None, *, attempt: dict | None = None, **fields: Any) -> None:
        """Set fields (and the state, unless the run was stopped out of band) and write the record."""
        with self._lock:
            self._merge_remote()
            if state is not None and self.external_stop is None:
                self.status["state"] = state
            if self.external_stop is not None:
                for key in ("reason", "error"):
                    fields.pop(key, None)
            self.status.update(fields)
            if attempt:
                self.attempt.update(attempt)
            self._write()

    def heartbeat(self) -> None:
        now = utc_now()
        self.update(heartbeat_at=now, attempt={"last_seen_at": now})

    def end_attempt(self, state: str, **fields: Any) -> None:
        now = utc_now()
        self.update(state, attempt={"ended_at": now, "last_seen_at": now,
                                    "end_state": self.external_stop or state}, **fields)

    def _merge_remote(self) -> None:
        if self.external_stop is not None or self.status.get("state") in TERMINAL_STATES:
            return
        remote = read_status(self.s3, self.layout)
        if remote and remote.get("state") in TERMINAL_STATES:
            self.external_stop = remote["state"]
            self.status["state"] = remote["state"]
            self.status["reason"] = remote.get("reason")
            if remote.get("error"):
                self.status["error"] = remote["error"]

    def _write(self) -> None:
        if self.status.get("attempts"):
            _bill(self.attempt, end=self.attempt.get("ended_at") or utc_now())
        write_status(self.s3, self.layout, self.status)


def _bill(entry: dict, end: str | None = None) -> None:
    """Billable seconds and estimated cost (spot price at launch) of one attempt."""
    end = end or entry.get("ended_at")
    if not end or not entry.get("started_at"):
        return
    seconds = max(0, round((parse_time(end) - parse_time(entry["started_at"])).total_seconds()))
    entry["billable_seconds"] = seconds
    price = entry.get("spot_price")
    entry["estimated_cost"] = round(price * seconds / 3600, 6) if price is not None else None
