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
    same order and the same updates as one element per batch.

    With ``batch_rows`` None, or under a ``tf.distribute`` strategy (where each replica steps on its share
    of an element), each element is one batch.
    """

    def __init__(self, inputs, outputs, *, batch_rows: int | None = None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.batch_rows = batch_rows

    def train_step(self, data):
        if not self.batch_rows or tf.distribute.has_strategy():
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
