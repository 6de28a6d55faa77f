"""Host arrays that TensorFlow can read in place: a large matrix held once, not once by numpy and again by a
tensor copied from it.

``tf.constant`` copies a numpy array (and needs a transient second buffer for it); a tensor made through
DLPack shares the array's memory, which TensorFlow's CPU kernels accept only when it is aligned to
:data:`ALIGNMENT` bytes (numpy's own large allocations are not: glibc puts a 16-byte header before them).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

ALIGNMENT = 64   # bytes: what TensorFlow's CPU tensors require (EIGEN_MAX_ALIGN_BYTES)


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> np.ndarray:
    """An uninitialised C-ordered array whose data starts on an :data:`ALIGNMENT`-byte boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(size + ALIGNMENT, dtype=np.uint8)
    offset = (-buffer.ctypes.data) % ALIGNMENT
    return buffer[offset:offset + size].view(dtype).reshape(shape)


def shares_memory_safely(array: np.ndarray) -> bool:
    """Whether a tensor can share ``array``'s memory: a number array (not bool), C-contiguous, writable and aligned."""
    return (isinstance(array, np.ndarray) and array.dtype.kind in "fiu" and array.size > 0
            and array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % ALIGNMENT == 0)


def host_tensor(array) -> tf.Tensor:
    """A CPU tensor of ``array``: sharing its memory where :func:`shares_memory_safely` (the tensor keeps the
    array alive; later writes to the array are seen by the tensor), else a copy (``tf.constant``)."""
    if shares_memory_safely(array):
        with tf.device("/CPU:0"):
            return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    with tf.device("/CPU:0"):
        return tf.constant(array)
