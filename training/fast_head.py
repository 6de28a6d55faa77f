"""ChunkedHead: a model fitted on elements of several batches, one optimizer step per batch.

Handing an element to the training step costs tf.data about as much as a step of the small dense network
itself on a machine with few cores; elements of :data:`HEAD_BATCHES_PER_ELEMENT` batches leave the steps.
"""
from __future__ import annotations

import keras
import tensorflow as tf

# training batches per tf.data element when fitting the head: 64 left the pipeline's median epoch at 0.82-0.85
# of the hand-written loop's (bench/train.py, six runs) where 16 gave 0.56-0.93; with one iterator per fit
# (training.datasets, endless) at 0.97 (docs/performance.md)
HEAD_BATCHES_PER_ELEMENT = 64


class ChunkedHead(keras.Model):
    """A functional model whose ``fit`` takes elements of several consecutive batches of ``batch_rows``
    rows and runs one optimizer step per batch, in order, inside the compiled step: the same batches, the
    same order and the same updates as one element per batch. Labels and sample weights may be tuples (a
    model with several outputs).

    With ``batch_rows`` None, or under a ``tf.distribute`` strategy (where each replica steps on its share
    of an element), each element is one batch.
    """

    def __init__(self, inputs, outputs, *, batch_rows: int | None = None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.batch_rows = batch_rows
        self._state_built = False

    def fit(self, x=None, *args, **kwargs):
        """keras.Model.fit on a dataset of elements of several batches; the loss trackers, metrics and
        optimizer variables are created first (:meth:`_build_state`), so that the step is traced once, in the
        loop over an element's batches."""
        with self.distribute_strategy.scope():
            if self.batch_rows and not tf.distribute.has_strategy():
                if not isinstance(x, tf.data.Dataset):
                    raise TypeError(f"ChunkedHead.fit takes a tf.data.Dataset of elements of several batches "
                                    f"of {self.batch_rows} rows, not {type(x).__name__}")
                self._build_state(x.element_spec)
        return super().fit(x, *args, **kwargs)

    def _build_state(self, spec) -> None:
        """Everything a training step creates on its first call, from a row of zeros shaped like ``spec``
        (the dataset's elements); the metrics are reset after."""
        if self._state_built:
            return
        zeros = tf.nest.map_structure(lambda t: tf.zeros([1, *t.shape[1:]], t.dtype), spec)
        x, y, weight = keras.utils.unpack_x_y_sample_weight(zeros)
        predicted = self(x, training=False)
        self.compute_loss(x, y, predicted, weight)
        self.compute_metrics(x, y, predicted, weight)
        self.reset_metrics()
        self.optimizer.build(self.trainable_variables)
        self._state_built = True

    def train_step(self, data):
        if not self.batch_rows or tf.distribute.has_strategy():
            return super().train_step(data)
        x, y, weight = keras.utils.unpack_x_y_sample_weight(data)
        step = super(ChunkedHead, self).train_step     # autograph: no zero-argument super() in the loop
        size = self.batch_rows

        def batch(start):   # y and weight: one per output where the head has several
            return tf.nest.map_structure(lambda t: None if t is None else t[start:start + size], (x, y, weight))

        def body(start):    # every batch in the loop (the state is built: fit): the step traced once
            step(batch(start))
            return start + size

        tf.while_loop(lambda start: start < tf.shape(x)[0], body, (tf.constant(0),))
        return self.get_metrics_result()
