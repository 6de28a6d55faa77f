"""The registered layers: fill, derived columns (the same values as add_derived_features), category text,
signed log, piecewise-linear encoding; each rebuilt from its config."""
import numpy as np
import pandas as pd
import pytest

from tests.training.model_inputs import record_frame
from training.datasets import numeric_matrix
from training.encoders import piecewise_linear_edges, signed_log1p
from training.features import DERIVATIONS, MISSING_CATEGORY, add_derived_features, category_strings
from training.layers import DerivedColumn, FillMissing, NumberCategory, PiecewiseLinear, SignedLog1p, TextCategory


def _texts(tensor) -> list[str]:
    return [v.decode() for v in np.ravel(tensor.numpy())]


def test_fill_missing_replaces_nan_and_inf_per_column():
    layer = FillMissing([1.0, -2.0])
    got = np.asarray(layer(np.array([[np.nan, 3.0], [np.inf, np.nan], [4.0, -np.inf]], dtype="float32")))
    np.testing.assert_array_equal(got, [[1.0, 3.0], [1.0, -2.0], [4.0, -2.0]])


@pytest.mark.parametrize("column", sorted(DERIVATIONS))
def test_derived_column_gives_the_values_of_add_derived_features(column):
    frame = record_frame().assign(installment=lambda f: f["loan_amnt"] / 36, dti=15.0, dti_joint=np.nan,
                                  annual_inc_joint=lambda f: f["annual_inc"].where(f.index % 3 == 0) * 1.5)
    expected = add_derived_features(frame)[column].to_numpy()
    inputs = numeric_matrix(frame, DERIVATIONS[column].inputs)   # dates as days since 1970-01-01
    got = np.ravel(DerivedColumn(column)([inputs[:, i:i + 1] for i in range(inputs.shape[1])]).numpy())
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)          # bit for bit, NaN where NaN
    assert not np.isinf(got).any()


def test_derived_column_rejects_an_unknown_column():
    with pytest.raises(ValueError, match="no derived column 'nope'"):
        DerivedColumn("nope")


def test_number_category_writes_numbers_like_category_strings():
    values = np.array([[36.0], [60.0], [np.nan], [2.5], [np.inf], [-3.0]])
    got = _texts(NumberCategory()(values))
    assert got == ["36", "60", MISSING_CATEGORY, "2.5", "inf", "-3"]
    assert got == category_strings(pd.Series(values.ravel())).tolist()


def test_text_category_marks_the_empty_string_missing():
    got = _texts(TextCategory()(np.array([["RENT"], [""], ["missing"]])))
    assert got == ["RENT", MISSING_CATEGORY, MISSING_CATEGORY]


def test_signed_log1p_is_its_numpy_twin_on_the_masked_columns():
    x = np.array([[np.e - 1, 5.0], [-(np.e - 1), -5.0]], dtype="float32")
    got = np.asarray(SignedLog1p([True, False])(x))
    np.testing.assert_allclose(got, signed_log1p(x, [True, False]), rtol=1e-6)
    np.testing.assert_allclose(got, [[1.0, 5.0], [-1.0, -5.0]], rtol=1e-6)


def test_piecewise_linear_encoding_matches_its_definition():
    train = np.column_stack([np.arange(100.0), np.zeros(100)])  # second column constant: skipped
    columns, lower, width = piecewise_linear_edges(train, 4)
    assert columns == [0, 0, 0, 0] and lower == pytest.approx([0, 24.75, 49.5, 74.25])
    layer = PiecewiseLinear(columns, lower, width)
    got = np.asarray(layer(np.array([[-5.0, 0.0], [37.125, 0.0], [200.0, 0.0]], dtype="float32")))
    assert got == pytest.approx(np.array([[0, 0, 0, 0], [1, 0.5, 0, 0], [1, 1, 1, 1]]), abs=1e-6)


@pytest.mark.parametrize("layer", [FillMissing([1.5]), DerivedColumn("loan_to_income"), NumberCategory(),
                                   TextCategory(), SignedLog1p([True]), PiecewiseLinear([0], [1.0], [2.0])])
def test_each_layer_is_rebuilt_from_its_config(layer):
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
