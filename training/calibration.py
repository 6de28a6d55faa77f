"""Calibration of grade probabilities: expected calibration error and a reliability plot.

Top-label calibration: rows are binned by the probability of their predicted grade (the model's
confidence); in a calibrated model the accuracy within each bin equals its mean confidence.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def reliability_bins(probs: np.ndarray, y_true: Sequence[int], n_bins: int = 15) -> list[dict[str, Any]]:
    """Per equal-width confidence bin: rows, mean confidence, accuracy (empty bins are left out)."""
    probs = np.asarray(probs, dtype=float)
    y_true = np.asarray(y_true, dtype=int)
    if probs.ndim != 2 or len(probs) != len(y_true):
        raise ValueError(f"probs must be (rows, classes) with one row per label, got {probs.shape} "
                         f"and {len(y_true)} labels")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        member = which == b
        if member.any():
            bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "rows": int(member.sum()),
                         "confidence": float(confidence[member].mean()),
                         "accuracy": float(correct[member].mean())})
    return bins


def expected_calibration_error(probs: np.ndarray, y_true: Sequence[int], n_bins: int = 15) -> float:
    """Row-weighted mean |accuracy - confidence| over the bins (0 = perfectly calibrated)."""
    bins = reliability_bins(probs, y_true, n_bins)
    total = sum(b["rows"] for b in bins)
    if total == 0:
        raise ValueError("no rows to calibrate")
    return float(sum(b["rows"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total)


def plot_reliability(probs: np.ndarray, y_true: Sequence[int], path: Path, *, n_bins: int = 15,
                     title: str = "Reliability (test rows)") -> Path:
    """Accuracy per confidence bin against the diagonal, with the ECE in the title; rows per bin below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = reliability_bins(probs, y_true, n_bins)
    ece = expected_calibration_error(probs, y_true, n_bins)
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    width = 1.0 / n_bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.bar(centres, [b["accuracy"] for b in bins], width=width * 0.9, color="tab:blue", alpha=0.8,
            label="accuracy")
    top.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="tab:orange",
             label="(mean confidence, accuracy)")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(f"{title}: ECE {ece:.3f}")
    top.legend(loc="upper left")
    bottom.bar(centres, [b["rows"] for b in bins], width=width * 0.9, color="tab:grey")
    bottom.set_xlabel("confidence (probability of the predicted grade)")
    bottom.set_ylabel("rows")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
