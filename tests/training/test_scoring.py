"""The scoring step: metrics.json's blocks, baselines on the same rows, permutation importance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.features import FeatureSet, FillValues
from training.scoring import score_run


@pytest.mark.parametrize("baselines", [True, False])
def test_score_run_adds_metrics_baselines_and_importance(baselines):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x": rng.integers(0, 7, n).astype(float), "noise": rng.normal(size=n),
                          "state": rng.choice(["CA", "NY"], n)})
    y = frame["x"].to_numpy(dtype=int)
    fs = FeatureSet("toy", ("x", "noise"), ("state",), "toy")
    fill = FillValues(values={"x": 3.0, "noise": 0.0}, rules={})

    def predict_proba(f):
        return np.eye(7)[f["x"].to_numpy(dtype=int)] * 0.9 + 0.1 / 7

    train, val, test = frame.iloc[:300], frame.iloc[300:400], frame.iloc[400:]
    lines: list[str] = []
    metrics = score_run(predict_proba=predict_proba, val_probs=predict_proba(val), test_probs=predict_proba(test),
                        train_frame=train, y_train=y[:300], val_frame=val, y_val=y[300:400], test_frame=test,
                        y_test=y[400:], feature_set=fs, fill=fill, seed=0, log=lines.append, baselines=baselines)
    blocks = ["test", "validation", "rows", "baselines", "permutation_importance"]
    assert list(metrics) == [b for b in blocks if baselines or b != "baselines"]
    assert metrics["test"]["within_one_grade_accuracy"] == 1.0
    assert metrics["validation"]["accuracy"] == 1.0
    assert metrics["rows"] == {"train": 300, "validation": 100, "test": 200}
    assert metrics["permutation_importance"][0]["feature"] == "x"
    if not baselines:
        assert lines == ["baselines: skipped (--no-baselines)"]
        return
    assert list(metrics["baselines"]) == ["majority", "logistic_regression", "hist_gradient_boosting",
                                          "hist_gradient_boosting_tuned"]
    assert len(lines) == 4 and lines[0].startswith("Keras model beats majority")
    assert "hist_gradient_boosting_tuned on weighted f1" in lines[3]


def test_score_run_can_leave_out_the_tuned_peer():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.integers(0, 7, 300).astype(float)})
    y = frame["x"].to_numpy(dtype=int)
    fs, fill = FeatureSet("toy", ("x",), (), "toy"), FillValues(values={"x": 3.0}, rules={})
    probs = np.eye(7)[y]
    lines: list[str] = []
    metrics = score_run(predict_proba=lambda f: np.eye(7)[f["x"].to_numpy(dtype=int)], val_probs=probs[100:200],
                        test_probs=probs[200:], train_frame=frame.iloc[:100], y_train=y[:100],
                        val_frame=frame.iloc[100:200], y_val=y[100:200], test_frame=frame.iloc[200:],
                        y_test=y[200:], feature_set=fs, fill=fill, seed=0, log=lines.append, tuned_peer=False)
    assert list(metrics["baselines"]) == ["majority", "logistic_regression", "hist_gradient_boosting"]
    assert lines[0].startswith("baselines: hist_gradient_boosting_tuned skipped") and len(lines) == 4

