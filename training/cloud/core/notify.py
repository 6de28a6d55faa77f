"""Notifications about a run (a lifecycle state, or the watchdog's TIMED_OUT/HUNG events) to an SNS topic.

Standard library only (plus a boto3 SNS client passed in): the watchdog Lambda, the runner and the boot kit use it.
"""
from __future__ import annotations

from typing import Any

from training.cloud.core.headline import LINE_KEYS


def _headline(status: dict) -> list[str]:
    lines = []
    validation = status.get("validation") or {}
    for name in LINE_KEYS:
        if isinstance(validation.get(name), (int, float)):
            lines.append(f"  {name}: {validation[name]:.4f}")
    return lines


def format_message(run_id: str, event: str, status: dict | None, detail: str | None = None) -> tuple[str, str]:
    """(subject, body) of a notification; the subject stays under SNS's 100-character limit."""
    subject = f"spotgrade run {run_id}: {event}"[:100]
    status = status or {}
    body = [f"Run {run_id}: {event}"]
    if detail:
        body.append(detail)
    if status.get("state"):
        body.append(f"state: {status['state']}  attempt: {status.get('attempt')}")
    if status.get("epochs") is not None:
        body.append(f"epochs completed: {status.get('last_epoch')} of {status['epochs']}")
    if status.get("error"):
        body.append(f"error: {status['error']}")
    headline = _headline(status)
    if headline:
        body.append("latest validation metrics:")
        body.extend(headline)
    body.append(f"See: python -m training status --run-id {run_id}")
    return subject, "\n".join(body)


def publish(sns: Any, topic_arn: str | None, run_id: str, event: str, status: dict | None,
            detail: str | None = None) -> str | None:
    """Publish a notification when a topic is configured; returns the message id, or None without a topic."""
    if not topic_arn:
        return None
    subject, body = format_message(run_id, event, status, detail)
    return sns.publish(TopicArn=topic_arn, Subject=subject, Message=body)["MessageId"]
