"""Calibration (ECE, reliability plot), ordinal metrics and permutation importance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.calibration import expected_calibration_error, plot_reliability, reliability_bins
from training.importance import permutation_importance, plot_importance
from training.quality import extra_metrics, mean_abs_grade_error, within_one_grade_accuracy


def calibrated_toy(n: int = 40000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 7-class probabilities, and labels drawn from exactly those probabilities."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(7, 0.5), size=n)
    labels = (rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1)
    return probs, np.minimum(labels, 6)


def test_ece_of_a_perfectly_calibrated_model_is_near_zero():
    probs, labels = calibrated_toy()
    assert expected_calibration_error(probs, labels) < 0.02


def test_ece_of_an_overconfident_model_is_large():
    probs, labels = calibrated_toy()
    sharp = probs ** 8
    sharp /= sharp.sum(axis=1, keepdims=True)  # same ranking, far more confident than it is right
    assert expected_calibration_error(sharp, labels) > 0.15


def test_ece_by_hand():
    # two rows at confidence 0.9, one right one wrong: |0.5 - 0.9| = 0.4
    probs = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(probs, [0, 1], n_bins=10) == pytest.approx(0.4)
    bins = reliability_bins(probs, [0, 1], n_bins=10)
    assert bins == [{"lower": pytest.approx(0.8), "upper": pytest.approx(0.9), "rows": 2,
                     "confidence": pytest.approx(0.9), "accuracy": 0.5}]


def test_reliability_plot_is_a_png(tmp_path):
    probs, labels = calibrated_toy(n=2000)
    path = plot_reliability(probs, labels, tmp_path / "reliability.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ordinal_metrics_by_hand():
    y_true, y_pred = [0, 1, 2, 6], [0, 2, 4, 6]
    assert mean_abs_grade_error(y_true, y_pred) == pytest.approx(0.75)
    assert within_one_grade_accuracy(y_true, y_pred) == pytest.approx(0.75)
    probs = np.eye(7)[y_pred]
    extra = extra_metrics(y_true, probs)
    assert extra["mean_abs_grade_error"] == pytest.approx(0.75)
    assert extra["within_one_grade_accuracy"] == pytest.approx(0.75)
    assert extra["expected_calibration_error"] == pytest.approx(0.5)  # always certain, right on 2 of 4 rows


def test_permutation_importance_finds_the_informative_column(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"signal": rng.integers(0, 7, 3000), "noise": rng.normal(size=3000),
                          "state": rng.choice(["CA", "NY"], 3000)})
    y = frame["signal"].to_numpy()

    def predict_proba(f: pd.DataFrame) -> np.ndarray:  # a "model" that reads only `signal`
        return np.eye(7)[f["signal"].to_numpy()]

    ranked = permutation_importance(predict_proba, frame, y, ["noise", "signal", "state"], max_rows=1000)
    assert ranked[0]["feature"] == "signal"
    assert ranked[0]["importance"] > 0.7  # shuffling it leaves ~1/7 right
    assert {r["feature"]: r["importance"] for r in ranked[1:]} == {"noise": 0.0, "state": 0.0}
    path = plot_importance(ranked, tmp_path / "importance.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
