"""`python -m training`: the parser of every registered command, exit codes (0 ok, 2 bad input) and one-line
errors without tracebacks."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.cli_helpers import assert_one_line_error, run_cli
from training.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ("train", "audit", "evaluate", "predict", "synthesize")
RUN_CONTROL = ("status", "logs", "pull", "stop", "resume", "upload-data", "runs", "estimate", "cleanup")


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in ("train", "evaluate", "predict",
                                                                               "synthesize")]])
def test_help_exits_zero(capsys, argv):
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "usage: python -m training" in out


def test_commands_are_registered():
    assert {"train", "evaluate", "predict", "synthesize"} <= set(COMMANDS)
    assert set(LOCAL) | set(RUN_CONTROL) | {"preflight"} == set(COMMANDS)


def test_help_lists_the_local_commands_first(capsys):
    _, out, _ = run_cli(capsys, "--help")
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ") and not line.startswith("     ")]
    assert listed == [*LOCAL, *RUN_CONTROL, "preflight"]


@pytest.mark.parametrize("argv", [[], ["bogus"], ["train", "--epochs", "0"], ["train", "--sample", "x"],
                                  ["train", "--max-bad-rows", "2"], ["train", "--hidden-units", "10,,5"],
                                  ["train", "--no-such-flag"], ["predict", "--model", "m.keras"]])
def test_bad_options_exit_two(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "Traceback" not in err and "error:" in err


def test_unknown_arguments_are_named(capsys):
    code, _, err = run_cli(capsys, "status", "--stack", "S", "--no-such-flag", "x")
    assert code == 2 and err.strip().splitlines()[-1] == \
        "python -m training status: error: unrecognized arguments: --no-such-flag x"


def test_module_entry_point_in_a_subprocess(tmp_path):
    """`python -m training` from another directory than the checkout (the package found via PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and "synthesize" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "training", "evaluate", "--model", str(tmp_path / "x.keras"),
                          "--data", "y.csv", "--output", str(tmp_path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == \
        [f"error: {tmp_path / 'x.keras'}: model file not found (give the model.keras of a training run)"]


def test_parser_imports_no_heavy_module():
    code = ("import sys; from training.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('boto3', 'tensorflow', 'keras', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_run_control_commands_are_in_the_main_cli(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for name in ("status", "logs", "pull", "stop", "upload-data", "runs", "estimate", "cleanup", "preflight"):
        assert f"    {name}" in out


def test_run_control_without_region_is_one_line_exit_2(capsys, monkeypatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    code, _, err = run_cli(capsys, "status", "--stack", "Nope")
    assert code == 2
    assert_one_line_error(err, "region")
