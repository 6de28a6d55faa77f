"""Permutation importance of each input feature (its plot: training.plots.plot_importance).

Importance of a feature = accuracy on the rows minus the accuracy after shuffling that one column
(mean over repeats). Works for any model through a ``predict_proba(frame) -> (rows, 7)`` function.
A column with no value in the rows measured (entirely missing) is not shuffled: it is listed last, marked
``"empty": True`` with importance 0, and plots and reports leave it out of the ranking.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def permutation_importance(predict_proba: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame,
                           y_true: ArrayLike, columns: Sequence[str], *, n_repeats: int = 2,
                           max_rows: int = 5000, seed: int = 0) -> list[dict[str, Any]]:
    """Accuracy drop per shuffled column, largest first: [{"feature", "importance", "std"}], then the
    columns empty in every row measured, with ``"empty": True``."""
    rng = np.random.default_rng(seed)
    y_true = np.asarray(y_true, dtype=int)
    if len(frame) > max_rows:
        keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
        frame, y_true = frame.iloc[keep], y_true[keep]
    frame = frame.reset_index(drop=True)
    base = float(np.mean(np.asarray(predict_proba(frame)).argmax(axis=1) == y_true))
    rows, empty = [], []
    for column in columns:
        if frame[column].isna().all():
            empty.append({"feature": column, "importance": 0.0, "std": 0.0, "empty": True})
            continue
        drops = []
        for _ in range(n_repeats):
            shuffled = frame.copy()
            shuffled[column] = frame[column].to_numpy()[rng.permutation(len(frame))]
            accuracy = float(np.mean(np.asarray(predict_proba(shuffled)).argmax(axis=1) == y_true))
            drops.append(base - accuracy)
        rows.append({"feature": column, "importance": float(np.mean(drops)), "std": float(np.std(drops))})
    return sorted(rows, key=lambda r: r["importance"], reverse=True) + empty

