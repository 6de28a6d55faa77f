"""Every Keras layer the project registers: what a saved ``model.keras`` needs to load.

``keras.saving.load_model("model.keras")`` needs this module imported (``import training.layers``) and no
other project code; it imports ``training.features`` only for the derived columns' formulas.

The model's inputs (one per parsed record column, see ``training.model``) come in three forms:

- numbers: float64, NaN where missing;
- dates (``issue_d``, ``earliest_cr_line``): float64 days since 1970-01-01, NaN where missing;
- text: strings, the empty string where missing.
"""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf
from keras import ops

from training.features import DERIVATIONS, MISSING_CATEGORY


@keras.saving.register_keras_serializable(package="spotgrade")
class FillMissing(keras.layers.Layer):
    """Replace NaN/inf in a (batch, n) float tensor with one fill value per column."""

    def __init__(self, fill_values: Sequence[float], **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.fill_values = [float(v) for v in fill_values]

    def call(self, x):
        fill = ops.convert_to_tensor(self.fill_values, dtype=x.dtype)
        return ops.where(ops.isfinite(x), x, fill)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "fill_values": self.fill_values}


@keras.saving.register_keras_serializable(package="spotgrade")
class DerivedColumn(keras.layers.Layer):
    """One derived column (``training.features.DERIVATIONS[column]``) from its raw inputs, in float64 so the
    values are those ``training.features.add_derived_features`` computes; NaN where it gives NaN."""

    def __init__(self, column: str, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        if column not in DERIVATIONS:
            raise ValueError(f"no derived column {column!r}; known: {', '.join(DERIVATIONS)}")
        self.column = column

    def call(self, inputs):
        return DERIVATIONS[self.column].formula(ops, *inputs)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "column": self.column}


class _TextLayer(keras.layers.Layer):
    """A layer whose output is a string tensor of its input's shape."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, dtype="string")


@keras.saving.register_keras_serializable(package="spotgrade")
class NumberCategory(_TextLayer):
    """A numeric categorical column as text: NaN -> "missing", whole numbers without a fraction (36.0 -> "36"),
    other numbers with up to 15 significant digits (2.5 -> "2.5", inf -> "inf").

    ``training.model`` builds such a column's vocabulary with this layer, so training and serving agree."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)

    def call(self, x):
        whole = tf.math.is_finite(x) & tf.equal(x, tf.round(x)) & (tf.abs(x) < 2.0 ** 53)
        integers = tf.strings.as_string(tf.cast(tf.where(whole, x, tf.zeros_like(x)), tf.int64))
        text = tf.where(whole, integers, tf.strings.as_string(x, precision=15, shortest=True))
        return tf.where(tf.math.is_nan(x), MISSING_CATEGORY, text)


@keras.saving.register_keras_serializable(package="spotgrade")
class TextCategory(_TextLayer):
    """A text categorical column with the empty string (missing) as "missing"."""

    def call(self, x):
        return tf.where(tf.equal(x, ""), MISSING_CATEGORY, x)


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
