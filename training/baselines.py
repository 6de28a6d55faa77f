"""Baselines on the same split, features and fill values as the Keras model.

``fit_baselines`` fits majority class, multinomial logistic regression, scikit-learn's
HistGradientBoostingClassifier with its defaults and the same classifier tuned on the validation rows
(``training.peer_search``) on the training rows, and scores each on the test rows with
``training.metrics.compute_metrics`` (the Keras model's metric function), plus the ordinal metrics.
The result goes under ``metrics.json`` key ``baselines``; the tuned one's search record (key
``SEARCH_KEY``, taken out by ``pop_search_records``) goes to run.json.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.data import GRADES
from training.metrics import compute_metrics, extra_metrics, per_year_block
from training.peer_search import CONFIGURATIONS, column_encoder, search_hist_gradient_boosting, search_threads

if TYPE_CHECKING:
    from training.features import FeatureSet, FillValues

BASELINES: tuple[str, ...] = ("majority", "logistic_regression", "hist_gradient_boosting",
                               "hist_gradient_boosting_tuned")
TUNED = "hist_gradient_boosting_tuned"   # the baseline chosen on the validation rows
SEARCH_KEY = "search"                    # its entry's search record, for run.json
N_GRADES = len(GRADES)


def prepare(frame: pd.DataFrame, feature_set: FeatureSet, fill: FillValues) -> pd.DataFrame:
    """The feature columns with the training split's fill values applied (numeric float, categories str),
    exactly as ``training.features.apply_fill`` and ``category_strings`` give them to the Keras model."""
    from training.features import apply_fill, category_strings

    filled, _ = apply_fill(frame[list(feature_set.columns)], fill, feature_set)
    for column in feature_set.categorical:
        filled[column] = category_strings(filled[column]).astype(str)
    return filled


def _logistic_regression(feature_set: FeatureSet, seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("numeric", StandardScaler(), list(feature_set.numeric)),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), list(feature_set.categorical)),
    ])
    return make_pipeline(columns, LogisticRegression(max_iter=1000, random_state=seed))


def _hist_gradient_boosting(feature_set: FeatureSet, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    columns, mask = column_encoder(feature_set)
    return make_pipeline(columns, HistGradientBoostingClassifier(categorical_features=mask, random_state=seed))


def _probabilities(model, x: pd.DataFrame) -> np.ndarray:
    """(rows, 7) probabilities even where a grade was absent from the training rows."""
    probs = np.zeros((len(x), N_GRADES))
    probs[:, model.classes_.astype(int)] = model.predict_proba(x)
    return probs


def fit_baselines(train_frame: pd.DataFrame, y_train: ArrayLike, test_frame: pd.DataFrame,
                  y_test: ArrayLike, feature_set: FeatureSet, fill: FillValues, seed: int = 42,
                  *, include: Sequence[str] = BASELINES, validation: tuple[pd.DataFrame, ArrayLike] | None = None,
                  configurations: int = CONFIGURATIONS) -> dict[str, dict[str, Any]]:
    """Fit each baseline on the training rows; metrics on the test rows (grade indices 0..6).

    Every entry has the keys of ``metrics.json``'s ``test`` block plus ``mean_abs_grade_error``,
    ``within_one_grade_accuracy``, ``expected_calibration_error``, ``per_year`` (where ``test_frame`` has
    ``issue_d``) and ``fit_seconds`` (the tuned one's: its
    whole search). The tuned one needs ``validation`` (frame, grades), searches ``configurations`` and its
    entry also holds SEARCH_KEY.
    """
    unknown = sorted(set(include) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    if TUNED in include and validation is None:
        raise ValueError(f"{TUNED} is chosen on the validation rows: pass validation=(frame, grades)")
    y_train, y_test = np.asarray(y_train, dtype=int), np.asarray(y_test, dtype=int)
    x_train = prepare(train_frame, feature_set, fill)
    x_test = prepare(test_frame, feature_set, fill)
    val = None if validation is None else (prepare(validation[0], feature_set, fill),
                                           np.asarray(validation[1], dtype=int))
    results: dict[str, dict[str, Any]] = {}
    for name in include:
        start, search = time.perf_counter(), None
        if name == "majority":
            probs = np.zeros((len(y_test), N_GRADES))
            probs[:, np.bincount(y_train, minlength=N_GRADES).argmax()] = 1.0
        else:
            model, search = _fit(name, x_train, y_train, val, feature_set, seed, configurations)
            probs = _probabilities(model, x_test)
        y_pred = probs.argmax(axis=1)
        results[name] = {**compute_metrics(y_test, y_pred), **extra_metrics(y_test, probs),
                         **per_year_block(test_frame, y_test, y_pred),
                         "fit_seconds": round(time.perf_counter() - start, 3)}
        if search is not None:
            results[name][SEARCH_KEY] = search
    return results


def _fit(name: str, x_train: pd.DataFrame, y_train: np.ndarray, val: tuple[pd.DataFrame, np.ndarray] | None,
         feature_set: FeatureSet, seed: int, configurations: int) -> tuple[Any, dict[str, Any] | None]:
    """A learned baseline fitted on the training rows (the tuned one chosen on ``val``) and its search record."""
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: lbfgs's many small BLAS calls and HistGradientBoosting's OpenMP
    # loops spin against TensorFlow's threads otherwise, several times slower. Results are the same.
    # The tuned one's search: search_threads() (training.peer_search).
    with threadpool_limits(limits=search_threads() if name == TUNED else 1):
        if name == TUNED:
            assert val is not None
            found = search_hist_gradient_boosting(x_train, y_train, *val, feature_set, seed, configurations)
            return found.model, found.record
        factory = _logistic_regression if name == "logistic_regression" else _hist_gradient_boosting
        return factory(feature_set, seed).fit(x_train, y_train), None


def pop_search_records(baselines: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Take the search records out of ``fit_baselines``' entries (metrics.json keeps the metrics; run.json
    the records): {baseline name: record}."""
    return {name: entry.pop(SEARCH_KEY) for name, entry in baselines.items() if SEARCH_KEY in entry}
