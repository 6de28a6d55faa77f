"""The model cut after its lookups: the same probabilities as the whole model, for every shape of model it takes."""
import keras
import numpy as np
import pandas as pd
import pytest

import training.fitting as fitting
import training.lookup_cut as lookup_cut_module
from tests.training.model_inputs import MONEY, MONEY_FILL, TINY, TINY_FILL, money_frame, tiny_frame
from training.layers import NumberCategory, TextCategory
from training.lookup_cut import CutColumn, lookup_cut
from training.model import ModelConfig, build_model


def odd_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with values training never saw: a new text, blanks, a fractional, an infinite and a missing term,
    and a text column given as numbers in some rows."""
    odd = frame.copy()
    text = "home" if "home" in odd else "addr_state"
    odd[text] = odd[text].astype(object)
    odd.loc[0, text], odd.loc[1, text], odd.loc[2, text], odd.loc[3, text] = "CASTLE", "", np.nan, 36
    odd.loc[4, "term"], odd.loc[5, "term"], odd.loc[6, "term"], odd.loc[7, "term"] = 36.5, np.inf, np.nan, 1e20
    return odd


def whole_model_proba(model, frame, *, traced: bool, monkeypatch) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(fitting, "lookup_cut", lambda model: None)
        return fitting.predict_proba(model, frame, batch_size=97, traced=traced)


CONFIGS = {"one-hot": ModelConfig(hidden_units=(16, 8)),
           "embeddings and an ensemble": ModelConfig(hidden_units=(8,), embedding_min_vocab=5, ensemble=3)}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("traced", [True, False])
def test_the_cut_gives_the_whole_model_s_probabilities(name: str, traced: bool, monkeypatch) -> None:
    keras.utils.set_random_seed(5)
    frame = money_frame()
    built = build_model(MONEY, frame, MONEY_FILL, CONFIGS[name])
    odd = odd_rows(frame)
    cut = lookup_cut(built.inference)
    assert cut is not None and sorted(c.name for c in cut.columns) == ["addr_state", "term"]
    assert cut.numeric == ["annual_inc", "fico"]
    assert not any(isinstance(layer, (TextCategory, NumberCategory, keras.layers.StringLookup))
                   for layer in cut.model.operations)
    probabilities = fitting.predict_proba(built.inference, odd, batch_size=97, traced=traced)
    np.testing.assert_array_equal(probabilities, whole_model_proba(built.inference, odd, traced=traced,
                                                                   monkeypatch=monkeypatch))
    assert probabilities.shape == (len(odd), 7) and not np.isnan(probabilities).any()


def test_a_model_once_cut_still_saves_and_its_loaded_copy_is_cut_alike(tmp_path, monkeypatch) -> None:
    """Training scores the model (cut) before saving it: the cut must leave the model's graph as it was."""
    keras.utils.set_random_seed(6)
    frame = tiny_frame()
    built = build_model(TINY, frame, TINY_FILL)
    odd = odd_rows(frame)
    before = fitting.predict_proba(built.inference, odd, batch_size=64)
    assert lookup_cut(built.inference) is not None
    built.inference.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    assert lookup_cut(loaded) is not None
    np.testing.assert_array_equal(fitting.predict_proba(loaded, odd, batch_size=64, traced=False), before)
    np.testing.assert_array_equal(whole_model_proba(loaded, odd, traced=False, monkeypatch=monkeypatch), before)


def test_a_category_input_that_feeds_another_layer_is_not_cut() -> None:
    """A graph of another shape (here the term also feeds the network as a number): no cut, the whole model."""
    term = keras.Input(shape=(1,), name="term", dtype="float64")
    lookup = keras.layers.StringLookup(vocabulary=["36", "60"], output_mode="one_hot", num_oov_indices=1)
    block = lookup(NumberCategory()(term))
    both = keras.layers.Concatenate(dtype="float32")([block, keras.ops.cast(term, "float32")])
    model = keras.Model(term, keras.layers.Dense(7, activation="softmax")(both))
    assert lookup_cut(model) is None
    frame = pd.DataFrame({"term": [36.0, 60.0, np.nan]})
    expected = keras.ops.convert_to_numpy(model(frame[["term"]].to_numpy()))
    np.testing.assert_allclose(fitting.predict_proba(model, frame, batch_size=2), expected, rtol=1e-6)


def test_the_cut_is_built_once_per_model(monkeypatch) -> None:
    keras.utils.set_random_seed(7)
    built = build_model(TINY, tiny_frame(), TINY_FILL)
    builds = []
    build = lookup_cut_module._build
    monkeypatch.setattr(lookup_cut_module, "_build", lambda model: builds.append(model) or build(model))
    first = lookup_cut(built.inference)
    assert lookup_cut(built.inference) is first and builds == [built.inference]


def test_distinct_values_are_looked_up_once_and_kept_up_to_a_bound(monkeypatch) -> None:
    keras.utils.set_random_seed(8)
    frame = odd_rows(money_frame())
    built = build_model(MONEY, frame, MONEY_FILL, ModelConfig(hidden_units=(8,)))
    looked_up: list[list] = []
    look_up = CutColumn._look_up
    monkeypatch.setattr(CutColumn, "_look_up",
                        lambda column, values: looked_up.append(values) or look_up(column, values))
    first = fitting.predict_proba(built.inference, frame, batch_size=256)
    states = frame["addr_state"].dropna().astype(str).nunique()
    terms = frame["term"][np.isfinite(frame["term"])].nunique()          # inf is missing, as NaN
    assert sorted(len(v) for v in looked_up) == sorted([states + 1, terms + 1])   # + the missing value
    looked_up.clear()
    np.testing.assert_array_equal(fitting.predict_proba(built.inference, frame, batch_size=256), first)
    assert looked_up == []                                      # every value kept from the first call
    new = frame.head(3).assign(addr_state=["ZZ", "S01", "ZZ"])
    fitting.predict_proba(built.inference, new, batch_size=256)
    assert looked_up == [["ZZ"]]                                # only the value never seen

    monkeypatch.setattr(lookup_cut_module, "KEPT_VALUES", 3)     # past the bound: looked up every call, not kept
    bounded = build_model(MONEY, frame, MONEY_FILL, ModelConfig(hidden_units=(8,)))
    bounded.inference.set_weights(built.inference.get_weights())
    np.testing.assert_array_equal(fitting.predict_proba(bounded.inference, frame, batch_size=256), first)
    assert all(len(c.outputs) <= 3 for c in lookup_cut(bounded.inference).columns)
