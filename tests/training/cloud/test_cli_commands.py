"""The run-control subcommands: parser, --help, dispatch and one-line errors with exit 2."""
from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from moto import mock_aws

from tests.training.cloud.moto_run import make_run, running_status, session
from training.cloud import cli_commands


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training")
    cli_commands.register(p.add_subparsers(dest="command", required=True))
    return p


@pytest.mark.parametrize("name", cli_commands.COMMAND_NAMES)
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: python -m training {name}" in capsys.readouterr().out


def test_arguments_parse():
    args = parser().parse_args(["logs", "--follow", "--stack", "Other", "--region", "eu-west-1"])
    assert (args.follow, args.stack, args.region, args.run) == (True, "Other", "eu-west-1", cli_commands._logs)
    args = parser().parse_args(["estimate", "-c", "maxRuntimeHours=3", "-c", "instanceTypes=g5.xlarge",
                                "--epochs-per-hour", "12"])
    assert args.context == ["maxRuntimeHours=3", "instanceTypes=g5.xlarge"] and args.epochs_per_hour == 12
    assert parser().parse_args(["sweep"]).yes is False
    assert parser().parse_args(["upload-data", "x.csv"]).path == "x.csv"
    with pytest.raises(SystemExit):
        parser().parse_args(["logs", "--poll", "0"])


def test_help_does_not_import_boto3():
    code = ("import sys; from training.cloud import cli_commands; cli_commands.build_parser(); "
            "assert 'boto3' not in sys.modules, 'boto3 imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_stack_not_found_exits_2_with_one_line(aws_env, capsys):
    with mock_aws():
        assert cli_commands.main(["status", "--stack", "Missing", "--region", "us-east-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: stack 'Missing' not found") and err.count("\n") == 1


def test_no_credentials_exits_2_with_one_line(no_aws_credentials, capsys):
    for argv in (["runs", "--stack", "Spotgrade", "--region", "us-east-1"], ["estimate", "--region", "us-east-1"]):
        assert cli_commands.main(argv) == 2
        err = capsys.readouterr().err
        assert "no AWS credentials found" in err and err.count("\n") == 1


def test_unknown_profile_exits_2(capsys):
    assert cli_commands.main(["sweep", "--profile", "no-such-profile-xyz"]) == 2
    assert "AWS profile 'no-such-profile-xyz' not found" in capsys.readouterr().err


def test_status_and_stop_through_the_cli(aws_env, capsys):
    with mock_aws():
        run = make_run(session())
        run.put_status(running_status(run.run_id, datetime.now(timezone.utc)))
        assert cli_commands.main(["status", "--stack", "Spotgrade", "--region", "us-east-1"]) == 0
        assert "state:      RUNNING" in capsys.readouterr().out
        assert cli_commands.main(["stop", "--stack", "Spotgrade", "--region", "us-east-1"]) == 0
        assert run.group()["DesiredCapacity"] == 0 and run.status()["state"] == "STOPPED"
