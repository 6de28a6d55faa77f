"""The run-control commands through `training.cli.main`, in process against moto: `--json` (one object on stdout,
nothing else), the region from AWS_REGION or AWS_DEFAULT_REGION, one-line errors (exit 2) for bad input before any
AWS call, `cleanup` and its hidden alias `sweep`, and the commands run from any directory."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from moto import mock_aws

from tests.training.cloud.moto_run import make_run, running_status, session
from training.cli import _canonical, build_parser, main
from training.cloud import commands as cloud_commands
from training.commands import COMMANDS, command_named

REGION = ["--region", "us-east-1"]


def ran(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(argv: list[str], capsys) -> str:
    status, out, err = ran(argv, capsys)
    assert (status, out) == (2, ""), err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


@pytest.fixture()
def deployed(aws_env):
    """One running run (run-1) of the shared stack Spotgrade, in moto."""
    with mock_aws():
        run = make_run(session())
        run.put_status(running_status(run.run_id, datetime.now(timezone.utc)))
        yield run


# ------------------------------------------------------------------ --json

def test_status_json_is_one_object_on_stdout(deployed, capsys):
    status, out, err = ran(["status", "--json", "--run-id", "run-1", *REGION], capsys)
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert (document["run_id"], document["stack"], document["run_stack"]) == ("run-1", "Spotgrade", "Spotgrade-run-1")
    assert document["status"]["state"] == "RUNNING" and document["status"]["last_epoch"] == 7
    assert document["status"]["attempts"][0]["started_at"].endswith("Z")  # ISO 8601, as status.json holds it
    assert isinstance(document["estimated_cost"], float) and isinstance(document["billable_seconds"], int)
    assert document["elapsed_seconds"] > 3000 and document["uri"] == f"s3://{deployed.bucket}/runs/run-1/"


def test_runs_json_is_one_object_on_stdout(deployed, capsys):
    make_run(deployed.session, run_id="run-2")  # deployed, not started: nothing of it in the bucket yet
    status, out, err = ran(["runs", "--json", *REGION], capsys)
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert document["stack"] == "Spotgrade"
    by_id = {row["run_id"]: row for row in document["runs"]}
    assert by_id["run-1"]["state"] == "RUNNING" and by_id["run-1"]["started"].endswith("Z")
    assert by_id["run-1"]["cost"] > 0 and by_id["run-1"]["instance_types"] == ["g5.xlarge"]
    assert by_id["run-2"]["state"] is None and by_id["run-2"]["started"] is None  # not '-' or ''
    assert by_id["run-2"]["stack"] == "Spotgrade-run-2" and by_id["run-2"]["weighted_f1"] is None


def test_estimate_json_is_one_object_on_stdout(aws_env, capsys):
    with mock_aws():
        status, out, err = ran(["estimate", "--json", "-c", "instanceTypes=g5.xlarge", "-c", "maxRuntimeHours=2",
                                *REGION], capsys)
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert (document["region"], document["hours"], document["capacity"]) == ("us-east-1", 2.0, "spot")
    [row] = document["instance_types"]
    assert row["instance_type"] == "g5.xlarge" and row["prices"]
    assert row["cost_low"] == pytest.approx(row["min_price"] * 2)


def test_text_views_are_unchanged_without_json(deployed, capsys):
    status, out, _ = ran(["runs", *REGION], capsys)
    assert status == 0 and out.startswith("RUN ")
    status, out, _ = ran(["estimate", "-c", "instanceTypes=g5.xlarge", *REGION], capsys)
    assert status == 0 and out.startswith("expected run time: ")


# ------------------------------------------------------------------ the region

@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_the_region_comes_from_either_variable(aws_env, monkeypatch, capsys, variable):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv(variable, "us-east-1")
    with mock_aws():
        make_run(session())
        status, out, err = ran(["runs"], capsys)
    assert (status, err) == (0, "") and out.startswith("RUN ")


def test_aws_region_comes_before_aws_default_region(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    args = build_parser().parse_args(["runs"])
    assert cloud_commands._session(args).region_name == "eu-west-1"
    args = build_parser().parse_args(["runs", "--region", "ap-south-1"])
    assert cloud_commands._session(args).region_name == "ap-south-1"


def test_no_region_names_both_variables_and_the_flag(aws_env, monkeypatch, tmp_path, capsys):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))  # no profile region either
    for argv in (["runs"], ["status"], ["estimate"], ["cleanup"]):
        assert one_error_line(argv, capsys) == (
            f"error: {argv[0]}: no AWS region set: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION "
            "(e.g. export AWS_REGION=us-east-1)")


# ------------------------------------------------------------------ bad input: one line, exit 2, no AWS call

def test_bad_input_is_one_line_before_any_aws_call(no_aws_credentials, tmp_path, capsys):
    """Each mistake is named, not the missing credentials: nothing reached AWS."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = {
        ("status", "--run-id", "a/b"): "error: --run-id 'a/b' is invalid: use 1-63 letters",
        ("logs", "--run-id", ".."): "error: --run-id '..' is invalid",
        ("pull", "--run-id", "x" * 64): "error: --run-id 'xxx",
        ("stop", "--stack", "bad/stack"): "error: --stack 'bad/stack' is invalid: a CloudFormation stack name is",
        ("runs", "--stack", "9lives"): "error: --stack '9lives' is invalid",
        ("pull", "--dest", str(a_file)): f"error: --dest {a_file} is a file: give a directory",
        ("upload-data", str(tmp_path / "nope.csv")): f"error: {tmp_path / 'nope.csv'}: no such file",
        ("upload-data", str(tmp_path)): f"error: {tmp_path}: is a directory, not a file",
        ("estimate", "-c", "trainArgs=--epochs abc"): "error: context key 'trainArgs': '--epochs abc' is not "
                                                      "allowed; `python -m training train` says: argument --epochs",
        ("estimate", "-c", "maxRuntimeHours"): "error: -c 'maxRuntimeHours': expected key=value",
        ("estimate", "-c", "maxRuntimeHour=3"): "error: context key 'maxRuntimeHour' is unknown; did you mean",
    }
    for argv, start in cases.items():
        assert one_error_line([*argv, *REGION], capsys).startswith(start), argv


def test_no_credentials_is_one_line_for_every_command(no_aws_credentials, tmp_path, capsys):
    data = tmp_path / "loans.csv"
    data.write_text("id\n1\n")
    for argv in (["status"], ["logs"], ["pull", "--dest", str(tmp_path)], ["stop"], ["resume"], ["runs"],
                 ["upload-data", str(data)], ["estimate"], ["cleanup"]):
        assert one_error_line([*argv, *REGION], capsys).startswith(f"error: {argv[0]}: no AWS credentials found")


def test_bad_region_is_one_line(aws_env, capsys):
    message = one_error_line(["runs", "--region", "not a region"], capsys)
    assert message.startswith("error: runs: ") and "not a region" in message


def test_usage_mistakes_exit_2(capsys):
    for argv in (["status", "--lines", "-1"], ["status", "--lines", "x"], ["logs", "--poll", "0"],
                 ["logs", "--poll", "inf"], ["estimate", "--hours", "inf"], ["estimate", "--epochs-per-hour", "nan"]):
        assert main(argv) == 2
        assert "error:" in capsys.readouterr().err


# ------------------------------------------------------------------ cleanup, once sweep

def test_cleanup_and_its_hidden_alias_sweep(aws_env, capsys):
    assert command_named("sweep") is COMMANDS["cleanup"] and COMMANDS["cleanup"].run is cloud_commands._cleanup
    assert _canonical(["sweep", "--yes", "sweep"]) == ["cleanup", "--yes", "sweep"]  # only the command is renamed
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    listing = capsys.readouterr().out
    assert "cleanup" in listing and "sweep" not in listing
    with mock_aws():
        make_run(session())
        for name in ("cleanup", "sweep"):
            status, out, err = ran([name, *REGION], capsys)
            assert (status, err) == (0, "") and out.startswith("nothing to clean up: ")


# ------------------------------------------------------------------ from any directory

def test_commands_work_from_another_directory(deployed, tmp_path, monkeypatch, capsys):
    """cdk.json is the checkout's (stackName, instanceTypes...), wherever the command runs; pull writes under the
    working directory's outputs/ (as train does)."""
    monkeypatch.chdir(tmp_path)
    deployed.client("s3").put_object(Bucket=deployed.bucket, Key=deployed.layout.artifact_key("metrics.json"),
                                     Body=b"{}")
    assert ran(["status", *REGION], capsys)[0] == 0
    assert ran(["pull", *REGION], capsys)[0] == 0
    assert (tmp_path / "outputs" / "run-1" / "metrics.json").read_bytes() == b"{}"
    status, out, _ = ran(["estimate", "--json", *REGION], capsys)
    assert status == 0 and json.loads(out)["instance_types"]
