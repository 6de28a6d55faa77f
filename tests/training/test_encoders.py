"""Optional encoders: log of money columns, quantile bins (one-hot and piecewise-linear), embeddings, batch
norm; tuned preset round trip."""
from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest

from tests.training.model_inputs import MONEY, MONEY_FILL, money_frame
from training.encoders import log_mask, quantile_boundaries, signed_log1p
from training.fitting import predict_proba
from training.model import MODEL_PRESETS, ModelConfig, build_model


@pytest.fixture(scope="module")
def frame():
    return money_frame()


def _round_trip(model, frame, path):
    before = predict_proba(model, frame, batch_size=128)
    model.save(path)
    after = predict_proba(keras.models.load_model(path), frame, batch_size=128)
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
    return before


def test_signed_log_and_mask():
    assert log_mask(["annual_inc", "fico", "x"], "money") == [True, False, False]
    assert log_mask(["fico", "x"], ("x",)) == [False, True]
    got = signed_log1p(np.array([[np.e - 1, 5.0], [-(np.e - 1), 5.0]]), [True, False])
    assert got == pytest.approx(np.array([[1.0, 5.0], [-1.0, 5.0]]))


def test_quantile_boundaries_collapse_on_repeated_values():
    assert len(quantile_boundaries(np.arange(1000.0), 10)) == 9
    assert len(quantile_boundaries(np.array([1.0] * 50 + [2.0] * 50), 64)) <= 3  # not 63
    assert quantile_boundaries(np.zeros(100), 16) == [0.0]


def test_tuned_model_has_the_encoders_and_round_trips(frame, tmp_path):
    keras.utils.set_random_seed(0)
    config = replace(MODEL_PRESETS["tuned"], bin_encoding="one_hot")
    model = build_model(MONEY, frame, MONEY_FILL, config).inference
    names = {layer.name for layer in model.layers}
    assert {"log_money", "bins_fico", "bins_annual_inc", "embed_addr_state", "lookup_term"} <= names
    assert "embed_term" not in names  # two values: one-hot
    before = _round_trip(model, frame, tmp_path / "m.keras")
    assert before.shape == (len(frame), 7) and np.allclose(before.sum(axis=1), 1, atol=1e-5)


def test_log_column_is_normalised_on_the_log_scale(frame):
    model = build_model(MONEY, frame, MONEY_FILL, ModelConfig(log_columns="money")).inference
    norm = model.get_layer("normalize")
    filled = frame["annual_inc"].fillna(MONEY_FILL.values["annual_inc"]).to_numpy()
    assert float(np.ravel(norm.mean)[0]) == pytest.approx(np.log1p(filled).mean(), rel=1e-4)


def test_batch_norm_and_unseen_category(frame):
    model = build_model(MONEY, frame, MONEY_FILL, ModelConfig(batch_norm=True, embedding_min_vocab=10)).inference
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    odd = frame.head(5).assign(addr_state="ZZ")
    probs = predict_proba(model, odd, batch_size=8)
    assert np.isfinite(probs).all()


def test_piecewise_linear_preset_round_trips(frame, tmp_path):
    keras.utils.set_random_seed(0)
    config = MODEL_PRESETS["tuned"]
    assert config.bin_encoding == "piecewise_linear"
    model = build_model(MONEY, frame, MONEY_FILL, config).inference
    ple = model.get_layer("piecewise_linear")
    assert set(ple.columns) == {0, 1} and len(ple.columns) > 10  # both numeric columns, many bins
    _round_trip(model, frame, tmp_path / "m.keras")
