"""ChunkedHead: several batches per element, the same steps as one batch per element."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from training.datasets import gathered_dataset
from training.fast_head import ChunkedHead


def _head(cls, rows_per_batch=None):
    keras.utils.set_random_seed(7)
    features = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", kernel_constraint=keras.constraints.MaxNorm(3))(features)
    hidden = keras.layers.Dropout(0.2)(hidden)
    outputs = keras.layers.Dense(7, activation="softmax")(hidden)
    head = cls(features, outputs, batch_rows=rows_per_batch) if cls is ChunkedHead else cls(features, outputs)
    head.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    return head


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(230, 6)).astype("float32"), rng.integers(0, 7, 230)


def test_chunked_head_takes_the_same_steps_as_one_batch_per_element():
    x, y = _data()
    weights = {grade: 1.0 + grade / 7 for grade in range(7)}   # class weights become per-row weights
    plain = _head(keras.Model)
    plain_history = plain.fit(gathered_dataset(x, y, 230, batch_size=20), epochs=3, verbose=0,
                              class_weight=weights).history
    chunked = _head(ChunkedHead, rows_per_batch=20)       # 3 elements of 80, 80 and 70 rows: 12 steps
    chunked_history = chunked.fit(gathered_dataset(x, y, 230, batch_size=80), epochs=3, verbose=0,
                                  class_weight=weights).history
    assert int(chunked.optimizer.iterations.numpy()) == int(plain.optimizer.iterations.numpy()) == 36
    with pytest.raises(TypeError, match="takes a tf.data.Dataset of elements of several batches of 20 rows"):
        chunked.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(plain.get_weights(), chunked.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(chunked_history["loss"], plain_history["loss"], rtol=1e-4)
    np.testing.assert_allclose(chunked_history["accuracy"], plain_history["accuracy"], rtol=1e-4)


def test_without_batch_rows_or_under_a_strategy_each_element_is_one_batch():
    x, y = _data()
    unchunked = _head(ChunkedHead)
    unchunked.fit(gathered_dataset(x, y, 230, batch_size=80), epochs=1, verbose=0)
    assert int(unchunked.optimizer.iterations.numpy()) == 3
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        distributed = _head(ChunkedHead, rows_per_batch=20)
    distributed.fit(gathered_dataset(x, y, 230, batch_size=80), epochs=1, verbose=0)
    assert int(distributed.optimizer.iterations.numpy()) == 3
