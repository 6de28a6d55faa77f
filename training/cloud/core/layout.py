"""The S3 layout of the artifacts bucket: the one module that builds its keys.

    s3://<bucket>/runs/<run-id>/status.json      the run's state (what it holds: lifecycle.py)
    s3://<bucket>/runs/<run-id>/artifacts/       the run directory: model.keras, metrics.json, run.json, report.md,
                                                 PNGs, tensorboard/ (event files; `pull` mirrors it all)
    s3://<bucket>/runs/<run-id>/logs/            attempt-0001.log, ..., boot-<instance-id>.log
    s3://<bucket>/scratch/<run-id>/checkpoints/  Keras BackupAndRestore directory, mirrored
    s3://<bucket>/scratch/<run-id>/env/          <key>.tar.zst: the instance's packed Python environment
    s3://<bucket>/data/<file name>               data uploaded with `upload-data`

What a run keeps is under runs/; what only matters while it can still resume (GBs of checkpoints and packed
environments) is under scratch/, so that one lifecycle rule of the shared bucket (prefix SCRATCH_PREFIX) expires
it for every run, whatever its id.

`RunKeys` names a run's keys from its id alone (the stack, where the bucket is a deploy-time token);
`RunLayout` adds the bucket. Run ids and bucket names are validated here (their patterns: RUN_ID_PATTERN,
BUCKET_PATTERN).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from training.errors import ConfigError

RUNS_PREFIX = "runs/"
SCRATCH_PREFIX = "scratch/"
DATA_PREFIX = "data/"
STATUS_FILE = "status.json"
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
RUN_ID_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"


def validate_run_id(run_id: str) -> str:
    """Return run_id, or raise ConfigError naming the rule."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise ConfigError(f"run id {run_id!r} is invalid: use {RUN_ID_RULE}")
    return run_id


def data_key(name: str) -> str:
    """Key of an uploaded data file: data/<name>."""
    return DATA_PREFIX + _relative(name)


def run_id_from_prefix(prefix: Optional[str]) -> Optional[str]:
    """'s3://bucket/runs/<id>/' or 'runs/<id>/' -> '<id>'; None for anything else."""
    match = re.search(rf"(?:^|/){re.escape(RUNS_PREFIX)}([^/]+)/?$", prefix or "")
    return match.group(1) if match else None


class _Keys:
    """The keys under runs/<run_id>/ (mixed into RunKeys and RunLayout)."""

    run_id: str

    @property
    def prefix(self) -> str:
        return f"{RUNS_PREFIX}{self.run_id}/"

    @property
    def status_key(self) -> str:
        return self.prefix + STATUS_FILE

    @property
    def scratch_prefix(self) -> str:
        """What expires (checkpointExpiryDays after it was written): scratch/<run_id>/."""
        return f"{SCRATCH_PREFIX}{self.run_id}/"

    @property
    def checkpoints_prefix(self) -> str:
        return f"{self.scratch_prefix}checkpoints/"

    @property
    def artifacts_prefix(self) -> str:
        return f"{self.prefix}artifacts/"

    @property
    def logs_prefix(self) -> str:
        return f"{self.prefix}logs/"

    @property
    def env_prefix(self) -> str:
        """Packed Python environments of the run's instances, keyed by their requirements (see user_data.sh)."""
        return f"{self.scratch_prefix}env/"

    def artifact_key(self, name: str) -> str:
        """Key of an artifact file, e.g. artifact_key("model.keras")."""
        return self.artifacts_prefix + _relative(name)

    def checkpoint_key(self, relative_path: str) -> str:
        """Key of a file of the local checkpoint directory, given its path relative to that directory."""
        return self.checkpoints_prefix + _relative(relative_path)

    def log_key(self, attempt: int) -> str:
        """Key of one attempt's log: runs/<run_id>/logs/attempt-0001.log."""
        if not isinstance(attempt, int) or attempt < 1:
            raise ConfigError(f"attempt must be a positive integer, got {attempt!r}")
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


@dataclass(frozen=True)
class RunKeys(_Keys):
    """Keys of one run, without its bucket."""

    run_id: str

    def __post_init__(self) -> None:
        validate_run_id(self.run_id)


@dataclass(frozen=True)
class RunLayout(_Keys):
    """Keys of one run in the artifacts bucket."""

    bucket: str
    run_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not BUCKET_PATTERN.fullmatch(self.bucket):
            raise ConfigError(f"bucket name {self.bucket!r} is invalid: use 3-63 lowercase letters, digits, '.' or '-'")
        validate_run_id(self.run_id)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @classmethod
    def from_key(cls, bucket: str, key: str) -> "RunLayout":
        """The layout a key belongs to, e.g. from_key(b, "runs/r1/status.json")."""
        parts = key.split("/")
        if len(parts) < 3 or parts[0] + "/" != RUNS_PREFIX:
            raise ConfigError(f"key {key!r} is not under {RUNS_PREFIX}<run-id>/")
        return cls(bucket, parts[1])


def _relative(name: str) -> str:
    name = name.replace("\\", "/").lstrip("/")
    if not name or any(part in ("", ".", "..") for part in name.split("/")):
        raise ConfigError(f"file name {name!r} is invalid: give a relative path without '.' or '..' parts")
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
