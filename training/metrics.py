"""Metrics of grade predictions (grade indices 0..6): metrics.json's blocks, ordinal and calibration metrics.

Grades A..G are ordered: predicting B for an A loan is a smaller mistake than predicting G. Calibration is
top-label: rows are binned by the probability of their predicted grade (the model's confidence); in a
calibrated model the accuracy within each bin equals its mean confidence.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.data import GRADES


def grade_labels(frame: pd.DataFrame) -> np.ndarray:
    """The ``grade`` column (letters A..G) as grade indices 0..6."""
    return frame["grade"].map({g: i for i, g in enumerate(GRADES)}).to_numpy(dtype=np.int64)


def compute_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict:
    """Accuracy, weighted/macro F1, per-grade precision/recall/f1/support and the 7x7 confusion matrix.

    Labels are grade indices 0..6; macro F1 averages over the grades present in y_true or y_pred.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if len(y_true) == 0:
        raise ValueError("no rows to evaluate")
    labels = list(range(len(GRADES)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "per_grade": {
            grade: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, grade in enumerate(GRADES)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def majority_baseline(y_train: ArrayLike, y_test: ArrayLike) -> dict:
    """Metrics of always predicting the training split's most frequent grade."""
    majority = int(np.bincount(np.asarray(y_train, dtype=int), minlength=len(GRADES)).argmax())
    return compute_metrics(y_test, np.full(len(np.asarray(y_test)), majority))


def mean_abs_grade_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean |true - predicted| in grade steps (0 = perfect, 1 = one grade off on average)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    return float(np.mean(np.abs(y_true - y_pred)))


def within_one_grade_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of rows predicted at most one grade away from the true grade."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    return float(np.mean(np.abs(y_true - y_pred) <= 1))


def reliability_bins(probs: np.ndarray, y_true: ArrayLike, n_bins: int = 15) -> list[dict[str, Any]]:
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


def expected_calibration_error(probs: np.ndarray, y_true: ArrayLike, n_bins: int = 15) -> float:
    """Row-weighted mean |accuracy - confidence| over the bins (0 = perfectly calibrated)."""
    bins = reliability_bins(probs, y_true, n_bins)
    total = sum(b["rows"] for b in bins)
    if total == 0:
        raise ValueError("no rows to calibrate")
    return float(sum(b["rows"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total)


def extra_metrics(y_true: ArrayLike, probs: np.ndarray) -> dict[str, float]:
    """Ordinal and calibration metrics of (rows, 7) probabilities; prediction = most probable grade."""
    probs = np.asarray(probs, dtype=float)
    y_pred = probs.argmax(axis=1)
    return {
        "mean_abs_grade_error": mean_abs_grade_error(y_true, y_pred),
        "within_one_grade_accuracy": within_one_grade_accuracy(y_true, y_pred),
        "expected_calibration_error": expected_calibration_error(probs, y_true),
    }


FEW_ROWS = 30   # a year with fewer test rows is reported but flagged (few_rows)


def per_year_metrics(y_true: ArrayLike, y_pred: ArrayLike, issued: pd.Series) -> dict[str, dict[str, Any]]:
    """By issue year of ``issued`` (dates; rows without one left out), in year order: ``rows``, ``accuracy``,
    ``weighted_f1`` and ``macro_f1`` (``compute_metrics``) and ``few_rows`` (under FEW_ROWS rows)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    years = pd.to_datetime(pd.Series(issued)).dt.year.to_numpy()
    out = {}
    for year in sorted(int(y) for y in np.unique(years[~np.isnan(years)])):
        rows = years == year
        scores = compute_metrics(y_true[rows], y_pred[rows])
        out[str(year)] = {"rows": int(rows.sum()), **{k: scores[k] for k in ("accuracy", "weighted_f1", "macro_f1")},
                          "few_rows": bool(rows.sum() < FEW_ROWS)}
    return out


def per_year_block(frame: pd.DataFrame, y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, Any]:
    """``{"per_year": per_year_metrics(...)}`` of the rows of ``frame`` (with an ``issue_d`` column holding a
    date), else ``{}``: to merge into a metrics block."""
    if "issue_d" not in frame.columns or not frame["issue_d"].notna().any():
        return {}
    return {"per_year": per_year_metrics(y_true, y_pred, frame["issue_d"])}


def versus_baselines(test_metrics: dict[str, Any], baselines: dict[str, dict[str, Any]],
                     key: str = "weighted_f1") -> list[str]:
    """One line per baseline: did the Keras model beat it on ``key`` (test rows)?"""
    ours = test_metrics[key]
    lines = []
    for name, metrics in baselines.items():
        theirs = metrics[key]
        verdict = "beats" if ours > theirs else ("ties" if ours == theirs else "does NOT beat")
        lines.append(f"Keras model {verdict} {name} on {key.replace('_', ' ')}: {ours:.4f} vs {theirs:.4f}")
    return lines
