"""`estimate`: the expected cost of the configured run before deploying it.

Recent EC2 spot prices for each configured instance type in every AZ of the region, times the expected
hours: `maxRuntimeHours`, or epochs / a measured epochs-per-hour figure (capped by maxRuntimeHours).
The configured values come from cdk.json's "context" plus `-c key=value` overrides, read as plain JSON
(the training package never imports the CDK app).
"""
from __future__ import annotations

import json
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from training.cloud.costs import PRODUCT
from training.cloud.stack_outputs import aws_errors
from training.errors import ConfigError

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"
# Mirrors stacks/config.py DEFAULTS for the keys read here (a test checks they agree).
DEFAULTS: dict[str, Any] = {
    "stackName": "Spotgrade",
    "instanceTypes": ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"],
    "capacity": "spot",
    "maxSpotPrice": None,
    "maxRuntimeHours": 8,
    "trainArgs": "",
}
DEFAULT_EPOCHS = 30  # training.train.TrainConfig.epochs
Out = Callable[[str], None]


def load_context(overrides: Sequence[str] = (), cdk_json: Path | None = CDK_JSON) -> dict[str, Any]:
    """DEFAULTS, overlaid with cdk.json's "context", overlaid with `key=value` overrides (as `cdk -c`)."""
    context = dict(DEFAULTS)
    if cdk_json is not None and cdk_json.exists():
        try:
            context.update(json.loads(cdk_json.read_text()).get("context", {}))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{cdk_json}: not valid JSON ({error.msg} at line {error.lineno}); fix the file") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"-c {item!r}: expected key=value, e.g. -c maxRuntimeHours=4")
        context[key.strip()] = value
    return context


def instance_types(context: dict[str, Any]) -> list[str]:
    raw = context.get("instanceTypes")
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip().startswith("[") else [p.strip() for p in raw.split(",") if p.strip()]
    if not raw or not all(isinstance(t, str) for t in raw):
        raise ConfigError(f"context key 'instanceTypes': {raw!r} is not a list of instance types such as g5.xlarge")
    return list(raw)


def _float(context: dict[str, Any], key: str) -> float | None:
    raw = context.get(key)
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"context key '{key}': {raw!r} is not a number") from None


def epochs_from(context: dict[str, Any]) -> int:
    """The --epochs in trainArgs, else the training default."""
    tokens = shlex.split(str(context.get("trainArgs") or ""))
    for i, token in enumerate(tokens):
        if token == "--epochs" and i + 1 < len(tokens):
            return int(tokens[i + 1])
        if token.startswith("--epochs="):
            return int(token.split("=", 1)[1])
    return DEFAULT_EPOCHS


def expected_hours(context: dict[str, Any], *, hours: float | None = None,
                   epochs_per_hour: float | None = None) -> tuple[float, str]:
    """(hours, how they were worked out)."""
    cap = _float(context, "maxRuntimeHours") or float(DEFAULTS["maxRuntimeHours"])
    if hours is not None:
        return hours, f"{hours:g} h (--hours)"
    if epochs_per_hour:
        epochs = epochs_from(context)
        needed = epochs / epochs_per_hour
        if needed < cap:
            return needed, f"{needed:.2f} h ({epochs} epochs at {epochs_per_hour:g} epochs/hour)"
        return cap, f"{cap:g} h (maxRuntimeHours; {epochs} epochs at {epochs_per_hour:g}/h would take {needed:.1f} h)"
    return cap, f"{cap:g} h (maxRuntimeHours, the most the run can last)"


def latest_prices(ec2: Any, instance_type: str, now: datetime) -> dict[str, float]:
    """{availability zone: latest Linux spot price ($/hour)} for one instance type over the last day."""
    latest: dict[str, tuple[datetime, float]] = {}
    paginator = ec2.get_paginator("describe_spot_price_history")
    for page in paginator.paginate(InstanceTypes=[instance_type], ProductDescriptions=[PRODUCT],
                                   StartTime=now - timedelta(days=1), EndTime=now):
        for record in page["SpotPriceHistory"]:
            if record["InstanceType"] != instance_type:
                continue
            zone, stamp = record["AvailabilityZone"], record["Timestamp"]
            if zone not in latest or stamp > latest[zone][0]:
                latest[zone] = (stamp, float(record["SpotPrice"]))
    return {zone: price for zone, (_, price) in sorted(latest.items())}


def estimate(session: Any, context: dict[str, Any], *, hours: float | None = None,
             epochs_per_hour: float | None = None, out: Out = print, now: datetime | None = None) -> list[dict]:
    """Print and return, per configured instance type, the spot price range across AZs and the expected cost."""
    now = now or datetime.now(timezone.utc)
    run_hours, how = expected_hours(context, hours=hours, epochs_per_hour=epochs_per_hour)
    cap = _float(context, "maxSpotPrice")
    rows = []
    with aws_errors("estimate"):
        ec2 = session.client("ec2")
        for instance_type in instance_types(context):
            prices = latest_prices(ec2, instance_type, now)
            usable = [p for p in prices.values() if cap is None or p <= cap]
            low, high = (min(usable), max(usable)) if usable else (None, None)
            rows.append({"instance_type": instance_type, "prices": prices, "min_price": low, "max_price": high,
                         "hours": run_hours,
                         "cost_low": None if low is None else low * run_hours,
                         "cost_high": None if high is None else high * run_hours})
    region = getattr(session, "region_name", None) or "this region"
    out(f"expected run time: {how}")
    out(f"{'INSTANCE TYPE':<16} {'AZS':>3}  {'SPOT $/HOUR (MIN - MAX)':<25} EXPECTED COST")
    for r in rows:
        if r["min_price"] is None:
            why = "no spot price in " + region if not r["prices"] else f"every AZ above maxSpotPrice={cap:g}"
            out(f"{r['instance_type']:<16} {len(r['prices']):>3}  {why}")
            continue
        out(f"{r['instance_type']:<16} {len(r['prices']):>3}  {r['min_price']:.4f} - {r['max_price']:<15.4f} "
            f"${r['cost_low']:,.2f} - ${r['cost_high']:,.2f}")
    if str(context.get("capacity", "spot")) == "on-demand":
        out("note: capacity=on-demand bills the on-demand price, not these spot prices")
    else:
        out("the group picks the pool with the best price and capacity (price-capacity-optimized): "
            "expect the low end; interruptions add a few minutes each")
    return rows
