"""The run-control commands: parser, --help, dispatch and one-line errors with exit 2."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from moto import mock_aws

from tests.training.cloud.moto_run import make_run, running_status, session
from training.cli import build_parser, main
from training.cloud import commands as cloud_commands
from training.commands import COMMANDS

COMMAND_NAMES = ("status", "logs", "pull", "stop", "resume", "upload-data", "runs", "estimate", "cleanup")


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: python -m training {name}" in capsys.readouterr().out


def test_arguments_parse():
    args = build_parser().parse_args(["logs", "--follow", "--stack", "Other", "--region", "eu-west-1"])
    assert (args.follow, args.stack, args.region) == (True, "Other", "eu-west-1")
    assert COMMANDS[args.command].run is cloud_commands._logs
    args = build_parser().parse_args(["estimate", "-c", "maxRuntimeHours=3", "-c", "instanceTypes=g5.xlarge",
                                      "--epochs-per-hour", "12"])
    assert args.context == ["maxRuntimeHours=3", "instanceTypes=g5.xlarge"] and args.epochs_per_hour == 12
    assert build_parser().parse_args(["cleanup"]).yes is False
    assert build_parser().parse_args(["upload-data", "x.csv"]).path == "x.csv"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["logs", "--poll", "0"])


@pytest.mark.parametrize("name", ["status", "logs", "pull", "stop", "resume"])
def test_every_run_command_takes_a_run_id(name, capsys):
    assert build_parser().parse_args([name, "--run-id", "lc-7"]).run_id == "lc-7"
    assert build_parser().parse_args([name]).run_id is None  # the newest run
    with pytest.raises(SystemExit):
        build_parser().parse_args([name, "--help"])
    assert "--run-id ID" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["upload-data", "runs"])
def test_commands_on_the_shared_stack_take_no_run_id(name):
    with pytest.raises(SystemExit):
        build_parser().parse_args([name, "x.csv", "--run-id", "lc-7"] if name == "upload-data" else
                                  [name, "--run-id", "lc-7"])


def test_stack_not_found_exits_2_with_one_line(aws_env, capsys):
    with mock_aws():
        assert main(["status", "--stack", "Missing", "--region", "us-east-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: stack 'Missing' not found") and err.count("\n") == 1


def test_no_credentials_exits_2_with_one_line(no_aws_credentials, capsys):
    for argv in (["runs", "--stack", "Spotgrade", "--region", "us-east-1"], ["estimate", "--region", "us-east-1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "no AWS credentials found" in err and err.count("\n") == 1


def test_unknown_profile_exits_2(capsys):
    assert main(["cleanup", "--profile", "no-such-profile-xyz"]) == 2
    assert "AWS profile 'no-such-profile-xyz' not found" in capsys.readouterr().err


def test_status_and_stop_through_the_cli(aws_env, capsys):
    with mock_aws():
        run = make_run(session())
        other = make_run(session(), run_id="run-2")
        for each in (run, other):
            each.put_status(running_status(each.run_id, datetime.now(timezone.utc)))
        assert main(["status", "--stack", "Spotgrade", "--run-id", "run-1", "--region", "us-east-1"]) == 0
        out = capsys.readouterr().out
        assert "run run-1  (stack Spotgrade-run-1" in out and "state:      RUNNING" in out
        assert main(["stop", "--stack", "Spotgrade", "--run-id", "run-1", "--region", "us-east-1"]) == 0
        assert run.group()["DesiredCapacity"] == 0 and run.status()["state"] == "STOPPED"
        assert other.group()["DesiredCapacity"] == 1 and other.status()["state"] == "RUNNING"
        assert main(["stop", "--run-id", "no-such-run", "--region", "us-east-1"]) == 2  # --stack: cdk.json's
        err = capsys.readouterr().err
        assert err.startswith("error: no run 'no-such-run'") and err.count("\n") == 1


def test_preflight_hands_its_arguments_to_the_preflight_module(monkeypatch):
    """`python -m training preflight ARGS` (make deploy's check) passes cdk's arguments on, in order."""
    preflight = pytest.importorskip("training.cloud.preflight")
    seen = []
    monkeypatch.setattr(preflight, "main", lambda argv: seen.append(argv) or 3)
    argv = ["-c", "repoUrl=https://example.com/o/r.git", "--require-approval", "never", "-c", "runId=r-2"]
    assert main(["preflight", *argv]) == 3
    assert seen == [argv]
