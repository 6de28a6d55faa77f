"""Model-quality levers: log of money columns, quantile bins (one-hot and piecewise-linear), embeddings, batch
norm; tuned preset round trip."""
from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pytest

from training.features import FeatureSet, FillValues
from training.levers import log_mask, quantile_boundaries, signed_log1p
from training.model import MODEL_PRESETS, ModelConfig, build_model, make_dataset

FS = FeatureSet("tiny", ("annual_inc", "fico"), ("addr_state", "term"), "test set")
FILL = FillValues(values={"annual_inc": 50000.0, "fico": 700.0}, rules={})
STATES = [f"S{i:02d}" for i in range(30)]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"annual_inc": rng.lognormal(11, 0.7, n), "fico": rng.choice(np.arange(660, 850, 5), n),
                       "addr_state": rng.choice(STATES, n).astype(object), "term": rng.choice([36.0, 60.0], n)})
    df.loc[::7, "annual_inc"] = np.nan
    return df


def test_signed_log_and_mask():
    assert log_mask(["annual_inc", "fico", "x"], "money") == [True, False, False]
    assert log_mask(["fico", "x"], ("x",)) == [False, True]
    got = signed_log1p(np.array([[np.e - 1, 5.0], [-(np.e - 1), 5.0]]), [True, False])
    assert got == pytest.approx(np.array([[1.0, 5.0], [-1.0, 5.0]]))


def test_quantile_boundaries_collapse_on_repeated_values():
    assert len(quantile_boundaries(np.arange(1000.0), 10)) == 9
    assert len(quantile_boundaries(np.array([1.0] * 50 + [2.0] * 50), 64)) <= 3  # not 63
    assert quantile_boundaries(np.zeros(100), 16) == [0.0]


def test_tuned_model_has_the_levers_and_round_trips(frame, tmp_path):
    keras.utils.set_random_seed(0)
    config = replace(MODEL_PRESETS["tuned"], bin_encoding="one_hot")
    model = build_model(FS, frame, FILL, config)
    names = {layer.name for layer in model.layers}
    assert {"log_money", "bins_fico", "bins_annual_inc", "embed_addr_state", "lookup_term"} <= names
    assert "embed_term" not in names  # two values: one-hot
    data = make_dataset(frame, FS.columns, batch_size=128, categorical=FS.categorical)
    before = model.predict(data, verbose=0)
    model.save(tmp_path / "m.keras")
    after = keras.models.load_model(tmp_path / "m.keras").predict(data, verbose=0)
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
    assert before.shape == (len(frame), 7) and np.allclose(before.sum(axis=1), 1, atol=1e-5)


def test_log_column_is_normalised_on_the_log_scale(frame):
    model = build_model(FS, frame, FILL, ModelConfig(log_columns="money"))
    norm = model.get_layer("normalize")
    filled = frame["annual_inc"].fillna(FILL.values["annual_inc"]).to_numpy()
    assert float(np.ravel(norm.mean)[0]) == pytest.approx(np.log1p(filled).mean(), rel=1e-4)


def test_batch_norm_and_unseen_category(frame):
    model = build_model(FS, frame, FILL, ModelConfig(batch_norm=True, embedding_min_vocab=10))
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    odd = frame.head(5).assign(addr_state="ZZ")
    probs = model.predict(make_dataset(odd, FS.columns, batch_size=8, categorical=FS.categorical), verbose=0)
    assert np.isfinite(probs).all()


def test_piecewise_linear_encoding_matches_its_definition():
    from training.levers import PiecewiseLinear, piecewise_linear_edges

    train = np.column_stack([np.arange(100.0), np.zeros(100)])  # second column constant: skipped
    columns, lower, width = piecewise_linear_edges(train, 4)
    assert columns == [0, 0, 0, 0] and lower == pytest.approx([0, 24.75, 49.5, 74.25])
    layer = PiecewiseLinear(columns, lower, width)
    got = np.asarray(layer(np.array([[-5.0, 0.0], [37.125, 0.0], [200.0, 0.0]], dtype="float32")))
    assert got == pytest.approx(np.array([[0, 0, 0, 0], [1, 0.5, 0, 0], [1, 1, 1, 1]]), abs=1e-6)


def test_piecewise_linear_preset_round_trips(frame, tmp_path):
    keras.utils.set_random_seed(0)
    config = MODEL_PRESETS["tuned"]
    assert config.bin_encoding == "piecewise_linear"
    model = build_model(FS, frame, FILL, config)
    ple = model.get_layer("piecewise_linear")
    assert set(ple.columns) == {0, 1} and len(ple.columns) > 10  # both numeric columns, many bins
    data = make_dataset(frame, FS.columns, batch_size=128, categorical=FS.categorical)
    before = model.predict(data, verbose=0)
    model.save(tmp_path / "m.keras")
    after = keras.models.load_model(tmp_path / "m.keras").predict(data, verbose=0)
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)


def test_ensemble_members_learn_on_their_own_and_the_saved_model_averages_them(frame, tmp_path):
    from training.model import ensemble_training_view

    keras.utils.set_random_seed(0)
    config = ModelConfig(hidden_units=(8,), ensemble=3, weight_decay=1e-4)
    model = build_model(FS, frame, FILL, config)
    view = ensemble_training_view(model, config)
    assert len(view.outputs) == 3 and isinstance(model.optimizer, keras.optimizers.AdamW)
    labels = (frame["fico"].to_numpy() > 750).astype(int)
    data = make_dataset(frame, FS.columns, labels, batch_size=128, categorical=FS.categorical)
    before = [w.copy() for w in model.get_layer("m1_dense_0").get_weights()]
    view.fit(data.map(lambda x, y: (x, (y,) * 3)), epochs=1, verbose=0)
    assert not np.allclose(before[0], model.get_layer("m1_dense_0").get_weights()[0])  # shared layers trained
    inputs = make_dataset(frame, FS.columns, batch_size=128, categorical=FS.categorical)
    members = np.mean(view.predict(inputs, verbose=0), axis=0)
    probs = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(probs, members, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras").predict(inputs, verbose=0), probs,
                               rtol=1e-5, atol=1e-6)
