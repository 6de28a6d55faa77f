"""Metrics that respect the order of the grades and the quality of the probabilities.

Grades A..G are ordered: predicting B for an A loan is a smaller mistake than predicting G.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from training.calibration import expected_calibration_error


def mean_abs_grade_error(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Mean |true - predicted| in grade steps (0 = perfect, 1 = one grade off on average)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    return float(np.mean(np.abs(y_true - y_pred)))


def within_one_grade_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Share of rows predicted at most one grade away from the true grade."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    return float(np.mean(np.abs(y_true - y_pred) <= 1))


def extra_metrics(y_true: Sequence[int], probs: np.ndarray) -> dict[str, float]:
    """Ordinal and calibration metrics of (rows, 7) probabilities; prediction = most probable grade."""
    probs = np.asarray(probs, dtype=float)
    y_pred = probs.argmax(axis=1)
    return {
        "mean_abs_grade_error": mean_abs_grade_error(y_true, y_pred),
        "within_one_grade_accuracy": within_one_grade_accuracy(y_true, y_pred),
        "expected_calibration_error": expected_calibration_error(probs, y_true),
    }
