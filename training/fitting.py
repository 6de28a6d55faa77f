"""Fitting a built model (training.model.BuiltModel) on parsed frames, and its probabilities on a frame.

Frames here hold the feature set's columns, derived ones included (``add_derived_features``), as training
has them; what is fitted shares its layers with the saved inference model:

- the head, on the frozen matrix computed once (the preprocessing that learns nothing: the same values every
  epoch; embeddings learn from its index columns), several batches per tf.data element (training.fast_head),
  where the matrix of both splits takes at most :data:`FROZEN_MATRIX_BYTES`;
- else ``built.per_batch``, the preprocessing in every step;
- an ensemble's members each with its own loss, on datasets whose label (and class weight, as a sample
  weight) is repeated once per member.
"""
from __future__ import annotations

import time
import weakref
from typing import Callable, NamedTuple

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.datasets import (
    batch_count,
    frame_to_inputs,
    gathered_dataset,
    input_kinds,
    make_dataset,
    named_inputs,
    numeric_matrix,
    text_matrix,
)
from training.fast_head import HEAD_BATCHES_PER_ELEMENT
from training.host_arrays import aligned_empty
from training.lookup_cut import LookupCut, lookup_cut
from training.model import N_GRADES, BuiltModel

FEATURE_BATCH_ROWS = 8192  # rows per batch when the preprocessing runs once over a split
VALIDATION_BATCH_ROWS = 4096  # at least, per validation step: no gradients to hold, fewer steps to dispatch
# the most the frozen matrix of the training and validation rows may take to be computed once (float32): the
# 2017 network's 136 columns for 2.3M rows take 1.2 GiB; the tuned preset's 659 for its 42k rows 0.1 GiB (for
# 2.3M rows, 5.6 GiB: features in every step instead, the memory bench scale measures)
FROZEN_MATRIX_BYTES = 2 * 2**30


def fit(built: BuiltModel, *, train_frame: pd.DataFrame, y_train: np.ndarray, val_frame: pd.DataFrame,
        y_val: np.ndarray, batch_size: int, epochs: int, seed: int, strategy: str | None,
        class_weight: dict | None, callbacks: list, log: Callable[[str], None]) -> None:
    """Fit the head on the frozen matrix (``built.per_batch`` where the matrix would take more than
    FROZEN_MATRIX_BYTES) for up to ``epochs`` epochs, the validation rows as validation data (``callbacks``,
    such as early stopping, decide when to stop). The training dataset is endless (gathered_dataset): each
    epoch is one pass of steps from one iterator for the whole fit. Validation is a finite dataset (Keras'
    evaluate makes new iterators every time anyway), in batches of at least VALIDATION_BATCH_ROWS."""
    ensemble = len(built.head.outputs)
    matrix_bytes = (len(train_frame) + len(val_frame)) * built.head.input_shape[1] * 4
    if matrix_bytes <= FROZEN_MATRIX_BYTES:
        model = built.head
        data = _head_datasets(built, train_frame, y_train, val_frame, y_val, batch_size=batch_size, seed=seed,
                              strategy=strategy, log=log)
    else:
        model = built.per_batch
        log(f"features computed in every step: the frozen matrix of {matrix_bytes / 2**30:.1f} GiB would be over "
            f"{FROZEN_MATRIX_BYTES / 2**30:.0f} GiB")
        val_batch = max(batch_size, VALIDATION_BATCH_ROWS)
        data = _Epochs(make_dataset(train_frame, model, y_train, batch_size=batch_size, shuffle=True, seed=seed,
                                    endless=True),
                       make_dataset(val_frame, model, y_val, batch_size=val_batch),
                       batch_count(len(train_frame), batch_size), batch_count(len(val_frame), val_batch))
    if ensemble > 1:
        data = _member_datasets(ensemble, data, class_weight)
        class_weight = None   # a sample weight per member instead
    model.fit(data.train, steps_per_epoch=data.train_steps, validation_data=data.validation,
              validation_steps=data.validation_steps, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False,
              class_weight=class_weight)


class _Epochs(NamedTuple):
    """The endless training dataset, the finite validation dataset, and the steps of one pass over each."""
    train: tf.data.Dataset
    validation: tf.data.Dataset
    train_steps: int
    validation_steps: int


def predict_proba(model: keras.Model, frame: pd.DataFrame, *, batch_size: int, traced: bool = True) -> np.ndarray:
    """(rows, 7) probabilities of ``model`` on the frame's columns named like its inputs, ``batch_size``
    rows per call of one graph cached per model: neither tf.data and Keras' predict loop nor a per-call
    binding of 40+ named inputs, which cost more than the model for the many small calls of prediction
    and permutation importance. ``traced=False`` calls the model eagerly instead: no graph to build (a third
    of a second on a small machine), for a few calls of many rows (predict in chunks).

    The categorical columns are looked up once per distinct value (training.lookup_cut), where the model's
    graph allows it."""
    cut = lookup_cut(model)
    if cut is not None:
        numbers, tables = cut.tables(frame)
        function = _cut_function(cut, tables) if traced else _eager_cut(cut)

        def rows(part: slice):
            return function(numbers[part], cut.blocks(tables, part))
    else:
        if traced:
            function, numeric, text = _model_function(model)
        else:
            numeric, text = input_kinds(model)

            def function(numbers, texts):
                return model(named_inputs(numeric, text, numbers, texts), training=False)
        numbers, texts = numeric_matrix(frame, numeric), text_matrix(frame, text)

        def rows(part: slice):
            return function(numbers[part], texts[part])
    parts = [np.asarray(rows(slice(i, i + batch_size))) for i in range(0, len(frame), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, N_GRADES), dtype=np.float32)


_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _model_function(model: keras.Model):
    """(function, numeric, text): ``model(inputs, training=False)`` as a `tf.function` of two matrices (the
    numeric inputs, the text inputs) with a fixed signature, cached per model; the graph slices the columns
    back into the model's inputs."""
    cached = _FUNCTIONS.get(model)
    if cached is None:
        numeric, text = input_kinds(model)
        model_ref = weakref.ref(model)   # the cache must not keep the model alive

        @tf.function(input_signature=[tf.TensorSpec((None, len(numeric)), tf.float64),
                                      tf.TensorSpec((None, len(text)), tf.string)])
        def call(numbers, texts):
            return model_ref()(named_inputs(numeric, text, numbers, texts), training=False)

        cached = _FUNCTIONS[model] = (call, numeric, text)
    return cached


def _cut_inputs(numeric: int, numbers, blocks) -> list:
    """The cut model's inputs: the ``numeric`` columns of the numeric matrix split by one op, then the lookups'
    blocks."""
    return [*(tf.split(numbers, numeric, axis=1) if numeric else []), *map(tf.convert_to_tensor, blocks)]


def _eager_cut(cut: LookupCut):
    return lambda numbers, blocks: cut.model(_cut_inputs(len(cut.numeric), numbers, blocks))


def _cut_function(cut: LookupCut, tables):
    """:func:`_model_function` for a :class:`LookupCut`: a `tf.function` of the numeric matrix and the lookups'
    blocks (their widths and dtypes from the tables), cached per cut model."""
    cached = _FUNCTIONS.get(cut.model)
    if cached is None:
        model_ref, numeric = weakref.ref(cut.model), len(cut.numeric)   # the cache must not keep the model alive
        blocks = [tf.TensorSpec((None, *table.shape[1:]), table.dtype) for _, table in tables]

        @tf.function(input_signature=[tf.TensorSpec((None, numeric), tf.float64), blocks])
        def call(numbers, blocks):
            return model_ref()(_cut_inputs(numeric, numbers, blocks))

        cached = _FUNCTIONS[cut.model] = call
    return cached


def _member_datasets(members: int, data: _Epochs, class_weight: dict | None) -> _Epochs:
    """The datasets with the label (and the class weight, as a sample weight) once per member."""
    weights = tf.constant([class_weight[i] for i in range(N_GRADES)] if class_weight else [1.0] * N_GRADES)

    def per_member(x, y):
        return x, (y,) * members, (tf.gather(weights, y),) * members

    return data._replace(train=data.train.map(per_member),
                         validation=data.validation.map(lambda x, y: (x, (y,) * members)))


def feature_matrix(preprocess: keras.Model, frame: pd.DataFrame, width: int) -> np.ndarray:
    """``preprocess`` on the frame's rows as one (rows, width) float32 matrix, aligned so that a tensor reads
    it in place (training.host_arrays): filled :data:`FEATURE_BATCH_ROWS` rows at a time, so the model's
    inputs exist for one slice of rows at a time, never for the whole frame, and the matrix is the only
    copy of the features."""
    rows = len(frame)
    matrix = aligned_empty((rows, width), np.float32)
    for start in range(0, rows, FEATURE_BATCH_ROWS):
        inputs = frame_to_inputs(frame.iloc[start:start + FEATURE_BATCH_ROWS], preprocess)
        matrix[start:start + FEATURE_BATCH_ROWS] = keras.ops.convert_to_numpy(preprocess(inputs, training=False))
    return matrix


def _head_datasets(built: BuiltModel, train_frame: pd.DataFrame, y_train: np.ndarray, val_frame: pd.DataFrame,
                   y_val: np.ndarray, *, batch_size: int, seed: int, strategy: str | None,
                   log: Callable[[str], None]) -> _Epochs:
    """The feature matrices of both splits, computed once by ``built.preprocess`` (feature_matrix), batched
    and shuffled as make_dataset would; each epoch gathers its batches from the one matrix."""
    preprocess, width = built.preprocess, built.head.input_shape[1]
    started = time.monotonic()
    x_train = feature_matrix(preprocess, train_frame, width)
    x_val = feature_matrix(preprocess, val_frame, width)
    log(f"features computed once: {x_train.shape[1]} columns for {len(x_train)} + {len(x_val)} rows "
        f"in {time.monotonic() - started:.1f}s")
    # several batches per element (ChunkedHead); under a tf.distribute strategy, where each replica
    # would loop over its own share, one batch per element
    rows = batch_size * (HEAD_BATCHES_PER_ELEMENT if strategy is None else 1)
    if built.head.batch_rows not in (None, batch_size):
        raise ValueError(f"the head was built for batches of {built.head.batch_rows} rows, not {batch_size}")
    return _Epochs(gathered_dataset(x_train, y_train, len(x_train), batch_size=rows, shuffle=True, seed=seed,
                                    endless=True),
                   gathered_dataset(x_val, y_val, len(x_val), batch_size=rows),
                   batch_count(len(x_train), rows), batch_count(len(x_val), rows))
