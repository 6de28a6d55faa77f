"""A parsed frame as a model's inputs: numpy arrays (frame_to_inputs) and tf.data pipelines (make_dataset,
gathered_dataset).

A model's inputs say what they take (``training.layers``): float inputs get float64 numbers with NaN where
missing or not finite, dates as days since 1970-01-01; string inputs get text with "" where missing.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from training.features import category_strings, days_since_epoch
from training.host_arrays import aligned_empty, host_tensor


def input_kinds(model: keras.Model) -> tuple[list[str], list[str]]:
    """(numeric, text) input names of a built or loaded model, from the inputs' dtypes."""
    numeric, text = [], []
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        (text if "string" in str(tensor.dtype) else numeric).append(name)
    return numeric, text


def numeric_matrix(frame: pd.DataFrame, columns: Sequence[str], *, aligned: bool = False) -> np.ndarray:
    """(rows, len(columns)) float64 matrix, NaN where missing or non-finite; dates as days since 1970-01-01.
    Column-major; ``aligned``: row-major and aligned, so that a tensor reads it in place (host_arrays)."""
    shape = (len(frame), len(columns))
    matrix = aligned_empty(shape, np.float64) if aligned else np.empty(shape, dtype=np.float64, order="F")
    for i, col in enumerate(columns):
        _fill_numbers(matrix[:, i], frame[col])
    return matrix


def _fill_numbers(out: np.ndarray, series: pd.Series) -> None:
    """``out`` (1-D float64) := the series' numbers, NaN where missing or non-finite; dates as days."""
    if pd.api.types.is_datetime64_any_dtype(series):
        out[:] = days_since_epoch(series)
    else:
        if not pd.api.types.is_numeric_dtype(series):
            series = pd.to_numeric(series, errors="coerce")
        out[:] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    out[~np.isfinite(out)] = np.nan


def text_values(series: pd.Series) -> np.ndarray:
    """A text input's (rows, 1) str array: "" where missing, numbers as text (36.0 -> "36")."""
    return category_strings(series, missing="").to_numpy(dtype=str).reshape(-1, 1)


def distinct_texts(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(each row's code, -1 where missing; the distinct values, formatted as text_values formats them)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, category_strings(pd.Series(uniques, dtype=series.dtype), missing="").tolist()


def text_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """(rows, len(columns)) UTF-8 bytes of the text inputs, as text_values gives them (each distinct value
    formatted and encoded once): what TensorFlow takes as strings without a conversion per row."""
    parts = []
    for col in columns:
        codes, labels = distinct_texts(frame[col])
        parts.append(np.array([t.encode() for t in labels] + [b""], dtype=bytes)[codes])
    return np.column_stack(parts) if parts else np.empty((len(frame), 0), dtype="S1")


def frame_to_inputs(frame: pd.DataFrame, model: keras.Model) -> dict[str, np.ndarray]:
    """The model's inputs from the frame's columns of the same names: a dict of (rows, 1) arrays; each
    numeric one aligned on its own, so that a dataset's tensor reads it in place (gathered_dataset)."""
    numeric, text = input_kinds(model)
    inputs = {}
    for col in numeric:
        inputs[col] = aligned_empty((len(frame), 1), np.float64)
        _fill_numbers(inputs[col][:, 0], frame[col])
    return {**inputs, **{col: text_values(frame[col]) for col in text}}


def make_dataset(frame: pd.DataFrame, model: keras.Model, labels=None, *, batch_size: int,
                 shuffle: bool = False, seed: int = 0, endless: bool = False) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline of (the model's inputs dict[, integer grade labels]).

    The inputs are held as tensors once, as two matrices (the numbers, the texts: packed_inputs), and
    each batch is gathered from them (gathered_dataset), then split into the model's named inputs: slicing
    40+ inputs row by row, holding every row in a shuffle buffer and re-batching cost more than the model's
    own step, and many times the data's memory; a gather per input cost 40+ ops per batch, and 45 ms to
    instantiate every new iterator (Keras makes two per validation). With ``shuffle``, each epoch is a new
    permutation of every row, reproducible from ``seed``; ``endless``: see gathered_dataset.
    """
    numeric, text = input_kinds(model)
    return gathered_dataset(packed_inputs(frame, numeric, text), labels, len(frame), batch_size=batch_size,
                            shuffle=shuffle, seed=seed, endless=endless,
                            unpack=lambda batch: named_inputs(numeric, text, *batch))


def packed_inputs(frame: pd.DataFrame, numeric: Sequence[str], text: Sequence[str]) -> tuple[np.ndarray, ...]:
    """(numbers, texts): the frame's numeric inputs as one aligned row-major float64 matrix (numeric_matrix)
    and its text inputs as text_matrix gives them."""
    return numeric_matrix(frame, numeric, aligned=True), text_matrix(frame, text)


def named_inputs(numeric: Sequence[str], text: Sequence[str], numbers, texts) -> dict[str, tf.Tensor]:
    """The model's (rows, 1) inputs by name from the two matrices of packed_inputs (numbers, texts), each
    matrix split in its columns by one op."""
    inputs = dict(zip(numeric, tf.split(numbers, len(numeric), axis=1) if numeric else []))
    inputs.update(zip(text, tf.split(texts, len(text), axis=1) if text else []))
    return inputs


#: Batches gathered ahead of the training step. A fixed small number: tf.data's autotuning threads take
#: time from the step on a machine with few cores.
PREFETCH_BATCHES = 2


def batch_count(rows: int, batch_size: int) -> int:
    """Batches in one pass over ``rows`` rows (the last one may be short)."""
    return -(-rows // batch_size)


def gathered_dataset(inputs, labels, rows: int, *, batch_size: int, shuffle: bool = False,
                     seed: int = 0, endless: bool = False,
                     unpack: Callable[[Any], Any] | None = None) -> tf.data.Dataset:
    """Batches of ``inputs`` (an array or a dict of arrays, ``rows`` rows each) [and labels]; with ``shuffle``
    the rows are reshuffled every epoch from ``seed`` (see make_dataset).

    ``endless``: the passes follow one another in one dataset, for ``fit`` to take batch_count(rows,
    batch_size) steps per epoch from one iterator. A finite dataset gets a new iterator every epoch, for
    training and for validation, and each one instantiates the dataset's functions anew: 40-70 ms for a
    model's 40+ inputs on 2 cores, 0.15 s per epoch of the default model (docs/performance.md).

    Each epoch's permutation is drawn in one op, not row by row through a shuffle buffer, and each batch is
    gathered by its slice of it (no copy of the whole epoch). The tensors live in host memory (tf.data runs
    on the CPU, and a GPU keeps only the batches); an aligned array (training.host_arrays) is read in place,
    not copied. ``unpack``, where given, makes each batch of ``inputs`` what the model takes (make_dataset).
    """
    tensors = tf.nest.map_structure(host_tensor, inputs)
    if labels is not None:
        with tf.device("/CPU:0"):
            tensors = (tensors, tf.constant(np.asarray(labels, dtype=np.int32)))

    def batch_at(order, start):
        batch = tf.nest.map_structure(lambda values: tf.gather(values, order[start:start + batch_size]), tensors)
        if unpack is None:
            return batch
        return (unpack(batch[0]), batch[1]) if labels is not None else unpack(batch)

    def batches(order) -> tf.data.Dataset:
        return tf.data.Dataset.range(0, rows, batch_size).map(lambda start: batch_at(order, start))

    if not shuffle:
        dataset = batches(tf.range(rows, dtype=tf.int64))
        return _in_place((dataset.repeat() if endless else dataset).prefetch(PREFETCH_BATCHES))
    # one element per pass: a permutation drawn in one op, from a new seed on every pass (endless: the
    # seeds' stream, one per pass; else a new seed for every iteration over the dataset)
    seeds = (tf.data.Dataset.random(seed=seed) if endless
             else tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1))
    orders = seeds.map(lambda s: tf.random.experimental.stateless_shuffle(tf.range(rows, dtype=tf.int64),
                                                                         seed=tf.stack([s, 0])))
    count = tf.data.INFINITE_CARDINALITY if endless else batch_count(rows, batch_size)
    # flat_map hides the count; Keras uses it for its progress and checks
    dataset = orders.flat_map(batches).apply(tf.data.experimental.assert_cardinality(count))
    return _in_place(dataset.prefetch(PREFETCH_BATCHES))


def _in_place(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset without tf.data's default graph rewrites: rewriting serialises the pipeline, and with it
    every captured tensor (the whole inputs) as a constant, a full copy when iteration starts. The pipeline
    is already what they would make of it (a fixed prefetch; gathers, not element-wise maps). No autotuning
    either: nothing to tune, and deleting an iterator waits for the autotuning thread's next wake-up, which
    comes later the longer the iterator ran (seconds after a fit of the default model: 7 and 17 s seen)."""
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return dataset.with_options(options)
