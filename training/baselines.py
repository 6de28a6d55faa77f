"""Baselines on the same split, features and fill values as the Keras model.

``fit_baselines`` fits majority class, multinomial logistic regression and scikit-learn's
HistGradientBoostingClassifier on the training rows and scores each on the test rows with
``training.metrics.compute_metrics`` (the Keras model's metric function), plus the ordinal metrics.
The result goes under ``metrics.json`` key ``baselines``.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.data import GRADES
from training.metrics import compute_metrics, extra_metrics

if TYPE_CHECKING:
    from training.features import FeatureSet, FillValues

BASELINES: tuple[str, ...] = ("majority", "logistic_regression", "hist_gradient_boosting")
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
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    n_numeric, n_categorical = len(feature_set.numeric), len(feature_set.categorical)
    columns = ColumnTransformer([
        ("numeric", "passthrough", list(feature_set.numeric)),
        ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
         list(feature_set.categorical)),
    ])
    mask = [False] * n_numeric + [True] * n_categorical
    return make_pipeline(columns, HistGradientBoostingClassifier(
        categorical_features=mask if n_categorical else None, random_state=seed))


def _probabilities(model, x: pd.DataFrame) -> np.ndarray:
    """(rows, 7) probabilities even where a grade was absent from the training rows."""
    probs = np.zeros((len(x), N_GRADES))
    probs[:, model.classes_.astype(int)] = model.predict_proba(x)
    return probs


def fit_baselines(train_frame: pd.DataFrame, y_train: ArrayLike, test_frame: pd.DataFrame,
                  y_test: ArrayLike, feature_set: FeatureSet, fill: FillValues, seed: int = 42,
                  *, include: Sequence[str] = BASELINES) -> dict[str, dict[str, Any]]:
    """Fit each baseline on the training rows; metrics on the test rows (grade indices 0..6).

    Every entry has the keys of ``metrics.json``'s ``test`` block plus ``mean_abs_grade_error``,
    ``within_one_grade_accuracy``, ``expected_calibration_error`` and ``fit_seconds``.
    """
    from threadpoolctl import threadpool_limits

    unknown = sorted(set(include) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    y_train, y_test = np.asarray(y_train, dtype=int), np.asarray(y_test, dtype=int)
    x_train = prepare(train_frame, feature_set, fill)
    x_test = prepare(test_frame, feature_set, fill)
    results: dict[str, dict[str, Any]] = {}
    for name in include:
        start = time.perf_counter()
        if name == "majority":
            shares = np.bincount(y_train, minlength=N_GRADES) / len(y_train)
            probs = np.zeros((len(y_test), N_GRADES))
            probs[:, shares.argmax()] = 1.0
        else:
            factory = _logistic_regression if name == "logistic_regression" else _hist_gradient_boosting
            # One BLAS/OpenMP thread: lbfgs's many small BLAS calls and HistGradientBoosting's OpenMP
            # loops spin against TensorFlow's threads otherwise, several times slower. Results are the same.
            with threadpool_limits(limits=1):
                model = factory(feature_set, seed).fit(x_train, y_train)
                probs = _probabilities(model, x_test)
        y_pred = probs.argmax(axis=1)
        results[name] = {**compute_metrics(y_test, y_pred), **extra_metrics(y_test, probs),
                         "fit_seconds": round(time.perf_counter() - start, 3)}
    return results
