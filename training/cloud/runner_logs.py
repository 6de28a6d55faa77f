"""Where the runner's log lines go: stderr always; held back until the attempt is known, then the attempt's log
file (uploaded to S3 when the attempt ends) and its CloudWatch Logs stream."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from training.cloud import aws
from training.cloud.core.layout import RunLayout
from training.cloud.cwlogs import CloudWatchLogsHandler
from training.cloud.run_settings import RunSettings

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"

log = logging.getLogger("spotgrade.runner")


class BufferHandler(logging.Handler):
    """Holds records until the attempt's log file exists."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def replay_into(self, handlers: list[logging.Handler]) -> None:
        for record in self.records:
            for handler in handlers:
                handler.handle(record)


class AttemptLogs:
    """One attempt's log file and CloudWatch Logs stream, as handlers of the runner's logger."""

    def __init__(self, path: Path, layout: RunLayout, handlers: list[logging.Handler]) -> None:
        self.path, self.layout, self.handlers = path, layout, handlers

    @staticmethod
    def stderr() -> logging.Handler:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        return handler

    @classmethod
    def open(cls, settings: RunSettings, logs_client: Any, layout: RunLayout, attempt: int) -> "AttemptLogs":
        """The attempt's log file under the work directory, and its stream where the run has a log group."""
        path = settings.work_dir / "logs" / f"attempt-{attempt:04d}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(path)
        file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        cloudwatch = _cloudwatch(settings, logs_client, layout.log_stream(attempt))
        return cls(path, layout, [h for h in (file_handler, cloudwatch) if h is not None])

    def take_over_from(self, buffer: BufferHandler) -> None:
        """Write what the buffer held, then log here instead of to the buffer."""
        buffer.replay_into(self.handlers)
        log.removeHandler(buffer)
        for handler in self.handlers:
            log.addHandler(handler)

    def close(self) -> None:
        for handler in self.handlers:
            log.removeHandler(handler)
            handler.close()

    def upload(self, s3: Any, attempt: int) -> None:
        """Copy the closed log file to the run's logs/ in S3 (a failure is logged, not raised)."""
        try:
            aws.upload_file(s3, self.path, self.layout.bucket, self.layout.log_key(attempt),
                            content_type="text/plain; charset=utf-8")
        except Exception as error:
            log.error("could not upload the log %s: %s", self.path, error)


def _cloudwatch(settings: RunSettings, logs_client: Any, stream: str) -> logging.Handler | None:
    if not settings.log_group:
        return None
    try:
        handler = CloudWatchLogsHandler(logs_client, settings.log_group, stream,
                                        flush_seconds=settings.log_flush_seconds)
    except Exception as error:
        log.warning("CloudWatch Logs unavailable (%s): logging to the file and S3 only", error)
        return None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler
