"""`estimate` against moto: spot prices times the expected hours, for settings read and validated by the code synth
uses, before any AWS call (a bad setting is refused even without credentials)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.cloud import estimate as est
from training.cloud.core.context import load_context
from training.cloud.core.settings import RunConfig
from training.errors import CloudError, ConfigError


def test_estimate_multiplies_spot_history_by_hours(aws, tmp_path):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"app": "python3 app.py", "context": {
        "instanceTypes": ["g4dn.xlarge", "g5.xlarge"], "maxRuntimeHours": 6}}))
    context = load_context(["maxRuntimeHours=4"], cdk_json)
    found = est.estimate(aws, context)
    rows = found.rows
    ec2 = aws.client("ec2")
    for row in rows:
        history = ec2.describe_spot_price_history(InstanceTypes=[row["instance_type"]],
                                                  ProductDescriptions=["Linux/UNIX"])["SpotPriceHistory"]
        by_zone = {}
        for record in sorted(history, key=lambda r: r["Timestamp"]):
            by_zone[record["AvailabilityZone"]] = float(record["SpotPrice"])
        assert by_zone, "moto returned no history"
        assert row["prices"] == by_zone
        assert row["hours"] == 4.0
        assert row["cost_low"] == pytest.approx(min(by_zone.values()) * 4)
        assert row["cost_high"] == pytest.approx(max(by_zone.values()) * 4)
    assert [r["instance_type"] for r in rows] == ["g4dn.xlarge", "g5.xlarge"]
    assert est.estimate_lines(found)[0] == "expected run time: 4 h (maxRuntimeHours, the most the run can last)"
    assert (found.hours, found.region, found.capacity) == (4.0, "us-east-1", "spot")


def test_expected_hours_from_epochs_per_hour():
    config = RunConfig.from_context(load_context(["trainArgs=--epochs 40", "maxRuntimeHours=8"], None).get)
    assert est.expected_hours(config, epochs_per_hour=20)[0] == pytest.approx(2.0)
    assert est.expected_hours(config, epochs_per_hour=2)[0] == 8.0  # capped
    assert est.expected_hours(config, hours=1.5)[0] == 1.5
    assert est.epochs_from("--features reference --epochs=12") == 12
    assert est.epochs_from("--epoch 7") == 7  # as train parses it (an abbreviation)
    assert est.epochs_from("") == 30  # train's default on the synthetic sample (preset sample)
    assert est.epochs_from("", "s3://b/data/loans.csv") == 100  # with data: preset tuned
    assert est.epochs_from("--data x.csv --preset reference") == 30


def test_estimate_validates_the_settings_as_the_stack_does(aws):
    """A value the stack would refuse is refused here too, before any AWS call (one line naming the key)."""
    with pytest.raises(ConfigError, match="context key 'maxRuntimeHours'"):
        est.estimate(aws, load_context(["maxRuntimeHours=eight"], None))
    with pytest.raises(ConfigError, match="context key 'instanceTypes'"):
        est.estimate(aws, load_context(["instanceTypes=g5.xlarge;reboot"], None))
    config = RunConfig.from_context(load_context(["instanceTypes=g5.xlarge, g6.xlarge"], None).get)
    assert config.instance_types == ("g5.xlarge", "g6.xlarge")
    with pytest.raises(ConfigError, match="^context key 'maxRuntimeHour' is unknown; did you mean 'maxRuntimeHours'"):
        est.estimate(aws, load_context(["maxRuntimeHour=3"], None))
    with pytest.raises(ConfigError, match="^context key 'trainArgs': '--epohcs 40' is not allowed; `python -m "
                                          "training train` says: unrecognized arguments: --epohcs 40"):
        est.estimate(aws, load_context(["trainArgs=--epohcs 40"], None))


def test_on_demand_and_price_cap_notes(aws):
    captured = est.estimate_lines(est.estimate(aws, load_context(["capacity=on-demand", "instanceTypes=g5.xlarge"],
                                                                 None)))
    assert captured[-1] == "note: capacity=on-demand bills the on-demand price, not these spot prices"
    found = est.estimate(aws, load_context(["maxSpotPrice=0.000001", "instanceTypes=g5.xlarge"], None))
    captured = est.estimate_lines(found)
    assert found.rows[0]["min_price"] is None and "every AZ above maxSpotPrice=1e-06" in captured[2]


def test_estimate_without_credentials_is_one_line(no_aws_credentials):
    import boto3

    with pytest.raises(CloudError, match="^estimate: no AWS credentials found"):
        est.estimate(boto3.Session(region_name="us-east-1"), load_context([], None))


ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("setting", "answer"), [
    ("maxRuntimeHours=-1", "error: context key 'maxRuntimeHours': '-1' is not allowed; expected a number of hours"),
    ("maxRuntimeHour=3", "error: context key 'maxRuntimeHour' is unknown; did you mean 'maxRuntimeHours'?"),
    ("trainArgs=--epochs abc", "error: context key 'trainArgs': '--epochs abc' is not allowed; "),
    (None, "error: estimate: no AWS credentials found"),  # valid settings: only now the credentials
])
def test_estimate_cli_refuses_a_bad_setting_before_looking_for_credentials(tmp_path, setting, answer):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_DEFAULT_REGION="us-east-1")
    args = [sys.executable, "-m", "training", "estimate", *(["-c", setting] if setting else [])]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(answer) and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
