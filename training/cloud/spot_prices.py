"""EC2 spot prices ($/hour) of Linux instances, from the spot price history: the one place that asks for them.

`latest_price` (the runner, when an attempt starts), `spot_price_at` (`status`, for an attempt recorded without
one) and `latest_prices` (`estimate`, every AZ). Billing itself is core/billing.py's. `ec2` is a boto3 client.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable

PRODUCT = "Linux/UNIX"


def _latest_by_zone(records: Iterable[dict], instance_type: str) -> dict[str, float]:
    """{availability zone: its newest price} among price records of one instance type."""
    latest: dict[str, tuple[datetime, float]] = {}
    for record in records:
        if record.get("InstanceType") != instance_type:
            continue
        zone, stamp = record["AvailabilityZone"], record["Timestamp"]
        if zone not in latest or stamp > latest[zone][0]:
            latest[zone] = (stamp, float(record["SpotPrice"]))
    return {zone: price for zone, (_, price) in sorted(latest.items())}


def latest_price(ec2: Any, instance_type: str, availability_zone: str) -> float | None:
    """The current spot price of an instance type in one AZ, or None where there is none."""
    response = ec2.describe_spot_price_history(
        InstanceTypes=[instance_type], AvailabilityZone=availability_zone, ProductDescriptions=[PRODUCT],
        MaxResults=1)
    return _latest_by_zone(response.get("SpotPriceHistory", []), instance_type).get(availability_zone)


def spot_price_at(ec2: Any, instance_type: str, availability_zone: str, when: datetime) -> float | None:
    """The spot price in effect at `when` for an instance type in one AZ, or None."""
    response = ec2.describe_spot_price_history(
        InstanceTypes=[instance_type], AvailabilityZone=availability_zone, ProductDescriptions=[PRODUCT],
        StartTime=when - timedelta(hours=1), EndTime=when)
    return _latest_by_zone(response.get("SpotPriceHistory", []), instance_type).get(availability_zone)


def latest_prices(ec2: Any, instance_type: str, now: datetime) -> dict[str, float]:
    """{availability zone: latest spot price} for one instance type over the last day."""
    pages = ec2.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=[instance_type], ProductDescriptions=[PRODUCT], StartTime=now - timedelta(days=1), EndTime=now)
    return _latest_by_zone((record for page in pages for record in page["SpotPriceHistory"]), instance_type)
