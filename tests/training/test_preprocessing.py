"""Preprocessing inside the model: fill, normalisation from the training split, category text and one-hot
with an OOV bucket."""
import keras
import numpy as np
import pytest

from tests.training.model_inputs import TINY, TINY_FILL, build_tiny, tiny_frame
from training.fitting import predict_proba
from training.model import ModelConfig, build_model

tiny = pytest.fixture(tiny_frame, scope="module", name="tiny")
tiny_built = pytest.fixture(build_tiny, scope="module", name="tiny_built")


@pytest.fixture(scope="module")
def model(tiny_built):
    return tiny_built.inference


def _predict(model, tiny):
    return predict_proba(model, tiny, batch_size=64)


def test_normalisation_statistics_come_from_the_filled_training_frame(model, tiny):
    norm = model.get_layer("normalize")
    filled = tiny["fico"].fillna(700.0)
    assert np.asarray(norm.mean).ravel()[0] == pytest.approx(filled.mean(), rel=1e-5)
    assert np.asarray(norm.variance).ravel()[0] == pytest.approx(filled.var(ddof=0), rel=1e-4)


def test_missing_numeric_values_are_filled_inside_the_model(model, tiny):
    rows = tiny.iloc[:3].copy()
    rows["fico"] = [np.nan, 700.0, np.inf]
    rows["dti"] = [np.nan, -5.0, -5.0]
    rows["home"], rows["term"] = "RENT", 36.0
    probabilities = _predict(model, rows)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probabilities[0], probabilities[1])  # NaN == the fill value
    np.testing.assert_array_equal(probabilities[2], probabilities[1])  # inf too


def test_unseen_categories_fall_in_the_oov_bucket(model, tiny):
    rows = tiny.iloc[:3].copy()
    rows["fico"], rows["dti"], rows["term"] = 690.0, 20.0, 36.0
    rows["home"] = ["NEVER-SEEN", "ALSO-NEW", "RENT"]
    probabilities = _predict(model, rows)
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
    vocabulary = model.get_layer("lookup_home").get_vocabulary()
    assert vocabulary[0] == "[UNK]" and {"RENT", "OWN", "MORTGAGE", "missing"} <= set(vocabulary)
    assert set(model.get_layer("lookup_term").get_vocabulary()) == {"[UNK]", "36", "60"}


def test_missing_categories_are_the_missing_category(model, tiny):
    rows = tiny.iloc[:2].copy()
    rows["fico"], rows["dti"], rows["term"] = 690.0, 20.0, 36.0
    rows["home"] = [np.nan, "missing"]
    probabilities = _predict(model, rows)
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
    rows["term"] = [np.nan, 36.0]
    assert not np.array_equal(*_predict(model, rows))   # a missing term is not a 36-month one


def test_a_column_constant_in_training_cannot_swing_predictions(tiny):
    """Bureau fields empty before 2012 are filled with one value; real values later must not explode."""
    train = tiny.assign(dti=np.nan)  # entirely empty in training -> the fill value everywhere
    keras.utils.set_random_seed(0)
    model = build_model(TINY, train, TINY_FILL, ModelConfig()).inference
    rows = tiny.iloc[:2].copy()
    rows["fico"], rows["home"], rows["term"] = 700.0, "RENT", 36.0
    rows["dti"] = [-5.0, 1e6]  # the training constant, then a value never seen in training
    probabilities = _predict(model, rows)
    np.testing.assert_allclose(probabilities[1], probabilities[0], atol=1e-5)


def test_a_feature_set_without_fill_values_or_columns_is_refused(tiny):
    from training.features import FeatureSet, FillValues

    with pytest.raises(ValueError, match="no fill value for numeric columns"):
        build_model(TINY, tiny, FillValues(values={"fico": 1.0}, rules={}))
    with pytest.raises(ValueError, match="has no columns"):
        build_model(FeatureSet("empty", (), (), "none"), tiny, TINY_FILL)
