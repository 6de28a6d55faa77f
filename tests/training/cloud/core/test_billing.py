"""billing.py: billable seconds (one-minute minimum) and estimated dollars of attempts and runs."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.training.cloud.core.helpers import T0, at
from training.cloud.core import billing
from training.cloud.core.clock import iso


def test_billable_seconds_has_a_one_minute_minimum():
    attempt = {"started_at": iso(T0), "ended_at": iso(T0 + timedelta(seconds=10))}
    assert billing.billable_seconds(attempt, at(100)) == 60
    assert billing.billable_seconds({"started_at": iso(T0), "ended_at": None}, at(2)) == 120  # open: until now
    assert billing.billable_seconds({"started_at": iso(T0), "ended_at": iso(at(90))}, at(999)) == 5400
    assert billing.billable_seconds({"started_at": None}, T0) is None
    assert billing.MINIMUM_BILLED_SECONDS == 60


def test_attempt_cost_is_price_times_seconds():
    attempt = {"started_at": iso(T0), "ended_at": iso(at(30)), "spot_price": 0.5}
    assert billing.attempt_cost(attempt, at(99)) == pytest.approx(0.5 * 1800 / 3600)
    assert billing.attempt_cost(attempt, at(99), price=1.2) == pytest.approx(1.2 * 1800 / 3600)  # a price given wins
    assert billing.attempt_cost({**attempt, "spot_price": None}, at(99)) is None
    assert billing.attempt_cost({"started_at": None, "spot_price": 0.5}, at(99)) is None


def test_run_cost_over_attempts_with_a_price_fallback():
    status = {"attempts": [
        {"attempt": 1, "started_at": iso(T0), "ended_at": iso(at(60)), "spot_price": 0.3},
        {"attempt": 2, "started_at": iso(at(70)), "ended_at": iso(at(70.1)), "spot_price": None},
        {"attempt": 3, "started_at": iso(at(80)), "ended_at": None, "spot_price": None},
    ]}
    now = at(110)
    seconds, dollars, unpriced = billing.run_cost(status, now)
    assert (seconds, unpriced) == (3600 + 60 + 1800, 2)
    assert dollars == pytest.approx(0.3)
    seconds, dollars, unpriced = billing.run_cost(status, now, prices={2: 0.6, 3: 1.0})
    assert unpriced == 0 and dollars == pytest.approx(0.3 + 0.6 * 60 / 3600 + 1.0 * 0.5)
    assert billing.run_cost({}, now) == (0, 0.0, 0)


def test_bill_records_seconds_and_rounded_cost():
    attempt = {"started_at": iso(T0), "ended_at": iso(at(10)), "spot_price": 0.7200004}
    billing.bill(attempt, at(99))
    assert (attempt["billable_seconds"], attempt["estimated_cost"]) == (600, 0.12)
    unpriced = {"started_at": iso(T0), "ended_at": iso(at(1)), "spot_price": None}
    billing.bill(unpriced, at(99))
    assert (unpriced["billable_seconds"], unpriced["estimated_cost"]) == (60, None)
