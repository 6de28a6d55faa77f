"""spot_prices.py against moto: the one place the spot price history is asked."""
from __future__ import annotations

from datetime import datetime, timezone

from training.cloud import spot_prices


def history(ec2, instance_type: str) -> list[dict]:
    return ec2.describe_spot_price_history(InstanceTypes=[instance_type],
                                           ProductDescriptions=[spot_prices.PRODUCT])["SpotPriceHistory"]


def test_latest_prices_by_zone(aws):
    ec2 = aws.client("ec2")
    prices = spot_prices.latest_prices(ec2, "g5.xlarge", datetime.now(timezone.utc))
    expected = {}
    for record in sorted(history(ec2, "g5.xlarge"), key=lambda r: r["Timestamp"]):
        expected[record["AvailabilityZone"]] = float(record["SpotPrice"])
    assert prices == expected and list(prices) == sorted(prices)


def test_latest_price_and_price_at_one_zone(aws):
    ec2 = aws.client("ec2")
    zone = sorted(spot_prices.latest_prices(ec2, "c5.large", datetime.now(timezone.utc)))[0]
    latest = spot_prices.latest_price(ec2, "c5.large", zone)
    assert latest is not None and latest > 0
    assert spot_prices.spot_price_at(ec2, "c5.large", zone, datetime.now(timezone.utc)) == latest
    assert spot_prices.latest_price(ec2, "c5.large", "xx-nowhere-1a") is None


def test_records_of_other_types_and_zones_are_ignored():
    stamp = datetime(2026, 3, 1, tzinfo=timezone.utc)

    class Ec2:
        def describe_spot_price_history(self, **_):
            rows = [("g5.xlarge", "us-east-1a", "0.40", stamp),
                    ("g5.xlarge", "us-east-1a", "0.30", stamp.replace(hour=1)),
                    ("g5.xlarge", "us-east-1b", "0.10", stamp), ("g6.xlarge", "us-east-1a", "0.05", stamp)]
            return {"SpotPriceHistory": [{"InstanceType": t, "AvailabilityZone": z, "SpotPrice": p, "Timestamp": s}
                                         for t, z, p, s in rows]}

    assert spot_prices.spot_price_at(Ec2(), "g5.xlarge", "us-east-1a", stamp) == 0.30  # the newest
    assert spot_prices.latest_price(Ec2(), "g5.xlarge", "us-east-1b") == 0.10
