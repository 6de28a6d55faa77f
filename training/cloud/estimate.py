"""`estimate`: the expected cost of the configured run before deploying it.

Recent EC2 spot prices for each configured instance type in every AZ of the region, times the expected
hours: `maxRuntimeHours`, or epochs / a measured epochs-per-hour figure (capped by maxRuntimeHours).
The settings are read and validated by the code synth uses (preflight.read_deploy_settings: unknown keys,
every value, trainArgs through train's own parser) before any AWS call; the training package never imports the
CDK app.
"""
from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

from training.cloud.core.settings import RunConfig
from training.cloud.preflight import read_deploy_settings
from training.cloud.spot_prices import latest_prices
from training.cloud.stack_outputs import aws_errors
from training.train_flags import parse_train_flags, run_setting


def epochs_from(train_args: str, data_uri: str = "") -> int:
    """The epochs trainArgs asks for (as train parses them: `--epochs N`, `--epochs=N`, `--epoch N`), else
    the preset's train would choose (with ``data_uri``, or --data, the real-data default)."""
    parsed = parse_train_flags(shlex.split(train_args))
    if data_uri:
        parsed.data = [data_uri]
    return run_setting(parsed, "epochs")


def expected_hours(config: RunConfig, *, hours: float | None = None,
                   epochs_per_hour: float | None = None) -> tuple[float, str]:
    """(hours, how they were worked out)."""
    cap = config.max_runtime_hours
    if hours is not None:
        return hours, f"{hours:g} h (--hours)"
    if epochs_per_hour:
        epochs = epochs_from(config.train_args, config.data_uri)
        needed = epochs / epochs_per_hour
        if needed < cap:
            return needed, f"{needed:.2f} h ({epochs} epochs at {epochs_per_hour:g} epochs/hour)"
        return cap, f"{cap:g} h (maxRuntimeHours; {epochs} epochs at {epochs_per_hour:g}/h would take {needed:.1f} h)"
    return cap, f"{cap:g} h (maxRuntimeHours, the most the run can last)"


def _row(instance_type: str, prices: dict[str, float], cap: float | None, run_hours: float) -> dict:
    usable = [p for p in prices.values() if cap is None or p <= cap]
    low, high = (min(usable), max(usable)) if usable else (None, None)
    return {"instance_type": instance_type, "prices": prices, "min_price": low, "max_price": high,
            "hours": run_hours,
            "cost_low": None if low is None else low * run_hours,
            "cost_high": None if high is None else high * run_hours}


@dataclass(frozen=True)
class Estimate:
    """What `estimate` found: per instance type (`_row`), the spot prices by AZ and the expected cost range."""

    rows: list[dict]
    hours: float
    how: str  # how the hours were worked out
    region: Optional[str]
    capacity: str
    max_spot_price: Optional[float]


def estimate_lines(found: Estimate) -> list[str]:
    """The table `estimate` prints."""
    region, cap = found.region or "this region", found.max_spot_price
    lines = [f"expected run time: {found.how}",
             f"{'INSTANCE TYPE':<16} {'AZS':>3}  {'SPOT $/HOUR (MIN - MAX)':<25} EXPECTED COST"]
    for r in found.rows:
        if r["min_price"] is None:
            why = "no spot price in " + region if not r["prices"] else f"every AZ above maxSpotPrice={cap:g}"
            lines.append(f"{r['instance_type']:<16} {len(r['prices']):>3}  {why}")
            continue
        lines.append(f"{r['instance_type']:<16} {len(r['prices']):>3}  {r['min_price']:.4f} - "
                     f"{r['max_price']:<15.4f} ${r['cost_low']:,.2f} - ${r['cost_high']:,.2f}")
    if found.capacity == "on-demand":
        lines.append("note: capacity=on-demand bills the on-demand price, not these spot prices")
    else:
        lines.append("the group picks the pool with the best price and capacity (price-capacity-optimized): "
                     "expect the low end; interruptions add a few minutes each")
    return lines


def estimate_json(found: Estimate) -> dict:
    """`estimate --json`: the same facts, numbers as numbers (None where no price is known)."""
    return {"region": found.region, "hours": found.hours, "hours_from": found.how, "capacity": found.capacity,
            "max_spot_price": found.max_spot_price, "instance_types": found.rows}


def estimate(session: Any, context: Mapping[str, Any], *, hours: float | None = None,
             epochs_per_hour: float | None = None, now: datetime | None = None) -> Estimate:
    """Per configured instance type, the spot price range across AZs and the expected cost.

    `context` is what core.context.load_context returns; it is validated as synth validates it (no gitRef
    lookup: the cost does not depend on it), before any AWS call.
    """
    config = read_deploy_settings(context, repo_dir=None, resolve=None)
    now = now or datetime.now(timezone.utc)
    run_hours, how = expected_hours(config, hours=hours, epochs_per_hour=epochs_per_hour)
    with aws_errors("estimate"):
        ec2 = session.client("ec2")
        rows = [_row(t, latest_prices(ec2, t, now), config.max_spot_price, run_hours) for t in config.instance_types]
    return Estimate(rows, run_hours, how, getattr(session, "region_name", None), config.capacity,
                    config.max_spot_price)
