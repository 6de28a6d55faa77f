"""Permutation importance of each input feature, and a top-20 bar chart.

Importance of a feature = accuracy on the rows minus the accuracy after shuffling that one column
(mean over repeats). Works for any model through a ``predict_proba(frame) -> (rows, 7)`` function.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd


def permutation_importance(predict_proba: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame,
                           y_true: Sequence[int], columns: Sequence[str], *, n_repeats: int = 2,
                           max_rows: int = 5000, seed: int = 0) -> list[dict[str, Any]]:
    """Accuracy drop per shuffled column, largest first: [{"feature", "importance", "std"}]."""
    rng = np.random.default_rng(seed)
    y_true = np.asarray(y_true, dtype=int)
    if len(frame) > max_rows:
        keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
        frame, y_true = frame.iloc[keep], y_true[keep]
    frame = frame.reset_index(drop=True)
    base = float(np.mean(np.asarray(predict_proba(frame)).argmax(axis=1) == y_true))
    rows = []
    for column in columns:
        drops = []
        for _ in range(n_repeats):
            shuffled = frame.copy()
            shuffled[column] = frame[column].to_numpy()[rng.permutation(len(frame))]
            accuracy = float(np.mean(np.asarray(predict_proba(shuffled)).argmax(axis=1) == y_true))
            drops.append(base - accuracy)
        rows.append({"feature": column, "importance": float(np.mean(drops)), "std": float(np.std(drops))})
    return sorted(rows, key=lambda r: r["importance"], reverse=True)


def plot_importance(importances: Sequence[dict[str, Any]], path: Path, *, top: int = 20,
                    title: str = "Permutation importance (test rows)") -> Path:
    """Horizontal bars of the ``top`` most important features, most important at the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(importances)[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(shown) + 1)))
    ax.barh([r["feature"] for r in shown], [r["importance"] for r in shown],
            xerr=[r["std"] for r in shown], color="tab:blue")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("accuracy drop when the feature is shuffled")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
