"""Permutation importance: the column a model reads matters, the others do not."""
import numpy as np
import pandas as pd

from training.importance import permutation_importance


def test_permutation_importance_finds_the_informative_column():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"signal": rng.integers(0, 7, 3000), "noise": rng.normal(size=3000),
                          "state": rng.choice(["CA", "NY"], 3000)})
    y = frame["signal"].to_numpy()

    def predict_proba(f: pd.DataFrame) -> np.ndarray:  # a "model" that reads only `signal`
        return np.eye(7)[f["signal"].to_numpy()]

    ranked = permutation_importance(predict_proba, frame, y, ["noise", "signal", "state"], max_rows=1000)
    assert ranked[0]["feature"] == "signal"
    assert ranked[0]["importance"] > 0.7  # shuffling it leaves ~1/7 right
    assert {r["feature"]: r["importance"] for r in ranked[1:]} == {"noise": 0.0, "state": 0.0}


def test_columns_empty_in_the_rows_measured_are_listed_last_not_shuffled():
    frame = pd.DataFrame({"signal": np.arange(70) % 7, "blank": np.nan, "none": None})
    calls = []

    def predict_proba(f: pd.DataFrame) -> np.ndarray:
        calls.append(1)
        return np.eye(7)[f["signal"].to_numpy()]

    ranked = permutation_importance(predict_proba, frame, frame["signal"], ["blank", "signal", "none"])
    assert [(r["feature"], r.get("empty", False)) for r in ranked] == [
        ("signal", False), ("blank", True), ("none", True)]
    assert len(calls) == 1 + 2   # the base accuracy, then two repeats of `signal` only
