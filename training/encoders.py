"""Model-quality levers for ``training.model.build_model`` (each off by default in ``ModelConfig``):

- ``log_columns``: ``sign(x) * log1p(|x|)`` of skewed money columns before normalisation;
- ``quantile_bins``: each numeric column also one-hot encoded into up to N training-split quantile bins,
  so the network can learn sharp thresholds (LendingClub's grade follows FICO bands);
- ``bin_encoding="piecewise_linear"``: the quantile bins as a piecewise-linear encoding instead (PLE,
  Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular Deep Learning"): one value per bin,
  0 below it, 1 above it, linear inside, so the network sees both the band and the position within it;
- ``embedding_min_vocab``: categorical columns with more values than this get a small learned embedding
  instead of a one-hot (``addr_state``, ``purpose``).

All layers here are Keras built-ins or registered, so the saved ``.keras`` model loads without this code
being special-cased.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

#: Skewed money amounts (and their ratios) in LendingClub files; ``log_columns="money"`` picks these.
MONEY_COLUMNS: tuple[str, ...] = (
    "annual_inc", "annual_inc_joint", "loan_amnt", "revol_bal", "delinq_amnt", "loan_to_income", "tot_coll_amt",
    "tot_cur_bal", "avg_cur_bal", "bc_open_to_buy", "tot_hi_cred_lim", "total_bal_ex_mort", "total_bc_limit",
    "total_il_high_credit_limit", "total_rev_hi_lim", "total_bal_il", "max_bal_bc",
)


@keras.saving.register_keras_serializable(package="spotgrade")
class SignedLog1p(keras.layers.Layer):
    """``sign(x) * log1p(|x|)`` on the columns where ``mask`` is true; other columns pass through."""

    def __init__(self, mask: Sequence[bool], **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mask = [bool(m) for m in mask]

    def call(self, x):
        mask = ops.convert_to_tensor(self.mask)
        return ops.where(mask, ops.sign(x) * ops.log1p(ops.abs(x)), x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mask": self.mask}


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


def quantile_one_hots(filled: dict[str, keras.KerasTensor], train_matrix: np.ndarray,
                      columns: Sequence[str], bins: int) -> list[keras.KerasTensor]:
    """One-hot quantile-bin tensors of each filled numeric input with at least two distinct boundaries."""
    parts = []
    for i, column in enumerate(columns):
        boundaries = quantile_boundaries(train_matrix[:, i], bins)
        if len(boundaries) < 2:
            continue  # (near-)constant column: the normalised value says all there is
        parts.append(keras.layers.Discretization(bin_boundaries=boundaries, output_mode="one_hot",
                                                 name=f"bins_{column}")(filled[column]))
    return parts


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


@keras.saving.register_keras_serializable(package="spotgrade")
class PiecewiseLinear(keras.layers.Layer):
    """Piecewise-linear encoding of a filled (batch, n) float matrix: output unit j is
    ``clip((x[:, columns[j]] - lower[j]) / width[j], 0, 1)``."""

    def __init__(self, columns: Sequence[int], lower: Sequence[float], width: Sequence[float], **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]
        self.lower = [float(v) for v in lower]
        self.width = [float(v) for v in width]

    def call(self, x):
        picked = ops.take(x, ops.convert_to_tensor(self.columns, dtype="int32"), axis=1)
        lower = ops.convert_to_tensor(self.lower, dtype=x.dtype)
        width = ops.convert_to_tensor(self.width, dtype=x.dtype)
        return ops.clip((picked - lower) / width, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.columns))

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "lower": self.lower, "width": self.width}


def piecewise_linear(filled: keras.KerasTensor, train_matrix: np.ndarray, bins: int) -> list[keras.KerasTensor]:
    """The PLE tensor of the filled numeric matrix (empty list when no column has two bins)."""
    columns, lower, width = piecewise_linear_edges(train_matrix, bins)
    return [PiecewiseLinear(columns, lower, width, name="piecewise_linear")(filled)] if columns else []


def embedding(lookup_indices: keras.KerasTensor, vocabulary_size: int, column: str) -> keras.KerasTensor:
    """A flattened embedding of StringLookup indices; ``vocabulary_size`` counts the OOV index too.
    Width ~ vocabulary ** 0.5, between 2 and 16."""
    width = int(min(16, max(2, round(vocabulary_size ** 0.5))))
    vectors = keras.layers.Embedding(vocabulary_size, width, name=f"embed_{column}")(lookup_indices)
    return keras.layers.Flatten(name=f"flat_{column}")(vectors)
