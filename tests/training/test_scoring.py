"""The scoring step: metrics.json's blocks, baselines on the same rows, permutation importance."""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.features import FeatureSet, FillValues
from training.scoring import score_run


def test_score_run_adds_metrics_baselines_and_importance():
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
                        train_frame=train, y_train=y[:300], y_val=y[300:400], test_frame=test, y_test=y[400:],
                        feature_set=fs, fill=fill, seed=0, log=lines.append)
    assert list(metrics) == ["test", "validation", "rows", "baselines", "permutation_importance"]
    assert metrics["test"]["within_one_grade_accuracy"] == 1.0
    assert metrics["validation"]["accuracy"] == 1.0
    assert metrics["rows"] == {"train": 300, "validation": 100, "test": 200}
    assert set(metrics["baselines"]) == {"majority", "logistic_regression", "hist_gradient_boosting"}
    assert metrics["permutation_importance"][0]["feature"] == "x"
    assert len(lines) == 3 and lines[0].startswith("Keras model beats majority")

