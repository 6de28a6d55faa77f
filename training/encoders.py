"""Optional encoders of ``training.model.build_model`` (each off by default in ``ModelConfig``):

- ``log_columns``: ``sign(x) * log1p(|x|)`` of skewed money columns before normalisation;
- ``quantile_bins``: each numeric column also one-hot encoded into up to N training-split quantile bins,
  so the network can learn sharp thresholds (LendingClub's grade follows FICO bands);
- ``bin_encoding="piecewise_linear"``: the quantile bins as a piecewise-linear encoding instead (PLE,
  Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular Deep Learning"): one value per bin,
  0 below it, 1 above it, linear inside, so the network sees both the band and the position within it;
- ``embedding_min_vocab``: categorical columns with more values than this get a small learned embedding
  instead of a one-hot (``addr_state``, ``purpose``).

The layers they add are Keras built-ins or registered in ``training.layers``, so the saved model loads
without this module.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from training.layers import PiecewiseLinear

#: Skewed money amounts (and their ratios) in LendingClub files; ``log_columns="money"`` picks these.
MONEY_COLUMNS: tuple[str, ...] = (
    "annual_inc", "annual_inc_joint", "loan_amnt", "revol_bal", "delinq_amnt", "loan_to_income", "tot_coll_amt",
    "tot_cur_bal", "avg_cur_bal", "bc_open_to_buy", "tot_hi_cred_lim", "total_bal_ex_mort", "total_bc_limit",
    "total_il_high_credit_limit", "total_rev_hi_lim", "total_bal_il", "max_bal_bc",
)


def signed_log1p(matrix: np.ndarray, mask: Sequence[bool]) -> np.ndarray:
    """NumPy twin of SignedLog1p (for the Normalization statistics)."""
    mask = np.asarray(mask, dtype=bool)
    return np.where(mask, np.sign(matrix) * np.log1p(np.abs(matrix)), matrix)


def log_mask(columns: Sequence[str], log_columns: Sequence[str] | str) -> list[bool]:
    """Which of ``columns`` get the log: ``"money"`` means MONEY_COLUMNS."""
    chosen = set(MONEY_COLUMNS if log_columns == "money" else log_columns)
    return [c in chosen for c in columns]


def quantile_boundaries(values: np.ndarray, bins: int) -> list[float]:
    """Distinct inner quantile boundaries of a filled training column (fewer where values repeat)."""
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]) if len(values) else np.array([])
    return [float(b) for b in np.unique(inner)]


def quantile_bins(train_matrix: np.ndarray, columns: Sequence[str], bins: int) -> dict[str, keras.layers.Layer]:
    """Column -> the one-hot quantile-bin layer of its filled values, for each column with at least two
    distinct boundaries."""
    layers = {}
    for i, column in enumerate(columns):
        boundaries = quantile_boundaries(train_matrix[:, i], bins)
        if len(boundaries) < 2:
            continue  # (near-)constant column: the normalised value says all there is
        layers[column] = keras.layers.Discretization(bin_boundaries=boundaries, output_mode="one_hot",
                                                     name=f"bins_{column}")
    return layers


def piecewise_linear_edges(train_matrix: np.ndarray, bins: int) -> tuple[list[int], list[float], list[float]]:
    """(column index, lower edge, width) of every PLE bin: training-split quantile edges per column,
    columns with fewer than two distinct bins skipped."""
    columns, lower, width = [], [], []
    for i in range(train_matrix.shape[1]):
        edges = np.unique(np.quantile(train_matrix[:, i], np.linspace(0, 1, bins + 1)))
        if len(edges) < 3:
            continue  # (near-)constant column: the normalised value says all there is
        columns += [i] * (len(edges) - 1)
        lower += edges[:-1].tolist()
        width += np.diff(edges).tolist()
    return columns, lower, width


def piecewise_linear(train_matrix: np.ndarray, bins: int) -> PiecewiseLinear | None:
    """The PLE layer of the filled numeric matrix (None when no column has two bins)."""
    columns, lower, width = piecewise_linear_edges(train_matrix, bins)
    return PiecewiseLinear(columns, lower, width, name="piecewise_linear") if columns else None


def embedding(vocabulary_size: int, column: str) -> list[keras.layers.Layer]:
    """The layers of a flattened embedding of StringLookup indices; ``vocabulary_size`` counts the OOV index
    too. Width ~ vocabulary ** 0.5, between 2 and 16."""
    width = int(min(16, max(2, round(vocabulary_size ** 0.5))))
    return [keras.layers.Embedding(vocabulary_size, width, name=f"embed_{column}"),
            keras.layers.Flatten(name=f"flat_{column}")]
