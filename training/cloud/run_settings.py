"""The on-instance runner's settings: the env file written by the user data, then the environment.

The env file holds one `KEY=VALUE` per line with shell-quoted values (see docs/architecture.md); the keys are
training/cloud/core/env.py's. Keys missing from the file are taken from the process environment, so tests
and manual runs can set them there. Besides the run's keys, a few optional ones tune the runner (defaults in
RunSettings): METADATA_URL (instance metadata endpoint), WORK_DIR (local working directory),
HEARTBEAT_SECONDS, NOTICE_POLL_SECONDS (spot notice poll), LOG_FLUSH_SECONDS (CloudWatch Logs batches),
REGION (default: the instance metadata's), the code deployed (GIT_REF, GIT_COMMIT, ALLOW_UNPUSHED_CODE: recorded in
status.json and run.json) and the test hook TEST_STALL_AT_EPOCH (training blocks at the
start of that epoch, 0-based, as a stuck input pipeline or GPU would: the rehearsal's hung run).
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from training.cloud.core import env, imds
from training.cloud.core.layout import RunLayout, validate_run_id
from training.cloud.core.lifecycle import DEFAULT_MAX_ATTEMPTS
from training.cloud.core.settings import CAPACITY_MODES, FULL_COMMIT
from training.errors import ConfigError

_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class RunSettings:
    run_id: str
    bucket: str
    data_uri: str = ""
    train_args: tuple[str, ...] = ()
    max_runtime_hours: float | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    asg_name: str | None = None
    log_group: str | None = None
    capacity: str = "spot"
    topic_arn: str | None = None
    metadata_url: str = imds.DEFAULT_URL
    work_dir: Path = Path("/var/lib/spotgrade")
    heartbeat_seconds: float = 60.0
    notice_poll_seconds: float = 5.0
    log_flush_seconds: float = 5.0
    region: str | None = None
    test_stall_at_epoch: int | None = None
    git_ref: str | None = None             # the gitRef deployed
    git_commit: str | None = None          # the commit it named at synth, which the user data checked out
    allow_unpushed_code: bool = False      # the pre-flight's override was set

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.bucket, self.run_id)


def parse_env_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines (values shell-quoted) into a dict; blank lines and # comments are skipped."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read env file {path}: {error.strerror or error}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line[:60]!r}")
        try:
            tokens = shlex.split(raw)
        except ValueError as error:
            raise ConfigError(f"{path}:{number}: {key} has a badly quoted value ({error})") from None
        if len(tokens) > 1:
            raise ConfigError(f"{path}:{number}: {key} must be one shell-quoted value, got {len(tokens)} words")
        values[key] = tokens[0] if tokens else ""
    return values


class _Values:
    """The settings' raw values, read as text, numbers and whole numbers; errors name the key and the source."""

    def __init__(self, values: Mapping[str, str], source: str) -> None:
        self.values, self.source = values, source

    def text(self, key: str, default: str = "") -> str:
        return self.values.get(key, default).strip()

    def optional(self, key: str) -> str | None:
        return self.text(key) or None

    def number(self, key: str, default: float | None, minimum: float = 0.0) -> float | None:
        raw = self.text(key)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not value > minimum or value == float("inf"):
            raise ConfigError(f"{key}={raw!r} in {self.source}: expected a number above {minimum:g}")
        return value

    def whole(self, key: str, default: int | None, minimum: int) -> int | None:
        raw = self.text(key)
        if not raw:
            return default
        if not raw.isdigit() or int(raw) < minimum:
            raise ConfigError(f"{key}={raw!r} in {self.source}: expected a whole number >= {minimum}")
        return int(raw)


def load_settings(env_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> RunSettings:
    """Settings from the env file, falling back to the environment for keys the file lacks."""
    values = {k: v for k, v in (os.environ if environ is None else environ).items() if k.startswith(env.PREFIX)}
    if env_file is not None:
        values.update(parse_env_file(env_file))
    read = _Values(values, str(env_file) if env_file else "the environment")
    run_id, bucket = _run_location(read)
    data_uri, capacity, train_args = _data_uri(read), _capacity(read), _train_args(read)
    return RunSettings(
        run_id=run_id,
        bucket=bucket,
        data_uri=data_uri,
        train_args=train_args,
        max_runtime_hours=read.number(env.MAX_RUNTIME_HOURS, None),
        max_attempts=read.whole(env.MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS, 1),
        asg_name=read.optional(env.ASG_NAME),
        log_group=read.optional(env.LOG_GROUP),
        capacity=capacity,
        topic_arn=read.optional(env.TOPIC_ARN),
        metadata_url=(read.text(env.METADATA_URL) or RunSettings.metadata_url).rstrip("/"),
        work_dir=Path(read.text(env.WORK_DIR) or RunSettings.work_dir),
        heartbeat_seconds=read.number(env.HEARTBEAT_SECONDS, RunSettings.heartbeat_seconds),
        notice_poll_seconds=read.number(env.NOTICE_POLL_SECONDS, RunSettings.notice_poll_seconds),
        log_flush_seconds=read.number(env.LOG_FLUSH_SECONDS, RunSettings.log_flush_seconds),
        region=read.optional(env.REGION),
        test_stall_at_epoch=read.whole(env.TEST_STALL_AT_EPOCH, None, 0),
        git_ref=read.optional(env.GIT_REF),
        git_commit=_git_commit(read),
        allow_unpushed_code=read.text(env.ALLOW_UNPUSHED_CODE).lower() == "true",
    )


def _run_location(read: _Values) -> tuple[str, str]:
    """The run id and bucket, both required and valid."""
    run_id, bucket = read.text(env.RUN_ID), read.text(env.BUCKET)
    for key, value in ((env.RUN_ID, run_id), (env.BUCKET, bucket)):
        if not value:
            raise ConfigError(f"{key} is not set in {read.source}: the user data must write it")
    try:
        validate_run_id(run_id)
        RunLayout(bucket, run_id)
    except ConfigError as error:
        raise ConfigError(f"{read.source}: {error}") from None
    return run_id, bucket


def _data_uri(read: _Values) -> str:
    data_uri = read.text(env.DATA_URI)
    if data_uri and not data_uri.startswith("s3://"):
        raise ConfigError(f"{env.DATA_URI}={data_uri!r} in {read.source}: expected s3://bucket/key or empty")
    return data_uri


def _capacity(read: _Values) -> str:
    capacity = read.text(env.CAPACITY, "spot")
    if capacity not in CAPACITY_MODES:
        raise ConfigError(f"{env.CAPACITY}={capacity!r} in {read.source}: expected spot or on-demand")
    return capacity


def _git_commit(read: _Values) -> str | None:
    commit = read.optional(env.GIT_COMMIT)
    if commit is not None and not FULL_COMMIT.fullmatch(commit):
        raise ConfigError(f"{env.GIT_COMMIT}={commit!r} in {read.source}: expected a full commit id (40 hex digits) "
                          "or empty")
    return commit.lower() if commit else None


def _train_args(read: _Values) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(read.text(env.TRAIN_ARGS)))
    except ValueError as error:
        raise ConfigError(f"{env.TRAIN_ARGS} in {read.source} is badly quoted ({error})") from None
