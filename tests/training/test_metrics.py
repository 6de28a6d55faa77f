"""Metrics keys and values (scikit-learn), majority baseline, ordinal and calibration metrics, baseline lines."""
import json

import numpy as np
import pandas as pd
import pytest

from training.data import GRADES
from training.metrics import (
    compute_metrics,
    expected_calibration_error,
    extra_metrics,
    grade_labels,
    majority_baseline,
    mean_abs_grade_error,
    reliability_bins,
    versus_baselines,
    within_one_grade_accuracy,
)

METRIC_KEYS = {"accuracy", "weighted_f1", "macro_f1", "per_grade", "confusion_matrix"}


def calibrated_toy(n: int = 40000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 7-class probabilities, and labels drawn from exactly those probabilities."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(7, 0.5), size=n)
    labels = (rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1)
    return probs, np.minimum(labels, 6)


def test_grade_labels_are_indices_of_the_letters():
    labels = grade_labels(pd.DataFrame({"grade": ["A", "G", "C"]}))
    assert labels.tolist() == [0, 6, 2] and labels.dtype == np.int64


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


def test_ordinal_metrics_by_hand():
    y_true, y_pred = [0, 1, 2, 6], [0, 2, 4, 6]
    assert mean_abs_grade_error(y_true, y_pred) == pytest.approx(0.75)
    assert within_one_grade_accuracy(y_true, y_pred) == pytest.approx(0.75)
    probs = np.eye(7)[y_pred]
    extra = extra_metrics(y_true, probs)
    assert extra["mean_abs_grade_error"] == pytest.approx(0.75)
    assert extra["within_one_grade_accuracy"] == pytest.approx(0.75)
    assert extra["expected_calibration_error"] == pytest.approx(0.5)  # always certain, right on 2 of 4 rows


def test_versus_baselines_says_which_baselines_were_beaten():
    results = {"majority": {"weighted_f1": 0.13}, "logistic_regression": {"weighted_f1": 0.62},
               "hist_gradient_boosting": {"weighted_f1": 0.70}}
    lines = versus_baselines({"weighted_f1": results["logistic_regression"]["weighted_f1"] + 1e-6}, results)
    assert lines[0].startswith("Keras model beats majority")
    assert "beats logistic_regression" in lines[1]
    assert len(lines) == 3
    assert lines[2] == "Keras model does NOT beat hist_gradient_boosting on weighted f1: 0.6200 vs 0.7000"
    assert "ties majority" in versus_baselines({"weighted_f1": 0.13}, results)[0]
