"""A logging.Handler that ships records to one CloudWatch Logs stream in batches."""
from __future__ import annotations

import logging
import sys
import threading
from typing import Any

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD


class CloudWatchLogsHandler(logging.Handler):
    """Buffers formatted records and sends them with put_log_events every `flush_seconds` and on close."""

    def __init__(self, logs: Any, group: str, stream: str, flush_seconds: float = 5.0) -> None:
        super().__init__()
        self.logs, self.group, self.stream = logs, group, stream
        self._events: list[dict] = []
        self._buffer_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()   # not `_closed`: logging.Handler.close sets that to True
        self.sent = 0
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        self._thread = threading.Thread(target=self._loop, args=(flush_seconds,), name="cwlogs", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            encoded = message.encode("utf-8", "replace")
            if len(encoded) > MAX_EVENT_BYTES:
                message = encoded[: MAX_EVENT_BYTES - 16].decode("utf-8", "ignore") + " ...[truncated]"
            with self._buffer_lock:
                self._events.append({"timestamp": int(record.created * 1000), "message": message})
        except Exception:  # a logging handler never raises
            self.handleError(record)

    def flush(self) -> None:
        with self._send_lock:
            with self._buffer_lock:
                events, self._events = self._events, []
            for batch in _batches(sorted(events, key=lambda e: e["timestamp"])):
                try:
                    self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)
                    self.sent += len(batch)
                except Exception as error:  # keep training; the S3 copy of the log is complete
                    print(f"spotgrade: CloudWatch Logs put failed ({len(batch)} lines dropped): {error}",
                          file=sys.stderr)

    def _loop(self, flush_seconds: float) -> None:
        while not self._stopping.wait(flush_seconds):
            self.flush()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self.flush()
        super().close()


def _batches(events: list[dict]):
    batch: list[dict] = []
    size = 0
    for event in events:
        event_size = len(event["message"].encode("utf-8")) + EVENT_OVERHEAD
        if batch and (len(batch) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES
                      or event["timestamp"] - batch[0]["timestamp"] >= 23 * 3600 * 1000):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield batch
