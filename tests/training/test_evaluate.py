"""The `evaluate` command: a saved model evaluated on a labelled file."""
import json

import pytest

from training.evaluate import evaluate

METRIC_KEYS = {"accuracy", "weighted_f1", "macro_f1", "per_grade", "confusion_matrix"}


def test_evaluate_a_saved_model_on_a_labelled_file(trained_run, tmp_path):
    from training.predict import predict_file

    result, _ = trained_run
    model_path, data = result.run_dir / "model.keras", result.run_dir / "data" / "synthetic.csv"
    lines: list[str] = []
    evaluation = evaluate(model_path, data, tmp_path / "eval", log=lines.append)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics["test"])
    assert metrics["rows"] == {"train": 0, "validation": 0, "test": result.run_info["data"]["rows_read"]}
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 5_000
    assert evaluation.metrics["test"] == metrics["test"]
    # the same accuracy as the grades predict writes for the same rows
    import pandas as pd

    predicted = pd.read_csv(predict_file(model_path, data, tmp_path / "p.csv", log=lines.append).output)
    true = pd.read_csv(data, skiprows=1, usecols=["grade"], nrows=len(predicted))["grade"]
    assert metrics["test"]["accuracy"] == pytest.approx((predicted["grade"] == true).mean())
    assert any(line.startswith("evaluated ") for line in lines)
