"""Run settings of the on-instance runner: the env file written by the user data, then the environment.

The env file holds one `KEY=VALUE` per line with shell-quoted values (see docs/architecture.md).
Keys missing from the file are taken from the process environment, so tests and manual runs can set
them there. Besides the contract's keys, a few optional ones tune the runner:

    SPOTGRADE_METADATA_URL         instance metadata endpoint (default http://169.254.169.254)
    SPOTGRADE_WORK_DIR             local working directory (default /var/lib/spotgrade)
    SPOTGRADE_HEARTBEAT_SECONDS    status.json heartbeat period (default 60)
    SPOTGRADE_NOTICE_POLL_SECONDS  spot interruption notice poll period (default 5)
    SPOTGRADE_LOG_FLUSH_SECONDS    CloudWatch Logs batch period (default 5)
    SPOTGRADE_REGION               AWS region (default: the instance metadata's region)
    SPOTGRADE_TEST_STALL_AT_EPOCH  test hook: training blocks at the start of this epoch (0-based), as a
                                   stuck input pipeline or GPU would (the rehearsal's hung run)
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from training.cloud.core.layout import RunLayout, validate_run_id
from training.cloud.core.lifecycle import DEFAULT_MAX_ATTEMPTS
from training.errors import ConfigError

PREFIX = "SPOTGRADE_"
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
    metadata_url: str = "http://169.254.169.254"
    work_dir: Path = Path("/var/lib/spotgrade")
    heartbeat_seconds: float = 60.0
    notice_poll_seconds: float = 5.0
    log_flush_seconds: float = 5.0
    region: str | None = None
    test_stall_at_epoch: int | None = None

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


def load_settings(env_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> RunSettings:
    """Settings from the env file, falling back to the environment for keys the file lacks."""
    values = {k: v for k, v in (os.environ if environ is None else environ).items() if k.startswith(PREFIX)}
    if env_file is not None:
        values.update(parse_env_file(env_file))
    source = str(env_file) if env_file else "the environment"

    def get(name: str, default: str = "") -> str:
        return values.get(PREFIX + name, default).strip()

    def number(name: str, default: float | None, minimum: float = 0.0) -> float | None:
        raw = get(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not value > minimum or value == float("inf"):
            raise ConfigError(f"{PREFIX}{name}={raw!r} in {source}: expected a number above {minimum:g}")
        return value

    run_id, bucket = get("RUN_ID"), get("BUCKET")
    for name, value in (("RUN_ID", run_id), ("BUCKET", bucket)):
        if not value:
            raise ConfigError(f"{PREFIX}{name} is not set in {source}: the user data must write it")
    try:
        validate_run_id(run_id)
        RunLayout(bucket, run_id)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    data_uri = get("DATA_URI")
    if data_uri and not data_uri.startswith("s3://"):
        raise ConfigError(f"{PREFIX}DATA_URI={data_uri!r} in {source}: expected s3://bucket/key or empty")
    def whole(name: str, default: int | None, minimum: int) -> int | None:
        raw = get(name)
        if not raw:
            return default
        if not raw.isdigit() or int(raw) < minimum:
            raise ConfigError(f"{PREFIX}{name}={raw!r} in {source}: expected a whole number >= {minimum}")
        return int(raw)

    capacity = get("CAPACITY", "spot")
    if capacity not in ("spot", "on-demand"):
        raise ConfigError(f"{PREFIX}CAPACITY={capacity!r} in {source}: expected spot or on-demand")
    try:
        train_args = tuple(shlex.split(get("TRAIN_ARGS")))
    except ValueError as error:
        raise ConfigError(f"{PREFIX}TRAIN_ARGS in {source} is badly quoted ({error})") from None
    return RunSettings(
        run_id=run_id,
        bucket=bucket,
        data_uri=data_uri,
        train_args=train_args,
        max_runtime_hours=number("MAX_RUNTIME_HOURS", None),
        max_attempts=whole("MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, 1),
        asg_name=get("ASG_NAME") or None,
        log_group=get("LOG_GROUP") or None,
        capacity=capacity,
        topic_arn=get("TOPIC_ARN") or None,
        metadata_url=(get("METADATA_URL") or RunSettings.metadata_url).rstrip("/"),
        work_dir=Path(get("WORK_DIR") or RunSettings.work_dir),
        heartbeat_seconds=number("HEARTBEAT_SECONDS", RunSettings.heartbeat_seconds),
        notice_poll_seconds=number("NOTICE_POLL_SECONDS", RunSettings.notice_poll_seconds),
        log_flush_seconds=number("LOG_FLUSH_SECONDS", RunSettings.log_flush_seconds),
        region=get("REGION") or None,
        test_stall_at_epoch=whole("TEST_STALL_AT_EPOCH", None, 0),
    )
