"""clock.py: ISO-8601 times as the run's records write and read them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from training.cloud.core.clock import iso, parse_time, utc_now


def test_iso_is_whole_seconds_utc():
    moment = datetime(2026, 3, 1, 13, 0, 5, 987654, tzinfo=timezone(timedelta(hours=1)))
    assert iso(moment) == "2026-03-01T12:00:05Z"


def test_parse_time_reads_what_iso_writes_and_more():
    assert parse_time("2026-03-01T12:00:05Z") == datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)
    assert parse_time("2026-03-01T12:00:05") == datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)  # naive: UTC
    assert parse_time("2026-03-01T13:00:05+01:00") == datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)
    naive = datetime(2026, 3, 1, 12)
    assert parse_time(naive) == naive.replace(tzinfo=timezone.utc)  # boto3's LaunchTime may be either
    assert parse_time(None) is None and parse_time("") is None
    now = utc_now()
    assert now.tzinfo is not None and parse_time(iso(now)) == now.replace(microsecond=0)
