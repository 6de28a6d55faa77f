"""Row splits: one stratified split with a plain-random fallback, and the run's splits built on it.

Every split of a run (train/validation/test, the time split's validation part, the stratified sample,
the leakage audit's one-feature models) goes through ``stratified_split``, so a fixed seed gives the
same rows everywhere.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.errors import ConfigError, DataError

TEST_FRACTION = 0.15
VALIDATION_FRACTION = 0.15
TIME_TEST_FRACTION = 0.2


def stratified_split(indices: np.ndarray, labels: np.ndarray, seed: int,
                     **sizes: Any) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's train_test_split of ``indices`` (``sizes``: test_size/train_size), stratified by
    ``labels`` (one per index) where every label present has two rows and the split can hold every
    label, else plain random."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    if counts[counts > 0].min() >= 2:
        try:
            return train_test_split(indices, random_state=seed, stratify=labels, **sizes)
        except ValueError:  # a split too small to hold every label
            pass
    return train_test_split(indices, random_state=seed, **sizes)


def split_rows(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, validation, test) row positions; the same seed gives the same split."""
    positions = np.arange(len(labels))
    rest, test = stratified_split(positions, labels, seed, test_size=TEST_FRACTION)
    train, validation = stratified_split(rest, labels[rest], seed,
                                         test_size=VALIDATION_FRACTION / (1 - TEST_FRACTION))
    return np.sort(train), np.sort(validation), np.sort(test)


def stratified_sample(frame: pd.DataFrame, labels: np.ndarray, rows: int, seed: int) -> pd.DataFrame:
    """A reproducible random sample of ``rows`` rows keeping the grade shares."""
    keep, _ = stratified_split(np.arange(len(frame)), labels, seed, train_size=rows)
    return frame.iloc[np.sort(keep)].reset_index(drop=True)


def time_split(issue_d: pd.Series, labels: np.ndarray, seed: int, *, test_fraction: float = TIME_TEST_FRACTION,
               validation_fraction: float = VALIDATION_FRACTION) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) row positions: test = the newest ``test_fraction`` of rows by ``issue_d``
    (ties broken by row order), validation = a stratified random part of the older rows."""
    dates = pd.to_datetime(issue_d, errors="coerce")
    if dates.isna().all():
        raise DataError("issue_d: no parseable issue dates, needed by --split time; use --split random")
    order = np.argsort(dates.fillna(dates.min()).to_numpy(), kind="stable")
    n_test = max(1, int(round(len(order) * test_fraction)))
    older, test = order[:-n_test], order[-n_test:]
    if len(older) < 2:
        raise ConfigError(f"--split time: only {len(older)} rows older than the test rows")
    train, validation = stratified_split(older, labels[older], seed,
                                         test_size=validation_fraction / (1 - test_fraction))
    return np.sort(train), np.sort(validation), np.sort(test)
