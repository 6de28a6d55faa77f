"""The Keras model, with its preprocessing inside, and the tf.data input pipeline.

The saved `.keras` file takes raw parsed records (one named input per feature column, missing values
allowed) and returns the seven grade probabilities: numeric NaN is filled with the training split's
fill values, then normalised; categorical values go through StringLookup one-hot with an OOV bucket.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops

from training import levers
from training.features import category_strings

if TYPE_CHECKING:
    from training.features import FeatureSet, FillValues

N_GRADES = 7


@dataclass
class ModelConfig:
    """Architecture and optimiser settings (defaults: the 2017 reference network)."""

    hidden_units: tuple[int, ...] = (100, 60)
    dropout: float = 0.2
    max_norm: float = 3.0
    learning_rate: float = 1e-3
    # model-quality levers (training.levers; docs/model-card.md), all off by default:
    log_columns: tuple[str, ...] | str = ()   # signed log1p before normalisation; "money" = levers.MONEY_COLUMNS
    quantile_bins: int = 0                    # >0: numeric columns also encoded by N training quantile bins
    bin_encoding: str = "one_hot"             # how the bins are encoded: "one_hot" or "piecewise_linear" (PLE)
    embedding_min_vocab: int = 0              # >0: categorical columns with more values get an embedding
    batch_norm: bool = False                  # BatchNormalization after each hidden Dense
    lr_schedule: str = "constant"             # "plateau": ReduceLROnPlateau on val_loss (train.py)
    weight_decay: float = 0.0                 # >0: AdamW with this decoupled weight decay instead of Adam
    ensemble: int = 1                         # >1: N networks on the shared preprocessing, probabilities averaged


#: Named model settings: "reference" = the 2017 network; "tuned" = the levers that beat gradient boosting on
#: application features (docs/model-card.md); train with --epochs 100 --patience 8 --batch-size 512.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "reference": ModelConfig(),
    "tuned": ModelConfig(hidden_units=(256, 128), dropout=0.3, log_columns="money", quantile_bins=64,
                         bin_encoding="piecewise_linear", embedding_min_vocab=10, lr_schedule="plateau",
                         ensemble=4),
}


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


def _numeric_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """(rows, len(columns)) float64 matrix (column-major), NaN where missing or non-finite."""
    matrix = np.empty((len(frame), len(columns)), dtype=np.float64, order="F")
    for i, col in enumerate(columns):
        series = frame[col]
        if not pd.api.types.is_numeric_dtype(series):
            series = pd.to_numeric(series, errors="coerce")
        matrix[:, i] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    matrix[~np.isfinite(matrix)] = np.nan
    return matrix


CONSTANT_COLUMN_VARIANCE = 1e30  # sqrt = 1e15: any finite input normalises to ~0


def categorical_values(series: pd.Series) -> np.ndarray:
    """A categorical column as a numpy str array (36.0 -> "36"), missing values as "missing"."""
    return category_strings(series).to_numpy(dtype=str)


def build_model(feature_set: FeatureSet, train_frame: pd.DataFrame, fill: FillValues,
                config: ModelConfig | None = None) -> keras.Model:
    """Compile the functional model; statistics (mean/variance, vocabularies) come from train_frame."""
    config = config or ModelConfig()
    numeric, categorical = list(feature_set.numeric), list(feature_set.categorical)
    missing_fill = [c for c in numeric if c not in fill.values]
    if missing_fill:
        raise ValueError(f"no fill value for numeric columns {missing_fill}")
    fill_values = [float(fill.values[c]) for c in numeric]

    inputs: dict[str, keras.KerasTensor] = {}
    parts = []
    if numeric:
        for col in numeric:
            inputs[col] = keras.Input(shape=(1,), name=col, dtype="float32")
        matrix = _numeric_matrix(train_frame, numeric)
        filled = np.where(np.isnan(matrix), np.asarray(fill_values), matrix)
        stats = filled
        mask = levers.log_mask(numeric, config.log_columns) if config.log_columns else []
        if any(mask):  # model-quality lever: statistics of the log-scaled columns (training.levers)
            stats = levers.signed_log1p(filled, mask)
        mean, variance = stats.mean(axis=0), stats.var(axis=0)
        # A column constant in training (e.g. bureau fields entirely empty before 2012, filled with the
        # fallback) carries no information: scale it to ~0 so real values at predict time cannot explode
        # through a 1/epsilon normalisation into weights that were never trained on them.
        variance = np.where(variance > 0, variance, CONSTANT_COLUMN_VARIANCE)
        joined = keras.layers.Concatenate(name="numeric", dtype="float32")([inputs[c] for c in numeric]) \
            if len(numeric) > 1 else inputs[numeric[0]]
        raw = FillMissing(fill_values, name="fill_missing")(joined)
        joined = levers.SignedLog1p(mask, name="log_money")(raw) if any(mask) else raw
        parts.append(keras.layers.Normalization(mean=mean.tolist(), variance=variance.tolist(),
                                                name="normalize", dtype="float32")(joined))
        if config.quantile_bins > 0 and config.bin_encoding == "piecewise_linear":
            parts += levers.piecewise_linear(raw, filled, config.quantile_bins)
        elif config.quantile_bins > 0:
            each = {c: FillMissing([fill_values[i]], name=f"fill_{c}")(inputs[c]) for i, c in enumerate(numeric)}
            parts += levers.quantile_one_hots(each, filled, numeric, config.quantile_bins)
    for col in categorical:
        inputs[col] = keras.Input(shape=(1,), name=col, dtype="string")
        vocabulary = sorted(set(categorical_values(train_frame[col])) - {"[UNK]"})
        if 0 < config.embedding_min_vocab < len(vocabulary):
            indices = keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1,
                                                name=f"lookup_{col}")(inputs[col])
            parts.append(levers.embedding(indices, len(vocabulary) + 1, col))
            continue
        lookup = keras.layers.StringLookup(vocabulary=vocabulary, output_mode="one_hot",
                                           num_oov_indices=1, name=f"lookup_{col}")
        parts.append(lookup(inputs[col]))
    if not parts:
        raise ValueError(f"feature set {feature_set.name!r} has no columns")

    features = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    members = [_tower(features, config, "" if config.ensemble == 1 else f"m{m}_") for m in range(config.ensemble)]
    outputs = members[0] if config.ensemble == 1 else keras.layers.Average(name="grade", dtype="float32")(members)
    model = keras.Model(inputs=inputs, outputs=outputs, name="spotgrade")
    model.compile(optimizer=_optimizer(config), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _tower(x: keras.KerasTensor, config: ModelConfig, prefix: str) -> keras.KerasTensor:
    """Hidden layers and the softmax head of one network (``prefix`` names the ensemble member)."""
    for i, units in enumerate(config.hidden_units):
        x = keras.layers.Dense(units, activation=None if config.batch_norm else "relu", name=f"{prefix}dense_{i}",
                               kernel_constraint=keras.constraints.MaxNorm(config.max_norm))(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(name=f"{prefix}batch_norm_{i}")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}relu_{i}")(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"{prefix}dropout_{i}")(x)
    return keras.layers.Dense(N_GRADES, activation="softmax", name=f"{prefix}grade", dtype="float32",
                              kernel_constraint=keras.constraints.MaxNorm(config.max_norm))(x)


def _optimizer(config: ModelConfig) -> keras.optimizers.Optimizer:
    if config.weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate=config.learning_rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(learning_rate=config.learning_rate)


def ensemble_training_view(model: keras.Model, config: ModelConfig) -> keras.Model:
    """For ``config.ensemble`` > 1: a model sharing ``model``'s layers whose outputs are the members' own
    probabilities, compiled with one loss per member, so each member learns on its own (a loss on the
    averaged output lets members co-adapt, which scored worse; docs/model-card.md). Fitting it trains
    ``model``, whose averaged output is what is saved and served."""
    outputs = [model.get_layer(f"m{m}_grade").output for m in range(config.ensemble)]
    view = keras.Model(inputs=model.inputs, outputs=outputs, name="spotgrade_members")
    view.compile(optimizer=_optimizer(config), loss=["sparse_categorical_crossentropy"] * config.ensemble)
    return view


HEAD_BATCHES_PER_ELEMENT = 16  # training batches per tf.data element when fitting the head (ChunkedHead)


class ChunkedHead(keras.Model):
    """A functional model whose ``fit`` takes elements of several consecutive batches of ``batch_rows``
    rows and runs one optimizer step per batch, in order, inside the compiled step.

    Performance (bench/train.py): on 2 cores tf.data costs about 1 ms per element handed to the step,
    as much as a step of the 100-60-7 network at batch 256 itself; one element per
    :data:`HEAD_BATCHES_PER_ELEMENT` batches leaves the steps (same batches, same order, same updates as
    one element per batch). With ``batch_rows`` unset, each element is one batch.
    """

    batch_rows: int | None = None

    def train_step(self, data):
        if not self.batch_rows:
            return super().train_step(data)
        x, y, weight = keras.utils.unpack_x_y_sample_weight(data)
        step = super(ChunkedHead, self).train_step     # autograph: no zero-argument super() in the loop
        size = self.batch_rows

        def batch(start):
            return tuple(None if t is None else t[start:start + size] for t in (x, y, weight))

        logs = step(batch(0))   # the first batch outside the loop: it builds the optimizer's variables
        _, logs = tf.while_loop(lambda start, _: start < tf.shape(x)[0],
                                lambda start, _: (start + size, step(batch(start))),
                                (tf.constant(size), logs))
        return logs


def split_preprocessing(model: keras.Model, config: ModelConfig) -> tuple[keras.Model, keras.Model] | None:
    """(preprocess, head) sharing ``model``'s layers, or None where the split does not apply.

    ``preprocess`` maps the raw inputs to the feature matrix (the first Dense layer's input); ``head``
    maps that matrix to the probabilities, compiled like ``model`` with its optimizer. Fitting ``head``
    trains ``model``.
    None for an ensemble or where the preprocessing has trainable weights (embeddings): those must
    learn through the whole model.
    """
    if config.ensemble != 1:
        return None
    first = model.get_layer("dense_0")
    preprocess = keras.Model(inputs=model.inputs, outputs=first.input, name="spotgrade_preprocess")
    if preprocess.trainable_weights:
        return None
    features = keras.Input(shape=tuple(first.input.shape[1:]), dtype="float32", name="features")
    x = features
    for layer in model.layers[model.layers.index(first):]:  # the tower: one chain of layers
        x = layer(x)
    head = ChunkedHead(inputs=features, outputs=x, name="spotgrade_head")
    # the model's own optimizer: its state (same variables) is saved with model.keras
    head.compile(optimizer=model.optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return preprocess, head


def input_kinds(model: keras.Model) -> tuple[list[str], list[str]]:
    """(numeric, categorical) input names of a built or loaded model, from the inputs' dtypes."""
    numeric, categorical = [], []
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        (categorical if "string" in str(tensor.dtype) else numeric).append(name)
    return numeric, categorical


def frame_to_inputs(frame: pd.DataFrame, feature_columns: Iterable[str],
                    categorical: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Model inputs as a dict of (rows, 1) arrays: float32 for numeric, str for categorical.

    Without `categorical`, a column is categorical unless its dtype is numeric.
    """
    columns = list(feature_columns)
    if categorical is None:
        categorical = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])
                       or pd.api.types.is_bool_dtype(frame[c])]
    categorical = set(categorical)
    numeric = [c for c in columns if c not in categorical]
    matrix = _numeric_matrix(frame, numeric).astype(np.float32, order="F")
    values = {col: matrix[:, i:i + 1] for i, col in enumerate(numeric)}
    values.update({col: categorical_values(frame[col]).reshape(-1, 1) for col in columns if col in categorical})
    return {col: values[col] for col in columns}


def make_dataset(frame: pd.DataFrame, feature_columns: Iterable[str], labels=None, *, batch_size: int,
                 shuffle: bool = False, seed: int = 0,
                 categorical: Iterable[str] | None = None) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline of (inputs dict[, integer grade labels]).

    Performance (bench/train.py, bench/scale.py): the inputs become tensors once and each epoch is
    gathered from them in a new random order (gathered_dataset). Slicing 40+ inputs row by row, holding
    every row in a shuffle buffer and re-batching cost more than the model's own step, and many times
    the data's memory. With ``shuffle``, each epoch is a new permutation of every row, reproducible
    from ``seed``.
    """
    inputs = frame_to_inputs(frame, feature_columns, categorical)
    return gathered_dataset(inputs, labels, len(frame), batch_size=batch_size, shuffle=shuffle, seed=seed)


#: Batches gathered ahead of the training step. A fixed small number: tf.data's autotuning threads took
#: a fifth of an epoch's time from the step on 2 cores (bench/train.py).
PREFETCH_BATCHES = 2


def gathered_dataset(inputs, labels, rows: int, *, batch_size: int, shuffle: bool = False,
                     seed: int = 0) -> tf.data.Dataset:
    """Batches of ``inputs`` (an array or a dict of arrays, ``rows`` rows each) [and labels]; with ``shuffle``
    the rows are reshuffled every epoch from ``seed`` (see make_dataset).

    Performance (bench/train.py): each epoch's permutation is drawn in one op, not row by row through a
    shuffle buffer (tf.data work per row costs as much as the training step on 2 cores), and each batch
    is gathered by its slice of it (no copy of the whole epoch: bench/scale.py's peak memory).
    """
    with tf.device("/CPU:0"):  # host memory: tf.data runs on the CPU, and a GPU keeps only the batches
        tensors = tf.nest.map_structure(tf.constant, inputs)
        if labels is not None:
            tensors = (tensors, tf.constant(np.asarray(labels, dtype=np.int32)))

    def batches(order) -> tf.data.Dataset:
        starts = tf.data.Dataset.range(0, rows, batch_size)
        return starts.map(lambda start: tf.nest.map_structure(
            lambda values: tf.gather(values, order[start:start + batch_size]), tensors))

    if not shuffle:
        return batches(tf.range(rows, dtype=tf.int64)).prefetch(PREFETCH_BATCHES)
    # one element per epoch: a permutation drawn in one op, from a new seed on every pass over the dataset
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    orders = seeds.map(lambda s: tf.random.experimental.stateless_shuffle(tf.range(rows, dtype=tf.int64),
                                                                         seed=tf.stack([s, 0])))
    batch_count = -(-rows // batch_size)   # flat_map hides it; Keras uses it for its progress and checks
    dataset = orders.flat_map(batches).apply(tf.data.experimental.assert_cardinality(batch_count))
    return dataset.prefetch(PREFETCH_BATCHES)
