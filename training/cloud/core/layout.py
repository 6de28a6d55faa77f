"""The S3 layout of one training run and its status record.

    s3://<bucket>/runs/<run-id>/status.json      the run's state (see docs/architecture.md)
    s3://<bucket>/runs/<run-id>/checkpoints/     Keras BackupAndRestore directory, mirrored
    s3://<bucket>/runs/<run-id>/artifacts/       model.keras, metrics.json, PNGs, run.json
    s3://<bucket>/runs/<run-id>/logs/            attempt-0001.log, ..., boot-<instance-id>.log
    s3://<bucket>/runs/<run-id>/env/             <key>.tar.zst: the instance's packed Python environment

Nothing else builds these keys; what status.json holds is training/cloud/lifecycle.py's. Standard library and boto3 only: the watchdog Lambda is deployed
from this folder, where the `training` package is not importable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

try:
    from training.errors import ConfigError as _LayoutError
except ImportError:  # deployed alone (watchdog Lambda): no training package
    _LayoutError = ValueError  # type: ignore[misc,assignment]

RUNS_PREFIX = "runs/"
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def validate_run_id(run_id: str) -> str:
    """Return run_id, or raise ConfigError (ValueError outside the package) naming the rule."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise _LayoutError(
            f"run id {run_id!r} is invalid: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return run_id


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 time such as 2024-05-01T12:00:00Z into an aware datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class RunLayout:
    """Keys of one run in the artifacts bucket."""

    bucket: str
    run_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not _BUCKET_PATTERN.fullmatch(self.bucket):
            raise _LayoutError(f"bucket name {self.bucket!r} is invalid: use 3-63 lowercase letters, digits, '.' or '-'")
        validate_run_id(self.run_id)

    @property
    def prefix(self) -> str:
        return f"{RUNS_PREFIX}{self.run_id}/"

    @property
    def status_key(self) -> str:
        return f"{self.prefix}status.json"

    @property
    def checkpoints_prefix(self) -> str:
        return f"{self.prefix}checkpoints/"

    @property
    def artifacts_prefix(self) -> str:
        return f"{self.prefix}artifacts/"

    @property
    def logs_prefix(self) -> str:
        return f"{self.prefix}logs/"

    @property
    def env_prefix(self) -> str:
        """Packed Python environments of the run's instances, keyed by their requirements (see user_data.sh)."""
        return f"{self.prefix}env/"

    def artifact_key(self, name: str) -> str:
        """Key of an artifact file, e.g. artifact_key("model.keras")."""
        return self.artifacts_prefix + _relative(name)

    def checkpoint_key(self, relative_path: str) -> str:
        """Key of a file of the local checkpoint directory, given its path relative to that directory."""
        return self.checkpoints_prefix + _relative(relative_path)

    def log_key(self, attempt: int) -> str:
        """Key of one attempt's log: runs/<run_id>/logs/attempt-0001.log."""
        if not isinstance(attempt, int) or attempt < 1:
            raise _LayoutError(f"attempt must be a positive integer, got {attempt!r}")
        return f"{self.logs_prefix}attempt-{attempt:04d}.log"

    def boot_log_key(self, instance_id: str) -> str:
        """Key of an instance's bootstrap log, uploaded when its boot fails: runs/<run_id>/logs/boot-<id>.log."""
        return f"{self.logs_prefix}boot-{_relative(instance_id or 'unknown')}.log"

    def boot_log_stream(self, instance_id: str) -> str:
        """CloudWatch Logs stream of an instance's bootstrap log: <run_id>/boot-<instance-id>."""
        return f"{self.run_id}/boot-{instance_id}"

    def log_stream(self, attempt: int) -> str:
        """CloudWatch Logs stream name of one attempt: <run_id>/attempt-0001."""
        return f"{self.run_id}/{self.log_key(attempt).rsplit('/', 1)[1][: -len('.log')]}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @classmethod
    def from_key(cls, bucket: str, key: str) -> "RunLayout":
        """The layout a key belongs to, e.g. from_key(b, "runs/r1/status.json")."""
        parts = key.split("/")
        if len(parts) < 3 or parts[0] + "/" != RUNS_PREFIX:
            raise _LayoutError(f"key {key!r} is not under {RUNS_PREFIX}<run-id>/")
        return cls(bucket, parts[1])


def _relative(name: str) -> str:
    name = name.replace("\\", "/").lstrip("/")
    if not name or any(part in ("", ".", "..") for part in name.split("/")):
        raise _LayoutError(f"file name {name!r} is invalid: give a relative path without '.' or '..' parts")
    return name


def list_run_ids(s3: Any, bucket: str) -> list[str]:
    """Run ids that have anything under runs/ in the bucket, sorted."""
    run_ids: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=RUNS_PREFIX, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            run_id = common["Prefix"][len(RUNS_PREFIX):].rstrip("/")
            if RUN_ID_PATTERN.fullmatch(run_id):
                run_ids.append(run_id)
    return sorted(run_ids)
