"""The preprocessing layers of a model: from the feature set's columns to the feature matrix.

Numeric columns are filled (the training split's fill values), optionally log-scaled, normalised and
optionally binned; categorical columns become text ("missing" where missing) and go through a StringLookup
(one-hot with an OOV bucket, or an embedding). Statistics and vocabularies come from the training split.
What learns nothing (:meth:`Preprocessing.frozen`: every part but the embeddings, which take the lookup's
index) can be computed once per row (the head of ``training.model``). The layers are created once and can be
called on several sets of column tensors: the models built from them share their weights
(``training.model.build_model``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import keras
import numpy as np
import pandas as pd

from training import encoders
from training.datasets import numeric_matrix
from training.features import category_strings, is_number_column
from training.layers import FillMissing, NumberCategory, SignedLog1p, TextCategory

if TYPE_CHECKING:
    from training.features import FeatureSet, FillValues
    from training.model import ModelConfig

CONSTANT_COLUMN_VARIANCE = 1e30  # sqrt = 1e15: any finite input normalises to ~0
NUMBER, TEXT = "number", "text"


class NumericPart:
    """Fill, optional signed log, normalisation and optional quantile bins of the numeric columns."""

    def __init__(self, columns: list[str], train_frame: pd.DataFrame, fill_values: list[float],
                 config: ModelConfig):
        self.columns = columns
        filled = numeric_matrix(train_frame, columns)   # filled in place: one matrix of the split, not two
        np.copyto(filled, np.asarray(fill_values), where=np.isnan(filled))
        stats = filled
        mask = encoders.log_mask(columns, config.log_columns) if config.log_columns else []
        if any(mask):  # statistics of the log-scaled columns
            stats = encoders.signed_log1p(filled, mask)
        mean, variance = stats.mean(axis=0), stats.var(axis=0)
        # A column constant in training (e.g. bureau fields entirely empty before 2012, filled with the
        # fallback) carries no information: scale it to ~0 so real values at predict time cannot explode
        # through a 1/epsilon normalisation into weights that were never trained on them.
        variance = np.where(variance > 0, variance, CONSTANT_COLUMN_VARIANCE)
        self.join = keras.layers.Concatenate(name="numeric", dtype="float32") if len(columns) > 1 else None
        self.fill = FillMissing(fill_values, name="fill_missing")
        self.log = SignedLog1p(mask, name="log_money") if any(mask) else None
        self.normalize = keras.layers.Normalization(mean=mean.tolist(), variance=variance.tolist(),
                                                    name="normalize", dtype="float32")
        self.piecewise_linear, self.bins, self.bin_fills = None, {}, {}
        if config.quantile_bins > 0 and config.bin_encoding == "piecewise_linear":
            self.piecewise_linear = encoders.piecewise_linear(filled, config.quantile_bins)
        elif config.quantile_bins > 0:
            self.bins = encoders.quantile_bins(filled, columns, config.quantile_bins)
            self.bin_fills = {c: FillMissing([fill_values[columns.index(c)]], name=f"fill_{c}") for c in self.bins}

    def __call__(self, tensors: dict[str, keras.KerasTensor]) -> list[keras.KerasTensor]:
        joined = self.join([tensors[c] for c in self.columns]) if self.join is not None else tensors[self.columns[0]]
        raw = self.fill(joined)
        parts = [self.normalize(self.log(raw) if self.log is not None else raw)]
        if self.piecewise_linear is not None:
            parts.append(self.piecewise_linear(raw))
        parts += [self.bins[c](self.bin_fills[c](tensors[c])) for c in self.bins]
        return parts


class CategoryPart:
    """One categorical column: as text, then a StringLookup one-hot (or an embedding) of the training
    split's values with one OOV bucket."""

    def __init__(self, column: str, values: pd.Series, config: ModelConfig):
        self.kind = NUMBER if is_number_column(values) else TEXT
        if self.kind == NUMBER:
            self.text: keras.layers.Layer = NumberCategory(name=f"text_{column}")
            uniques = np.unique(values.to_numpy(dtype=np.float64, na_value=np.nan)).reshape(-1, 1)
            seen = {v.decode() for v in np.ravel(self.text(uniques).numpy())}
        else:
            self.text = TextCategory(name=f"text_{column}")
            seen = set(category_strings(values))
        vocabulary = sorted(seen - {"[UNK]"})
        self.embed: list[keras.layers.Layer] = []
        if 0 < config.embedding_min_vocab < len(vocabulary):
            self.lookup = keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1,
                                                    name=f"lookup_{column}")
            self.embed = encoders.embedding(len(vocabulary) + 1, column)
        else:
            self.lookup = keras.layers.StringLookup(vocabulary=vocabulary, output_mode="one_hot",
                                                    num_oov_indices=1, name=f"lookup_{column}")

    def frozen(self, tensor: keras.KerasTensor) -> keras.KerasTensor:
        """The column's one-hot block or, for an embedded column, its lookup index: nothing learned yet."""
        return self.lookup(self.text(tensor))

    def learned(self, x: keras.KerasTensor) -> keras.KerasTensor:
        """:meth:`frozen`'s output through the embedding, where the column has one."""
        for layer in self.embed:
            x = layer(x)
        return x


class Preprocessing:
    """Every preprocessing layer of one model; calling it on a dict of the feature set's column tensors
    gives the feature matrix."""

    def __init__(self, feature_set: FeatureSet, train_frame: pd.DataFrame, fill: FillValues,
                 config: ModelConfig):
        numeric, categorical = list(feature_set.numeric), list(feature_set.categorical)
        missing_fill = [c for c in numeric if c not in fill.values]
        if missing_fill:
            raise ValueError(f"no fill value for numeric columns {missing_fill}")
        if not numeric and not categorical:
            raise ValueError(f"feature set {feature_set.name!r} has no columns")
        self.numeric = NumericPart(numeric, train_frame, [float(fill.values[c]) for c in numeric], config) \
            if numeric else None
        self.categories = {c: CategoryPart(c, train_frame[c], config) for c in categorical}
        self.join = keras.layers.Concatenate(name="features")   # unused (not in the model) for one part
        #: column -> NUMBER or TEXT: how each column is given to the model
        self.kinds = {**{c: NUMBER for c in numeric}, **{c: part.kind for c, part in self.categories.items()}}

    def inputs(self, columns: list[str]) -> dict[str, keras.KerasTensor]:
        """One named model input per column (float64, or string for text categories; numbers not in
        ``kinds``, such as the inputs of derived columns, are float64)."""
        return {c: keras.Input(shape=(1,), name=c, dtype="string" if self.kinds.get(c) == TEXT else "float64")
                for c in columns}

    def __call__(self, tensors: dict[str, keras.KerasTensor]) -> keras.KerasTensor:
        return self.features(self.frozen(tensors))

    def frozen(self, tensors: dict[str, keras.KerasTensor]) -> list[keras.KerasTensor]:
        """The parts of the feature matrix computed without weights to learn: the numeric parts, then each
        category's one-hot block or, for an embedded one, its lookup index (see :meth:`features`)."""
        parts = self.numeric(tensors) if self.numeric is not None else []
        return parts + [part.frozen(tensors[c]) for c, part in self.categories.items()]

    def features(self, frozen: list[keras.KerasTensor]) -> keras.KerasTensor:
        """The feature matrix from :meth:`frozen`'s parts: the embedded categories' indices through their
        embeddings, every part joined in order."""
        first = len(frozen) - len(self.categories)
        parts = frozen[:first] + [part.learned(x) for part, x in zip(self.categories.values(), frozen[first:])]
        return self.join(parts) if len(parts) > 1 else parts[0]
