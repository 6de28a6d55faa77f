"""Spot prices: the price ($/hour) in effect when an attempt launched, from the EC2 spot price history.

Billing (billable seconds, estimated cost) is training/cloud/lifecycle.py's. Standard library only (plus a
boto3 client passed in).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

PRODUCT = "Linux/UNIX"


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
