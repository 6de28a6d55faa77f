"""The runner's env file and settings."""
import shlex
from pathlib import Path

import pytest

from training.cloud.core import env as env_keys
from training.cloud.run_settings import load_settings, parse_env_file
from training.errors import ConfigError


def write_env(path: Path, **values: str) -> Path:
    """An env file of these keys, named as in core/env.py (RUN_ID=... writes SPOTGRADE_RUN_ID=...)."""
    path.write_text("".join(f"{getattr(env_keys, k)}={shlex.quote(v)}\n" for k, v in values.items()))
    return path


def test_env_file_round_trip(tmp_path):
    env = write_env(tmp_path / "run.env", RUN_ID="r-1", BUCKET="spotgrade-b", DATA_URI="s3://spotgrade-b/data/x.csv",
                    TRAIN_ARGS="--epochs 5 --hidden-units '64,32'", MAX_RUNTIME_HOURS="1.5", ASG_NAME="grp",
                    LOG_GROUP="/spotgrade/runs", CAPACITY="on-demand", TOPIC_ARN="")
    s = load_settings(env, environ={env_keys.METADATA_URL: "http://127.0.0.1:9/", env_keys.RUN_ID: "ignored"})
    assert s.run_id == "r-1" and s.bucket == "spotgrade-b"
    assert s.train_args == ("--epochs", "5", "--hidden-units", "64,32")
    assert s.max_runtime_hours == 1.5 and s.asg_name == "grp" and s.log_group == "/spotgrade/runs"
    assert s.capacity == "on-demand" and s.topic_arn is None
    assert s.metadata_url == "http://127.0.0.1:9"
    assert s.layout.status_key == "runs/r-1/status.json"
    assert s.heartbeat_seconds == 60 and s.notice_poll_seconds == 5


def test_comments_and_quoting(tmp_path):
    env = tmp_path / "e"
    env.write_text("# written by user data\n\nSPOTGRADE_TRAIN_ARGS='--sample 100'\nSPOTGRADE_X=\n")
    assert parse_env_file(env) == {"SPOTGRADE_TRAIN_ARGS": "--sample 100", "SPOTGRADE_X": ""}


@pytest.mark.parametrize("line, match", [
    ("no equals sign", "expected KEY=VALUE"),
    ("SPOTGRADE_RUN_ID=two words", "one shell-quoted value"),
    ("SPOTGRADE_RUN_ID='open", "badly quoted"),
])
def test_bad_lines(tmp_path, line, match):
    env = tmp_path / "e"
    env.write_text(line + "\n")
    with pytest.raises(ConfigError, match=match):
        parse_env_file(env)


@pytest.mark.parametrize("values, match", [
    ({"BUCKET": "b-1"}, "SPOTGRADE_RUN_ID is not set"),
    ({"RUN_ID": "r", "BUCKET": "b-1", "MAX_RUNTIME_HOURS": "soon"}, "MAX_RUNTIME_HOURS"),
    ({"RUN_ID": "r", "BUCKET": "b-1", "MAX_RUNTIME_HOURS": "-1"}, "MAX_RUNTIME_HOURS"),
    ({"RUN_ID": "r", "BUCKET": "b-1", "CAPACITY": "reserved"}, "CAPACITY"),
    ({"RUN_ID": "r", "BUCKET": "b-1", "DATA_URI": "/local/file.csv"}, "DATA_URI"),
    ({"RUN_ID": "r/../x", "BUCKET": "b-1"}, "run id"),
])
def test_bad_settings(tmp_path, values, match):
    with pytest.raises(ConfigError, match=match):
        load_settings(write_env(tmp_path / "e", **values), environ={})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read env file"):
        load_settings(tmp_path / "absent.env", environ={})


def test_the_environment_fills_what_the_file_lacks(tmp_path):
    environ = {env_keys.RUN_ID: "r-9", env_keys.BUCKET: "spotgrade-e", env_keys.TEST_STALL_AT_EPOCH: "2",
               env_keys.MAX_ATTEMPTS: "4", "OTHER": "x"}
    s = load_settings(None, environ=environ)
    assert (s.run_id, s.bucket, s.test_stall_at_epoch, s.max_attempts) == ("r-9", "spotgrade-e", 2, 4)
    assert load_settings(write_env(tmp_path / "e", RUN_ID="r-1"), environ=environ).run_id == "r-1"


@pytest.mark.parametrize("key, value, match", [
    ("MAX_ATTEMPTS", "0", "SPOTGRADE_MAX_ATTEMPTS='0' in the environment: expected a whole number >= 1"),
    ("TEST_STALL_AT_EPOCH", "-1", "SPOTGRADE_TEST_STALL_AT_EPOCH='-1' in the environment: expected a whole number"),
    ("HEARTBEAT_SECONDS", "inf", "SPOTGRADE_HEARTBEAT_SECONDS='inf' in the environment: expected a number above 0"),
    ("TRAIN_ARGS", "--data 'open", "SPOTGRADE_TRAIN_ARGS in the environment is badly quoted"),
])
def test_bad_values_name_the_key_and_the_source(key, value, match):
    environ = {env_keys.RUN_ID: "r-9", env_keys.BUCKET: "spotgrade-e", getattr(env_keys, key): value}
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ=environ)
    assert str(info.value).startswith(match)


def test_the_code_deployed(tmp_path):
    """gitRef, the commit it named at synth and allowUnpushedCode reach the runner (recorded in status.json)."""
    commit = "0123456789abcdef0123456789ABCDEF01234567"
    s = load_settings(write_env(tmp_path / "e", RUN_ID="r", BUCKET="b-1", GIT_REF="main", GIT_COMMIT=commit,
                                ALLOW_UNPUSHED_CODE="true"), environ={})
    assert (s.git_ref, s.git_commit, s.allow_unpushed_code) == ("main", commit.lower(), True)
    s = load_settings(write_env(tmp_path / "e", RUN_ID="r", BUCKET="b-1", GIT_REF="main", GIT_COMMIT="",
                                ALLOW_UNPUSHED_CODE="false"), environ={})
    assert (s.git_ref, s.git_commit, s.allow_unpushed_code) == ("main", None, False)
    with pytest.raises(ConfigError, match="SPOTGRADE_GIT_COMMIT='main' in .*: expected a full commit id"):
        load_settings(write_env(tmp_path / "e", RUN_ID="r", BUCKET="b-1", GIT_COMMIT="main"), environ={})
