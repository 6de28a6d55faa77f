"""Billable time and estimated cost of a run's attempts, from the spot price at launch.

EC2 bills Linux instances per second with a one-minute minimum; an attempt's estimated cost is its
billable seconds times the price ($/hour) recorded at launch (`spot_price`, or looked up from the
spot price history). Standard library only (plus a boto3 client passed in): the watchdog Lambda,
deployed from this folder, uses it too.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

MINIMUM_BILLED_SECONDS = 60
PRODUCT = "Linux/UNIX"


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def billable_seconds(attempt: dict, now: datetime) -> int | None:
    """Seconds from started_at to ended_at (or now, while it runs), at least 60; None without a start."""
    started = _parse(attempt.get("started_at"))
    if started is None:
        return None
    ended = _parse(attempt.get("ended_at")) or now
    return max(MINIMUM_BILLED_SECONDS, int((ended - started).total_seconds()))


def attempt_cost(attempt: dict, now: datetime, price: float | None = None) -> float | None:
    """Estimated cost in dollars of one attempt; None where its price or start is unknown."""
    price = attempt.get("spot_price") if price is None else price
    seconds = billable_seconds(attempt, now)
    if price is None or seconds is None:
        return None
    return float(price) * seconds / 3600.0


def close_attempt(attempt: dict, end_state: str, now: datetime) -> dict:
    """Mark an open attempt ended now (ended_at, end_state, billable_seconds, estimated_cost); returns it."""
    if not attempt.get("ended_at"):
        attempt["ended_at"] = _iso(now)
        attempt["end_state"] = end_state
    attempt["billable_seconds"] = billable_seconds(attempt, now)
    cost = attempt_cost(attempt, now)
    attempt["estimated_cost"] = None if cost is None else round(cost, 6)
    return attempt


def run_cost(status: dict, now: datetime, prices: dict[int, float] | None = None) -> tuple[int, float, int]:
    """(billable seconds, estimated dollars, attempts without a known price) over all attempts.

    `prices` maps attempt number -> $/hour for attempts whose status has no spot_price.
    """
    seconds, dollars, unpriced = 0, 0.0, 0
    for attempt in status.get("attempts") or []:
        seconds += billable_seconds(attempt, now) or 0
        price = attempt.get("spot_price")
        if price is None and prices:
            price = prices.get(attempt.get("attempt"))
        cost = attempt_cost(attempt, now, price)
        if cost is None:
            unpriced += 1
        else:
            dollars += cost
    return seconds, dollars, unpriced


def spot_price_at(ec2: Any, instance_type: str, availability_zone: str, when: datetime) -> float | None:
    """The spot price ($/hour) in effect at `when` for a Linux instance type in one AZ, or None."""
    response = ec2.describe_spot_price_history(
        InstanceTypes=[instance_type],
        AvailabilityZone=availability_zone,
        ProductDescriptions=[PRODUCT],
        StartTime=when - timedelta(hours=1),
        EndTime=when,
    )
    records = [r for r in response.get("SpotPriceHistory", [])
               if r.get("InstanceType") == instance_type and r.get("AvailabilityZone") == availability_zone]
    if not records:
        return None
    latest = max(records, key=lambda r: r["Timestamp"])
    return float(latest["SpotPrice"])
