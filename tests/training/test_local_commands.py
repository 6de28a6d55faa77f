"""train, evaluate, predict and synthesize through `python -m training`: outputs and one-line errors."""
import json

import pandas as pd

from tests.training.cli_helpers import assert_one_line_error, run_cli


def test_missing_data_file_exits_two_with_one_line(capsys, tmp_path):
    missing = tmp_path / "nope.csv"
    code, _, err = run_cli(capsys, "train", "--data", str(missing), "--output", str(tmp_path))
    assert code == 2
    assert_one_line_error(err, "nope.csv")


def test_unknown_feature_set_exits_two(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--features", "everything", "--output", str(tmp_path))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2 and lines[0].startswith("usage: ")  # a usage hint, then the error
    assert "invalid choice: 'everything'" in lines[-1] and "Traceback" not in err


def test_missing_model_exits_two(capsys, tmp_path):
    code, _, err = run_cli(capsys, "predict", "--model", str(tmp_path / "m.keras"), "--data", "x.csv",
                        "--output", str(tmp_path / "p.csv"))
    assert code == 2
    assert_one_line_error(err, "m.keras")


def test_synthesize_writes_a_csv(capsys, tmp_path):
    target = tmp_path / "synthetic.csv"
    code, out, _ = run_cli(capsys, "synthesize", "--rows", "50", "--seed", "3", "--output", str(target))
    assert code == 0 and str(target) in out
    lines = target.read_text().splitlines()
    assert "SYNTHETIC" in lines[0] and lines[1].startswith("id,")


def test_train_prints_artifacts_and_headline(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--sample", "800", "--epochs", "2", "--hidden-units", "16",
                          "--output", str(tmp_path), "--run-id", "cli-run", "--seed", "1", "--class-weights")
    assert code == 0, err
    assert out.splitlines()[0] == "preset: sample (built-in synthetic sample; --preset tuned for the full model)"
    assert f"artifacts: {tmp_path / 'cli-run'}/" in out
    assert "test accuracy" in out and "majority-class baseline" in out and "epoch 2/2" in out
    info = json.loads((tmp_path / "cli-run" / "run.json").read_text())
    assert info["config"]["class_weights"] is True and info["config"]["model"]["hidden_units"] == [16]
    assert info["config"]["seed"] == 1
    assert (info["config"]["preset"], info["config"]["tuned_peer"], info["config"]["epochs"]) == ("sample", False, 2)
    metrics = json.loads((tmp_path / "cli-run" / "metrics.json").read_text())
    assert list(metrics["baselines"]) == ["majority", "logistic_regression", "hist_gradient_boosting"]
    assert info["baseline_search"] == {}


def test_predict_and_evaluate_commands(capsys, trained_run, tmp_path):
    result, _ = trained_run
    model = str(result.run_dir / "model.keras")
    data = str(result.run_dir / "data" / "synthetic.csv")
    code, out, err = run_cli(capsys, "predict", "--model", model, "--data", data, "--output", str(tmp_path / "p.csv"))
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == result.run_info["data"]["rows_read"]
    code, out, err = run_cli(capsys, "evaluate", "--model", model, "--data", data, "--output", str(tmp_path / "ev"))
    assert code == 0, err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["rows"]["test"] == len(predictions)
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()


def test_audit_reads_the_data_parsed_the_second_time(capsys, tmp_path):
    from training import synthetic

    data = synthetic.write_raw_csv(tmp_path / "loans.csv.gz", 400, seed=2)
    cache = tmp_path / "cache"
    outs = []
    for flags in (["--cache-dir", str(cache)], ["--cache-dir", str(cache)], ["--no-cache"]):
        code, out, err = run_cli(capsys, "audit", "--data", str(data), *flags)
        assert code == 0, err
        outs.append(out)
    cached = f"read {data} (cached: {cache / 'parsed'})"
    assert cached not in outs[0] and cached in outs[1] and "(cached:" not in outs[2]
    assert outs[1].replace(cached + "\n", "") == outs[0]
