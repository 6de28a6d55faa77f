"""A training run's scoring step: metrics.json's contents from the model's probabilities on its rows.

Test and validation metrics (training.metrics), the baselines fitted and scored on the same rows
(training.baselines; none with ``baselines=False``) and the permutation importance of every feature
(training.importance).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from training.baselines import BASELINES, TUNED, fit_baselines
from training.importance import permutation_importance
from training.metrics import compute_metrics, extra_metrics, per_year_block, versus_baselines

if TYPE_CHECKING:
    from training.features import FeatureSet, FillValues

IMPORTANCE_ROWS = 3000  # test rows the permutation importance shuffles


def score_run(*, predict_proba: Callable[[pd.DataFrame], np.ndarray], val_probs: np.ndarray,
              test_probs: np.ndarray, train_frame: pd.DataFrame, y_train: np.ndarray, val_frame: pd.DataFrame,
              y_val: np.ndarray, test_frame: pd.DataFrame, y_test: np.ndarray, feature_set: FeatureSet,
              fill: FillValues, seed: int, log: Callable[[str], None] = print, importance_rows: int = IMPORTANCE_ROWS,
              baselines: bool = True, tuned_peer: bool = True) -> dict[str, Any]:
    """metrics.json: ``test`` (with ``per_year`` where the rows have ``issue_d``) and ``validation`` blocks,
    ``rows``, ``baselines`` (left out when ``baselines`` is False; the tuned one is chosen on ``val_frame``, and
    left out when ``tuned_peer`` is False), ``permutation_importance``; logs whether the model beats each
    baseline."""
    test_pred = test_probs.argmax(axis=1)
    metrics: dict[str, Any] = {
        "test": {**compute_metrics(y_test, test_pred), **extra_metrics(y_test, test_probs),
                 **per_year_block(test_frame, y_test, test_pred)},
        "validation": {**compute_metrics(y_val, val_probs.argmax(axis=1)), **extra_metrics(y_val, val_probs)},
        "rows": {"train": len(y_train), "validation": len(y_val), "test": len(y_test)},
    }
    if baselines:
        include = BASELINES if tuned_peer else tuple(b for b in BASELINES if b != TUNED)
        if not tuned_peer:
            log(f"baselines: {TUNED} skipped (this preset; --preset tuned or reference runs its search)")
        metrics["baselines"] = fit_baselines(train_frame, y_train, test_frame, y_test, feature_set, fill, seed,
                                             include=include, validation=(val_frame, y_val))
        for line in versus_baselines(metrics["test"], metrics["baselines"]):
            log(line)
    else:
        log("baselines: skipped (--no-baselines)")
    metrics["permutation_importance"] = permutation_importance(
        predict_proba, test_frame, y_test, list(feature_set.columns), n_repeats=1, max_rows=importance_rows,
        seed=seed)
    return metrics

