"""Host arrays that a tensor reads in place (one copy of a large matrix), else copies."""
import numpy as np

from training.datasets import gathered_dataset
from training.host_arrays import ALIGNMENT, aligned_empty, host_tensor, shares_memory_safely


def test_an_aligned_array_starts_on_the_boundary_with_the_shape_and_dtype_asked():
    for rows in (1, 3, 1000):
        array = aligned_empty((rows, 7), np.float32)
        assert array.shape == (rows, 7) and array.dtype == np.float32 and array.flags.c_contiguous
        assert array.ctypes.data % ALIGNMENT == 0 and shares_memory_safely(array)


def test_a_tensor_of_an_aligned_array_shares_its_memory():
    array = aligned_empty((50, 3), np.float32)
    array[:] = 1.0
    tensor = host_tensor(array)
    array[7, 2] = 5.0        # written after: the tensor sees it, so it holds no copy
    assert tensor.numpy()[7, 2] == 5.0 and tensor.dtype.name == "float32"
    del array
    assert float(tensor.numpy().sum()) == 50 * 3 + 4.0   # the tensor keeps the memory alive


def test_other_arrays_are_copied():
    unaligned = aligned_empty((101,), np.float64)[1:]     # 8 bytes past the boundary
    strings = np.array([["a"], ["b"]])
    for array in (unaligned, strings, np.asfortranarray(np.ones((4, 3)))):
        assert not shares_memory_safely(array)
    unaligned[:] = 2.0
    tensor = host_tensor(unaligned)
    unaligned[0] = 9.0
    assert tensor.numpy()[0] == 2.0
    assert host_tensor(strings).numpy()[1, 0] == b"b"


def test_a_gathered_dataset_reads_an_aligned_matrix_in_place():
    matrix = aligned_empty((40, 2), np.float32)
    matrix[:] = np.arange(80, dtype=np.float32).reshape(40, 2)
    dataset = gathered_dataset(matrix, np.arange(40), 40, batch_size=16)
    matrix[0, 0] = -1.0       # after the dataset was made: no copy of the matrix behind it
    first, labels = next(iter(dataset))
    assert first.numpy()[0, 0] == -1.0 and labels.numpy()[1] == 1


def test_iterating_a_gathered_dataset_copies_no_input():
    rows = 1 << 19     # x 128 columns: 256 MiB, a copy would show in the resident memory
    matrix = aligned_empty((rows, 128), np.float32)
    matrix[:] = 1.0
    dataset = gathered_dataset(matrix, np.zeros(rows, int), rows, batch_size=1 << 14, shuffle=True, seed=1)
    assert dataset.options().experimental_optimization.apply_default_optimizations is False
    before = _rss_mib()
    for _ in dataset:
        pass
    assert _rss_mib() - before < 128


def _rss_mib() -> float:
    import os
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
