"""Baselines: same rows, same features, same fill values, same metric function as the Keras model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.baselines import BASELINES, SEARCH_KEY, TUNED, fit_baselines, prepare
from training.features import FeatureSet, FillValues
from training.metrics import compute_metrics

FEATURES = FeatureSet("toy", ("fico", "dti", "income"), ("state",), "three numbers and a state")


def loans(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    fico = rng.normal(700, 35, n)
    state = rng.choice(["CA", "NY", "TX"], n)
    code = np.clip(np.round((760 - fico) / 20 + (state == "TX") + rng.normal(0, 0.6, n)), 0, 6).astype(int)
    frame = pd.DataFrame({"fico": fico, "dti": rng.uniform(0, 30, n), "income": rng.lognormal(11, 0.5, n),
                          "state": state})
    frame.loc[rng.random(n) < 0.1, "dti"] = np.nan
    frame.loc[rng.random(n) < 0.05, "state"] = np.nan
    return frame, code


@pytest.fixture(scope="module")
def split():
    train, y_train = loans(3000, 1)
    test, y_test = loans(800, 2)
    fill = FillValues(values={"fico": 700.0, "dti": float(train["dti"].mean()), "income": 50000.0},
                      rules={}, warnings=[])
    return train, y_train, test, y_test, fill


@pytest.fixture(scope="module")
def results(split):
    """Every baseline; the tuned one from a small search (tests/training/test_peer_search.py tests the search)."""
    train, y_train, test, y_test, fill = split
    return fit_baselines(train, y_train, test, y_test, FEATURES, fill, seed=0, validation=loans(600, 4),
                         configurations=3)


def test_every_baseline_has_the_test_block_keys(results):
    keys = set(compute_metrics([0, 1], [0, 1]))
    assert list(results) == list(BASELINES)
    for metrics in results.values():
        assert keys <= set(metrics)
        assert {"mean_abs_grade_error", "within_one_grade_accuracy", "expected_calibration_error"} <= set(metrics)


def test_baselines_are_scored_on_identical_rows(split, results):
    *_, y_test, _ = split
    supports = {g: int(n) for g, n in zip("ABCDEFG", np.bincount(y_test, minlength=7))}
    for metrics in results.values():
        assert int(np.sum(metrics["confusion_matrix"])) == len(y_test)
        assert {g: v["support"] for g, v in metrics["per_grade"].items()} == supports


def test_majority_predicts_the_training_mode(split, results):
    _, y_train, _, y_test, _ = split
    mode = np.bincount(y_train).argmax()
    assert results["majority"]["accuracy"] == pytest.approx(np.mean(y_test == mode))


def test_learned_baselines_beat_majority(results):
    majority = results["majority"]["weighted_f1"]
    assert results["logistic_regression"]["weighted_f1"] > majority + 0.2
    assert results["hist_gradient_boosting"]["weighted_f1"] > majority + 0.2
    assert results[TUNED]["weighted_f1"] > majority + 0.2
    assert results[TUNED][SEARCH_KEY]["budget"]["configurations"] == 3


def test_row_order_does_not_matter(split, results):
    train, y_train, test, y_test, fill = split
    order = np.random.default_rng(3).permutation(len(test))
    again = fit_baselines(train, y_train, test.iloc[order], y_test[order], FEATURES, fill, seed=0,
                          include=("logistic_regression",))
    assert again["logistic_regression"]["confusion_matrix"] == results["logistic_regression"]["confusion_matrix"]


def test_prepare_applies_the_training_fill(split):
    train, *_, fill = split
    prepared = prepare(train, FEATURES, fill)
    assert not prepared.isna().any().any()
    assert (prepared.loc[train["dti"].isna(), "dti"] == fill.values["dti"]).all()
    assert (prepared.loc[train["state"].isna(), "state"] == "missing").all()


def test_unseen_category_in_test_rows_is_handled(split):
    train, y_train, test, y_test, fill = split
    odd = test.assign(state="ZZ")
    out = fit_baselines(train, y_train, odd, y_test, FEATURES, fill, include=("logistic_regression",
                                                                               "hist_gradient_boosting"))
    assert int(np.sum(out["hist_gradient_boosting"]["confusion_matrix"])) == len(y_test)

