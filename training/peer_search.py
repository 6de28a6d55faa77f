"""The tuned gradient-boosting peer: HistGradientBoosting chosen on the validation rows by a seeded search.

``search_hist_gradient_boosting`` fits scikit-learn's defaults and then configurations drawn by
``ParameterSampler(SEARCH_SPACE, random_state=seed)`` on the training rows, each stopping early on the
validation rows, scores each by weighted F1 (``training.metrics.compute_metrics``) on the validation rows
and keeps the best (the first of equals). The test rows never reach this module: ``training.baselines``
scores the chosen model on them once. The search's record (budget, space, choice, every configuration's
validation weighted F1) goes to run.json (``baseline_search``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.metrics import compute_metrics

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from training.features import FeatureSet

#: The parameters searched and their values (ParameterSampler draws without replacement from this grid). No
#: l2_regularization 0 or min_samples_leaf 10: with them, learning rates of 0.2 and more diverged on the 2007-2011
#: file (validation loss rising from the 8th iteration). Up to 200 iterations: the draws that ran longer (up to 500
#: tried) scored no better on validation and took half of the search's time.
SEARCH_SPACE: dict[str, list[Any]] = {
    "learning_rate": [0.1, 0.15, 0.2, 0.3],
    "max_leaf_nodes": [15, 31, 63],
    "max_depth": [None, 5, 8],
    "min_samples_leaf": [20, 40, 80, 160],
    "l2_regularization": [0.1, 1.0, 3.0, 10.0],
    "max_iter": [100, 200],
}
#: HistGradientBoostingClassifier's own defaults for the searched parameters: always the first configuration.
SKLEARN_DEFAULTS: dict[str, Any] = {"learning_rate": 0.1, "max_leaf_nodes": 31, "max_depth": None,
                                    "min_samples_leaf": 20, "l2_regularization": 0.0, "max_iter": 100}
#: Then the defaults without their 100-iteration cap, at their rate and at half of it: with the issue date and
#: inquiries among the features the defaults run into that cap, and the early-stopped longer fits score better on
#: the validation rows of the 2007-2011 file (0.8134 at 0.1 after 154 iterations, 0.8144 at 0.05 after 266,
#: against 0.8094).
LONGER_FITS: tuple[dict[str, Any], ...] = (
    {**SKLEARN_DEFAULTS, "max_iter": 1000},
    {**SKLEARN_DEFAULTS, "learning_rate": 0.05, "max_iter": 1000},
)
CONFIGURATIONS = 20           # configurations fitted, the defaults included
EARLY_STOPPING_ROUNDS = 5     # iterations without a better validation loss before a fit stops


def search_threads() -> int:
    """OpenMP threads of the search: ``OMP_NUM_THREADS`` when set (the test suite runs two processes on two
    cores and sets 1: more threads than cores make HistGradientBoosting's OpenMP loops spin, many times
    slower), else every core this process may use. It runs after the network's fit, so nothing else competes;
    the results do not depend on the thread count."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


METHOD = ("HistGradientBoostingClassifier: scikit-learn's defaults, the defaults with up to 1,000 iterations at "
          "learning rates 0.1 and 0.05 (LONGER_FITS), then ParameterSampler(SEARCH_SPACE, "
          "random_state=seed); each fitted on the training rows with early stopping on the validation rows, "
          "chosen by weighted F1 on the validation rows; the test rows score the chosen model only")


@dataclass
class PeerSearch:
    """The chosen model (column encoding + classifier, fitted on the training rows) and the search's record."""
    model: Pipeline
    record: dict[str, Any]


def configurations(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct configurations: SKLEARN_DEFAULTS, LONGER_FITS, then the rest drawn with ``seed``."""
    from sklearn.model_selection import ParameterSampler

    if n < 1:
        raise ValueError(f"the search needs at least 1 configuration, got {n}")
    fixed = [dict(SKLEARN_DEFAULTS), *map(dict, LONGER_FITS)]
    drawn = [dict(p) for p in ParameterSampler(SEARCH_SPACE, n_iter=n, random_state=seed) if p not in fixed]
    return [*fixed, *drawn][:n]


def column_encoder(feature_set: FeatureSet):
    """Numeric columns as they are, categorical ones as ordinal codes (unseen: NaN), and the categorical mask."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    columns = ColumnTransformer([
        ("numeric", "passthrough", list(feature_set.numeric)),
        ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
         list(feature_set.categorical)),
    ])
    mask = [False] * len(feature_set.numeric) + [True] * len(feature_set.categorical)
    return columns, (mask if feature_set.categorical else None)


def _fit_one(params: dict[str, Any], data: tuple[np.ndarray, ...], mask: list[bool] | None, seed: int):
    """One configuration fitted on the training rows, stopping early on the validation rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_train, y_train, x_val, y_val = data
    known = np.isin(y_val, np.unique(y_train))  # the early-stopping loss needs grades seen in training
    model = HistGradientBoostingClassifier(**params, categorical_features=mask, early_stopping=True,
                                           n_iter_no_change=EARLY_STOPPING_ROUNDS, random_state=seed)
    if known.any():
        return model.fit(x_train, y_train, X_val=x_val[known], y_val=y_val[known])
    return model.set_params(early_stopping=False).fit(x_train, y_train)


def search_hist_gradient_boosting(x_train: pd.DataFrame, y_train: np.ndarray, x_val: pd.DataFrame,
                                  y_val: np.ndarray, feature_set: FeatureSet, seed: int,
                                  n_configurations: int = CONFIGURATIONS) -> PeerSearch:
    """Fit ``n_configurations`` (``configurations``) on the prepared training rows; keep the best by weighted F1
    on the prepared validation rows (``training.baselines.prepare``)."""
    from sklearn.pipeline import make_pipeline

    start = time.perf_counter()
    columns, mask = column_encoder(feature_set)
    y_train, y_val = np.asarray(y_train, dtype=int), np.asarray(y_val, dtype=int)
    data = (columns.fit_transform(x_train), y_train, columns.transform(x_val), y_val)
    trials, best, best_model = [], -1.0, None
    for params in configurations(n_configurations, seed):
        fit_start = time.perf_counter()
        model = _fit_one(params, data, mask, seed)
        score = compute_metrics(y_val, model.predict(data[2]))["weighted_f1"]
        trials.append({"params": params, "iterations": int(model.n_iter_), "validation_weighted_f1": score,
                       "fit_seconds": round(time.perf_counter() - fit_start, 3)})
        if score > best:
            best, best_model = score, model
    index = int(np.argmax([t["validation_weighted_f1"] for t in trials]))   # the first of equals, as above
    record = {"method": METHOD, "budget": {"configurations": len(trials), "seed": seed,
                                           "early_stopping_rounds": EARLY_STOPPING_ROUNDS,
                                           "wall_seconds": round(time.perf_counter() - start, 3)},
              "space": SEARCH_SPACE, "chosen": {"configuration": index, **trials[index]},
              "configurations": trials}
    return PeerSearch(make_pipeline(columns, best_model), record)
