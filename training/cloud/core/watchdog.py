"""Watchdog Lambda: no instance keeps billing after its run has ended, run out of time, or hung.

Runs on an EventBridge schedule (every few minutes) and enforces out of band what the instance might
fail to do. It scales the run's Auto Scaling group to 0, records why in status.json, and notifies:

- terminal: status.json says SUCCEEDED/FAILED/STOPPED but the group still has capacity;
- timed out: more than SPOTGRADE_MAX_RUNTIME_HOURS (+ a grace) since the first attempt started
  (or since the group was created, where no attempt has started) -> STOPPED;
- hung: an instance is running but training has not advanced: no heartbeat (the runner beats only when a
  batch or epoch advanced) for SPOTGRADE_HEARTBEAT_MINUTES, and the newest instance launched more than
  SPOTGRADE_BOOT_GRACE_MINUTES ago (installing the GPU stack takes a while) -> HUNG.

A healthy run is left alone. Settings come from environment variables (see `Settings.from_env`); status.json
changes go through lifecycle.py and status_store.py. The Lambda's handler is `training.cloud.core.watchdog.handler`
(boto3 is the Lambda runtime's).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from training.cloud.core import env as keys
from training.cloud.core import layout, lifecycle, notify
from training.cloud.core.clock import iso, parse_time
from training.cloud.core.status_store import StatusStore


@dataclass(frozen=True)
class Settings:
    bucket: str
    run_id: str
    asg_name: str
    max_runtime_hours: float
    heartbeat_minutes: float = 15.0
    boot_grace_minutes: float = 30.0
    timeout_grace_minutes: float = 10.0
    topic_arn: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        return cls(
            bucket=env[keys.BUCKET],
            run_id=env[keys.RUN_ID],
            asg_name=env[keys.ASG_NAME],
            max_runtime_hours=float(env[keys.MAX_RUNTIME_HOURS]),
            heartbeat_minutes=float(env.get(keys.HEARTBEAT_MINUTES) or 15),
            boot_grace_minutes=float(env.get(keys.BOOT_GRACE_MINUTES) or 30),
            timeout_grace_minutes=float(env.get(keys.TIMEOUT_GRACE_MINUTES) or 10),
            topic_arn=env.get(keys.TOPIC_ARN) or None,
        )


def _group(autoscaling: Any, name: str) -> dict | None:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0] if groups else None


def _newest_launch(ec2: Any, instance_ids: list[str]) -> datetime | None:
    if not instance_ids:
        return None
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    times = [parse_time(i.get("LaunchTime")) for r in reservations for i in r["Instances"]]
    return max((t for t in times if t), default=None)


def _run_started(status: dict | None, group: dict) -> datetime | None:
    attempts = (status or {}).get("attempts") or []
    starts = [parse_time(a.get("started_at")) for a in attempts]
    return min((t for t in starts if t), default=None) or parse_time(group.get("CreatedTime"))


def _last_alive(status: dict | None) -> datetime | None:
    if not status:
        return None
    times = [parse_time(status.get("heartbeat_at")), parse_time(status.get("updated_at"))]
    times += [parse_time(a.get("started_at")) for a in status.get("attempts") or []]
    return max((t for t in times if t), default=None)


def decide(status: dict | None, group: dict, newest_launch: datetime | None, settings: Settings,
           now: datetime) -> tuple[str, str, str] | None:
    """(event, new state, reason) when the group must go to 0, or None for a healthy run."""
    active = [i for i in group.get("Instances", []) if not i.get("LifecycleState", "").startswith("Terminat")]
    if not group.get("DesiredCapacity") and not active:
        return None  # nothing can bill
    state = (status or {}).get("state")
    if state in lifecycle.TERMINAL_STATES:
        return state, state, f"run is {state} but its group still had capacity; watchdog set it to 0"
    started = _run_started(status, group)
    limit = timedelta(hours=settings.max_runtime_hours, minutes=settings.timeout_grace_minutes)
    if started and now - started > limit:
        hours = (now - started).total_seconds() / 3600
        return ("TIMED_OUT", lifecycle.STOPPED,
                f"watchdog: run exceeded maxRuntimeHours={settings.max_runtime_hours:g} "
                f"({hours:.1f} h since it started); group set to 0, checkpoints kept")
    if active:
        deadlines = []
        if newest_launch:
            deadlines.append(newest_launch + timedelta(minutes=settings.boot_grace_minutes))
        alive = _last_alive(status)
        if alive:
            deadlines.append(alive + timedelta(minutes=settings.heartbeat_minutes))
        if deadlines and now > max(deadlines):
            since = iso(alive) if alive else "never"
            return ("HUNG", lifecycle.HUNG,
                    f"watchdog: training made no progress for {settings.heartbeat_minutes:g} minutes (last "
                    f"heartbeat {since}) while an instance was running; group set to 0, checkpoints kept "
                    "(`python -m training resume` restarts it)")
    return None


def check(s3: Any, autoscaling: Any, ec2: Any, sns: Any, settings: Settings, now: datetime | None = None) -> dict:
    """One watchdog pass; returns what it did: {"action": "none"|"scaled_to_zero", "event", "reason"}."""
    now = now or datetime.now(timezone.utc)
    store = StatusStore(s3, layout.RunLayout(settings.bucket, settings.run_id))
    group = _group(autoscaling, settings.asg_name)
    if group is None:
        return {"run_id": settings.run_id, "action": "none", "event": None, "reason": "group not found"}
    active_ids = [i["InstanceId"] for i in group.get("Instances", [])
                  if not i.get("LifecycleState", "").startswith("Terminat")]
    current = store.read()
    decision = decide(current, group, _newest_launch(ec2, active_ids), settings, now)
    if decision is None:
        return {"run_id": settings.run_id, "action": "none", "event": None, "reason": None}
    event, new_state, reason = decision
    autoscaling.set_desired_capacity(AutoScalingGroupName=settings.asg_name, DesiredCapacity=0, HonorCooldown=False)
    if lifecycle.is_terminal(current):  # the run had ended; only its capacity was left
        status = current
    else:
        _, status = store.change(lambda s: lifecycle.stop(s, run_id=settings.run_id, state=new_state,
                                                          reason=reason, now=now))
    notify.publish(sns, settings.topic_arn, settings.run_id, event, status, reason)
    return {"run_id": settings.run_id, "action": "scaled_to_zero", "event": event, "reason": reason}


def handler(event: dict, context: Any) -> dict:
    """Lambda entry point (EventBridge scheduled event)."""
    import boto3

    settings = Settings.from_env()
    result = check(boto3.client("s3"), boto3.client("autoscaling"), boto3.client("ec2"), boto3.client("sns"), settings)
    print(json.dumps(result))
    return result
