"""Metrics keys and values (scikit-learn), plots and a saved model evaluated on a labelled file."""
import json

import numpy as np
import pytest

from training.data import GRADES
from training.evaluate import compute_metrics, majority_baseline, plot_confusion_matrix, plot_history

METRIC_KEYS = {"accuracy", "weighted_f1", "macro_f1", "per_grade", "confusion_matrix"}


def test_metrics_keys_and_known_values():
    y_true = [0, 0, 1, 1, 2, 2, 2, 6]
    y_pred = [0, 1, 1, 1, 2, 2, 0, 6]
    metrics = compute_metrics(y_true, y_pred)
    assert set(metrics) == METRIC_KEYS
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert list(metrics["per_grade"]) == list(GRADES)
    a = metrics["per_grade"]["A"]
    assert a == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert metrics["per_grade"]["C"]["recall"] == pytest.approx(2 / 3)
    assert metrics["per_grade"]["D"]["support"] == 0
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == 8
    assert cm[2, 0] == 1 and cm[0, 1] == 1 and np.trace(cm) == 6
    # macro F1 averages over the four grades present: A .5, B .8, C .8, G 1
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.8 + 1.0) / 4)
    assert 0 < metrics["weighted_f1"] <= 1
    json.dumps(metrics)  # plain JSON types only


def test_majority_baseline_predicts_the_most_frequent_training_grade():
    metrics = majority_baseline([1, 1, 1, 0, 2], [1, 0, 1, 2])
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert np.array(metrics["confusion_matrix"])[:, 1].sum() == 4


def test_plots_are_written(tmp_path):
    cm = [[5, 1, 0, 0, 0, 0, 0], [2, 8, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]] + [[0] * 7] * 4
    cm_path = plot_confusion_matrix(cm, tmp_path / "cm.png")
    history = {"loss": [1.2, 1.0, 0.9], "val_loss": [1.3, 1.1, 1.05], "accuracy": [0.4, 0.5, 0.55],
               "val_accuracy": [0.38, 0.45, 0.5]}
    history_path = plot_history(history, tmp_path / "history.png", best_epoch=3)
    for path in (cm_path, history_path):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5_000


def test_evaluate_a_saved_model_on_a_labelled_file(trained_run, tmp_path):
    from training.evaluate import evaluate
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
