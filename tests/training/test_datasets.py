"""A frame as a model's inputs: arrays in the documented forms, batched datasets, per-epoch permutations."""
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.training.model_inputs import DERIVED, TINY, build_tiny, record_frame, tiny_frame
from training.datasets import (
    batch_count,
    frame_to_inputs,
    gathered_dataset,
    input_kinds,
    make_dataset,
    numeric_matrix,
)
from training.features import add_derived_features, fit_fill_values
from training.host_arrays import shares_memory_safely
from training.model import build_model

tiny = pytest.fixture(tiny_frame, scope="module", name="tiny")
tiny_built = pytest.fixture(build_tiny, scope="module", name="tiny_built")


@pytest.fixture(scope="module")
def model(tiny_built):
    return tiny_built.feature_model


def test_input_kinds_follow_the_inputs_dtypes(model):
    numeric, text = input_kinds(model)
    assert sorted(numeric) == ["dti", "fico", "term"]   # term: numbers, written as text inside the model
    assert text == ["home"]


def test_inputs_are_float64_numbers_dates_as_days_and_text_with_empty_missing():
    records = record_frame(20)
    derived = add_derived_features(records)
    inference = build_model(DERIVED, derived, fit_fill_values(derived, DERIVED)).inference
    inputs = frame_to_inputs(records, inference)
    assert set(inputs) == {"loan_amnt", "annual_inc", "issue_d", "earliest_cr_line", "total_bal_ex_mort",
                           "revol_bal", "total_il_high_credit_limit", "home"}
    assert all(v.shape == (20, 1) for v in inputs.values())
    assert inputs["issue_d"].dtype == np.float64
    days = (records["issue_d"] - pd.Timestamp("1970-01-01")).dt.days.to_numpy()
    np.testing.assert_array_equal(inputs["issue_d"][:, 0], days)
    assert np.isnan(inputs["earliest_cr_line"][0, 0]) and np.isnan(inputs["annual_inc"][0, 0])   # NaT, NaN
    assert inputs["home"][0, 0] == "" and inputs["home"][1, 0] in ("RENT", "OWN")
    numeric, _ = input_kinds(inference)
    np.testing.assert_array_equal(np.hstack([inputs[c] for c in numeric]), numeric_matrix(records, numeric))
    assert all(shares_memory_safely(inputs[c]) for c in numeric)   # a dataset's tensors read them in place


def test_make_dataset_batches_a_dict_of_tensors_with_labels(tiny, model):
    labels = np.arange(len(tiny)) % 7
    dataset = make_dataset(tiny, model, labels, batch_size=128)
    batches = list(dataset)
    assert [len(y) for _, y in batches] == [128, 128, 128, 16]
    inputs, y = batches[0]
    assert set(inputs) == set(TINY.columns)
    assert inputs["fico"].dtype.name == "float64" and inputs["fico"].shape == (128, 1)
    assert inputs["home"].dtype.name == "string"
    assert inputs["home"].numpy()[0, 0] == b""  # row 0 is NaN: "missing" inside the model
    assert inputs["term"].numpy()[0, 0] in (36.0, 60.0)
    np.testing.assert_array_equal(y.numpy(), labels[:128])
    # gathered from two matrices and split by name: each input what frame_to_inputs gives it
    expected = frame_to_inputs(tiny, model)
    for name, values in expected.items():
        got = np.concatenate([batch[name].numpy() for batch, _ in batches])
        if values.dtype.kind == "U":
            got = np.char.decode(got.astype("S"), "utf-8")
        np.testing.assert_array_equal(got, values, err_msg=name)


def test_shuffled_dataset_is_reproducible_with_a_seed(tiny, model):
    labels = np.arange(len(tiny)) % 7

    def first_labels():
        ds = make_dataset(tiny, model, labels, batch_size=50, shuffle=True, seed=3)
        return next(iter(ds))[1].numpy()

    first = first_labels()
    np.testing.assert_array_equal(first, first_labels())
    assert not np.array_equal(first, labels[:50])


def test_every_epoch_is_a_new_permutation_of_every_row():
    rows = 103
    dataset = gathered_dataset(np.arange(rows * 2, dtype="float32").reshape(rows, 2), np.arange(rows), rows,
                               batch_size=25, shuffle=True, seed=5)
    assert dataset.cardinality().numpy() == 5
    epochs = []
    for _ in range(3):
        batches = list(dataset)
        assert [len(y) for _, y in batches] == [25, 25, 25, 25, 3]
        x = np.concatenate([b.numpy() for b, _ in batches])
        y = np.concatenate([y.numpy() for _, y in batches])
        np.testing.assert_array_equal(x[:, 0], 2 * y)       # inputs and labels stay paired
        assert sorted(y) == list(range(rows))
        epochs.append(y)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    again = gathered_dataset(np.zeros((rows, 2), "float32"), np.arange(rows), rows, batch_size=25, shuffle=True,
                             seed=5)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in again]), epochs[0])


def test_an_endless_dataset_runs_pass_after_pass_each_a_new_permutation():
    rows = 103
    x = np.arange(rows * 2, dtype="float32").reshape(rows, 2)
    per_pass = batch_count(rows, 25)
    assert per_pass == 5
    endless = gathered_dataset(x, np.arange(rows), rows, batch_size=25, shuffle=True, seed=5, endless=True)
    assert endless.cardinality().numpy() == tf.data.INFINITE_CARDINALITY
    batches = list(endless.take(3 * per_pass))            # three epochs from one iterator
    passes = [batches[i:i + per_pass] for i in range(0, len(batches), per_pass)]
    orders = []
    for one in passes:
        assert [len(y) for _, y in one] == [25, 25, 25, 25, 3]
        y = np.concatenate([y.numpy() for _, y in one])
        np.testing.assert_array_equal(np.concatenate([b.numpy() for b, _ in one])[:, 0], 2 * y)
        assert sorted(y) == list(range(rows))
        orders.append(y)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    again = gathered_dataset(x, np.arange(rows), rows, batch_size=25, shuffle=True, seed=5, endless=True)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in again.take(2 * per_pass)]),
                                  np.concatenate(orders[:2]))   # reproducible from the seed
    in_order = gathered_dataset(x, np.arange(rows), rows, batch_size=25, endless=True)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in in_order.take(2 * per_pass)]),
                                  np.tile(np.arange(rows), 2))


@pytest.mark.parametrize("shuffle, endless", [(False, False), (True, False), (True, True)])
def test_datasets_run_without_tf_data_s_rewrites_or_autotuning(shuffle, endless):
    """Rewrites copy the captured inputs; the autotuning thread makes deleting an iterator wait for its next
    wake-up (seconds after a long fit)."""
    dataset = gathered_dataset(np.zeros((10, 2), "float32"), np.zeros(10), 10, batch_size=4, shuffle=shuffle,
                               endless=endless)
    options = dataset.options()
    assert options.experimental_optimization.apply_default_optimizations is False
    assert options.autotune.enabled is False
