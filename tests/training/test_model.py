"""The Keras model: inputs, architecture, preprocessing inside (fill, normalisation, one-hot with OOV)."""
import keras
import numpy as np
import pandas as pd
import pytest

from training.features import FeatureSet, FillValues
from training.model import ChunkedHead, ModelConfig, build_model, gathered_dataset, input_kinds, make_dataset

TINY = FeatureSet(name="tiny", numeric=("fico", "dti"), categorical=("home", "term"), description="test set")
FILL = FillValues(values={"fico": 700.0, "dti": -5.0}, rules={"fico": "mean", "dti": "mean"})


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame({"fico": rng.normal(700, 30, n), "dti": rng.uniform(0, 40, n),
                       "home": rng.choice(["RENT", "OWN", "MORTGAGE"], n).astype(object),
                       "term": rng.choice([36.0, 60.0], n)})
    df.loc[::10, "fico"] = np.nan
    df.loc[::9, "home"] = np.nan
    return df


@pytest.fixture(scope="module")
def model(frame):
    keras.utils.set_random_seed(0)
    return build_model(TINY, frame, FILL, ModelConfig())


def _predict(model, frame):
    return model.predict(make_dataset(frame, TINY.columns, batch_size=64, categorical=TINY.categorical), verbose=0)


def test_one_named_input_per_feature_column_with_its_dtype(model):
    numeric, categorical = input_kinds(model)
    assert sorted(numeric) == ["dti", "fico"]
    assert sorted(categorical) == ["home", "term"]
    assert [t.shape for t in model.inputs] == [(None, 1)] * 4
    assert model.output_shape == (None, 7)


def test_default_architecture_is_the_reference_network(model):
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [100, 60, 7]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "softmax"]
    assert all(isinstance(d.kernel_constraint, keras.constraints.MaxNorm) and d.kernel_constraint.max_value == 3
               for d in dense)
    dropout = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in dropout] == [0.2, 0.2]
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)


def test_width_depth_dropout_and_learning_rate_are_configurable(frame):
    config = ModelConfig(hidden_units=(32, 16, 8), dropout=0.0, learning_rate=0.01)
    model = build_model(TINY, frame, FILL, config)
    assert [d.units for d in model.layers if isinstance(d, keras.layers.Dense)] == [32, 16, 8, 7]
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01)


def test_normalisation_statistics_come_from_the_filled_training_frame(model, frame):
    norm = model.get_layer("normalize")
    filled = frame["fico"].fillna(700.0)
    assert np.asarray(norm.mean).ravel()[0] == pytest.approx(filled.mean(), rel=1e-5)
    assert np.asarray(norm.variance).ravel()[0] == pytest.approx(filled.var(ddof=0), rel=1e-4)


def test_missing_numeric_values_are_filled_inside_the_model(model, frame):
    rows = frame.iloc[:3].copy()
    rows["fico"] = [np.nan, 700.0, np.inf]
    rows["dti"] = [np.nan, -5.0, -5.0]
    rows["home"], rows["term"] = "RENT", 36.0
    probabilities = _predict(model, rows)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probabilities[0], probabilities[1])  # NaN == the fill value
    np.testing.assert_array_equal(probabilities[2], probabilities[1])  # inf too


def test_unseen_categories_fall_in_the_oov_bucket(model, frame):
    rows = frame.iloc[:3].copy()
    rows["fico"], rows["dti"], rows["term"] = 690.0, 20.0, 36.0
    rows["home"] = ["NEVER-SEEN", "ALSO-NEW", "RENT"]
    probabilities = _predict(model, rows)
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
    vocabulary = model.get_layer("lookup_home").get_vocabulary()
    assert vocabulary[0] == "[UNK]" and {"RENT", "OWN", "MORTGAGE", "missing"} <= set(vocabulary)
    assert set(model.get_layer("lookup_term").get_vocabulary()) == {"[UNK]", "36", "60"}


def test_make_dataset_batches_a_dict_of_tensors_with_labels(frame):
    labels = np.arange(len(frame)) % 7
    dataset = make_dataset(frame, TINY.columns, labels, batch_size=128, categorical=TINY.categorical)
    batches = list(dataset)
    assert [len(y) for _, y in batches] == [128, 128, 128, 16]
    inputs, y = batches[0]
    assert set(inputs) == set(TINY.columns)
    assert inputs["fico"].dtype.name == "float32" and inputs["fico"].shape == (128, 1)
    assert inputs["home"].dtype.name == "string"
    assert inputs["home"].numpy()[0, 0] == b"missing"  # row 0 is NaN
    assert inputs["term"].numpy()[0, 0] in (b"36", b"60")
    np.testing.assert_array_equal(y.numpy(), labels[:128])


def test_shuffled_dataset_is_reproducible_with_a_seed(frame):
    labels = np.arange(len(frame)) % 7

    def first_labels():
        ds = make_dataset(frame, TINY.columns, labels, batch_size=50, shuffle=True, seed=3,
                          categorical=TINY.categorical)
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


def _head(cls, rows_per_batch=None):
    keras.utils.set_random_seed(7)
    features = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", kernel_constraint=keras.constraints.MaxNorm(3))(features)
    hidden = keras.layers.Dropout(0.2)(hidden)
    head = cls(inputs=features, outputs=keras.layers.Dense(7, activation="softmax")(hidden))
    if rows_per_batch:
        head.batch_rows = rows_per_batch
    head.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    return head


def test_chunked_head_takes_the_same_steps_as_one_batch_per_element():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(230, 6)).astype("float32"), rng.integers(0, 7, 230)
    weights = {grade: 1.0 + grade / 7 for grade in range(7)}   # class weights become per-row weights
    plain = _head(keras.Model)
    plain_history = plain.fit(gathered_dataset(x, y, 230, batch_size=20), epochs=3, verbose=0,
                              class_weight=weights).history
    chunked = _head(ChunkedHead, rows_per_batch=20)       # 3 elements of 80, 80 and 70 rows: 12 steps
    chunked_history = chunked.fit(gathered_dataset(x, y, 230, batch_size=80), epochs=3, verbose=0,
                                  class_weight=weights).history
    assert int(chunked.optimizer.iterations.numpy()) == int(plain.optimizer.iterations.numpy()) == 36
    for a, b in zip(plain.get_weights(), chunked.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(chunked_history["loss"], plain_history["loss"], rtol=1e-4)
    np.testing.assert_allclose(chunked_history["accuracy"], plain_history["accuracy"], rtol=1e-4)


def test_a_model_learns_a_signal(frame):
    keras.utils.set_random_seed(0)
    labels = np.where(frame["dti"] > 20, 1, 0) + np.where(frame["home"] == "OWN", 2, 0)
    model = build_model(TINY, frame, FILL, ModelConfig(learning_rate=0.01))
    model.fit(make_dataset(frame, TINY.columns, labels, batch_size=32, shuffle=True, categorical=TINY.categorical),
              epochs=15, verbose=0, shuffle=False)
    accuracy = (_predict(model, frame).argmax(axis=1) == labels).mean()
    assert accuracy > 0.9


def test_a_column_constant_in_training_cannot_swing_predictions(frame):
    """Bureau fields empty before 2012 are filled with one value; real values later must not explode."""
    train = frame.assign(dti=np.nan)  # entirely empty in training -> the fill value everywhere
    keras.utils.set_random_seed(0)
    model = build_model(TINY, train, FILL, ModelConfig())
    rows = frame.iloc[:2].copy()
    rows["fico"], rows["home"], rows["term"] = 700.0, "RENT", 36.0
    rows["dti"] = [-5.0, 1e6]  # the training constant, then a value never seen in training
    probabilities = _predict(model, rows)
    np.testing.assert_allclose(probabilities[1], probabilities[0], atol=1e-5)
