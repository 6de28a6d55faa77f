"""`python -m training`: commands, exit codes (0 ok, 2 bad input) and one-line errors without tracebacks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from training.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_error(err: str, *fragments: str):
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in ("train", "evaluate", "predict",
                                                                               "synthesize")]])
def test_help_exits_zero(capsys, argv):
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "usage: python -m training" in out


def test_commands_are_registered():
    assert {"train", "evaluate", "predict", "synthesize"} <= set(COMMANDS)


@pytest.mark.parametrize("argv", [[], ["bogus"], ["train", "--epochs", "0"], ["train", "--sample", "x"],
                                  ["train", "--max-bad-rows", "2"], ["train", "--hidden-units", "10,,5"],
                                  ["train", "--no-such-flag"], ["predict", "--model", "m.keras"]])
def test_bad_options_exit_two(capsys, argv):
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "Traceback" not in err and "error:" in err


def test_missing_data_file_exits_two_with_one_line(capsys, tmp_path):
    missing = tmp_path / "nope.csv"
    code, _, err = _run(capsys, "train", "--data", str(missing), "--output", str(tmp_path))
    assert code == 2
    _assert_one_line_error(err, "nope.csv")


def test_unknown_feature_set_exits_two(capsys, tmp_path):
    code, _, err = _run(capsys, "train", "--features", "everything", "--output", str(tmp_path))
    assert code == 2
    _assert_one_line_error(err, "everything")


def test_missing_model_exits_two(capsys, tmp_path):
    code, _, err = _run(capsys, "predict", "--model", str(tmp_path / "m.keras"), "--data", "x.csv",
                        "--output", str(tmp_path / "p.csv"))
    assert code == 2
    _assert_one_line_error(err, "m.keras")


def test_synthesize_writes_a_csv(capsys, tmp_path):
    target = tmp_path / "synthetic.csv"
    code, out, _ = _run(capsys, "synthesize", "--rows", "50", "--seed", "3", "--output", str(target))
    assert code == 0 and str(target) in out
    lines = target.read_text().splitlines()
    assert "SYNTHETIC" in lines[0] and lines[1].startswith("id,")


def test_train_prints_artifacts_and_headline(capsys, tmp_path):
    code, out, err = _run(capsys, "train", "--sample", "800", "--epochs", "2", "--hidden-units", "16",
                          "--output", str(tmp_path), "--run-id", "cli-run", "--seed", "1", "--class-weights")
    assert code == 0, err
    assert f"artifacts: {tmp_path / 'cli-run'}/" in out
    assert "test accuracy" in out and "majority-class baseline" in out and "epoch 2/2" in out
    info = json.loads((tmp_path / "cli-run" / "run.json").read_text())
    assert info["config"]["class_weights"] is True and info["config"]["model"]["hidden_units"] == [16]
    assert info["config"]["seed"] == 1


def test_predict_and_evaluate_commands(capsys, trained_run, tmp_path):
    result, _ = trained_run
    model = str(result.run_dir / "model.keras")
    data = str(result.run_dir / "data" / "synthetic.csv")
    code, out, err = _run(capsys, "predict", "--model", model, "--data", data, "--output", str(tmp_path / "p.csv"))
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == result.run_info["data"]["rows_read"]
    code, out, err = _run(capsys, "evaluate", "--model", model, "--data", data, "--output", str(tmp_path / "ev"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["rows"]["test"] == len(predictions)
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()


def test_module_entry_point_in_a_subprocess(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    ok = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and "synthesize" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "training", "evaluate", "--model", str(tmp_path / "x.keras"),
                          "--data", "y.csv", "--output", str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert [line for line in bad.stderr.splitlines() if line.startswith("error: ")] == \
        [f"error: {tmp_path / 'x.keras'}: model file not found (give the model.keras of a training run)"]


def test_run_control_commands_are_in_the_main_cli(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for name in ("status", "logs", "pull", "stop", "upload-data", "runs", "estimate", "sweep"):
        assert f"    {name}" in out


def test_run_control_without_region_is_one_line_exit_2(capsys, monkeypatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    code, _, err = _run(capsys, "status", "--stack", "Nope")
    assert code == 2
    _assert_one_line_error(err, "region")


def test_gpu_flags_reach_the_train_config():
    from training.cli import build_parser, train_config_from_args

    config = train_config_from_args(build_parser().parse_args(
        ["train", "--mixed-precision", "--strategy", "mirrored", "--batch-size", "2048"]))
    assert config.mixed_precision is True and config.strategy == "mirrored" and config.batch_size == 2048
    assert train_config_from_args(build_parser().parse_args(["train"])).strategy is None
