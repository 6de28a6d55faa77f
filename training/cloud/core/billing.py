"""The one billing rule: billable seconds and estimated dollars of an attempt and of a whole run.

EC2 bills Linux per second with a one-minute minimum; an attempt's price ($/hour) is the spot price in effect
when it launched (status.json `spot_price`), where known.
"""
from __future__ import annotations

from datetime import datetime
from typing import Dict, Optional

from training.cloud.core.clock import parse_time

MINIMUM_BILLED_SECONDS = 60


def billable_seconds(attempt: dict, now: datetime) -> Optional[int]:
    """Seconds from started_at to ended_at (or now, while it runs), at least 60; None without a start."""
    started = parse_time(attempt.get("started_at"))
    if started is None:
        return None
    ended = parse_time(attempt.get("ended_at")) or now
    return max(MINIMUM_BILLED_SECONDS, int((ended - started).total_seconds()))


def attempt_cost(attempt: dict, now: datetime, price: Optional[float] = None) -> Optional[float]:
    """Estimated dollars of one attempt (price $/hour at launch); None where its price or start is unknown."""
    price = attempt.get("spot_price") if price is None else price
    seconds = billable_seconds(attempt, now)
    if price is None or seconds is None:
        return None
    return float(price) * seconds / 3600.0


def run_cost(status: dict, now: datetime, prices: Optional[Dict[int, float]] = None) -> tuple:
    """(billable seconds, estimated dollars, attempts without a known price) over all attempts.

    `prices` maps attempt number -> $/hour for attempts whose record has no spot_price.
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


def bill(attempt: dict, now: datetime) -> None:
    """Record a closed attempt's billable seconds and estimated cost in it."""
    attempt["billable_seconds"] = billable_seconds(attempt, now)
    cost = attempt_cost(attempt, now)
    attempt["estimated_cost"] = None if cost is None else round(cost, 6)
