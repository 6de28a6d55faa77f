"""The tuned gradient-boosting peer: a seeded, reproducible search chosen on the validation rows only."""
from __future__ import annotations

import numpy as np
import pytest

from tests.training.test_baselines import FEATURES, loans
from training.baselines import SEARCH_KEY, TUNED, fit_baselines, pop_search_records, prepare
from training.features import FillValues
from training.metrics import compute_metrics
from training.peer_search import (
    CONFIGURATIONS,
    LONGER_FITS,
    SEARCH_SPACE,
    SKLEARN_DEFAULTS,
    configurations,
    search_hist_gradient_boosting,
)

FILL = FillValues(values={"fico": 700.0, "dti": 15.0, "income": 50000.0}, rules={}, warnings=[])


@pytest.fixture(scope="module")
def rows():
    """Prepared (x, grades) of small train, validation and test splits."""
    return [(prepare(frame, FEATURES, FILL), y) for frame, y in (loans(500, 11), loans(250, 12), loans(250, 13))]


@pytest.fixture(scope="module")
def search(rows):
    (x_train, y_train), (x_val, y_val), _ = rows
    return search_hist_gradient_boosting(x_train, y_train, x_val, y_val, FEATURES, seed=7)


def _choice(record: dict) -> tuple:
    """What a search decided, without its timings."""
    return (record["chosen"]["configuration"], record["chosen"]["params"],
            [(t["params"], t["iterations"], t["validation_weighted_f1"]) for t in record["configurations"]])


def test_configurations_are_distinct_seeded_and_start_with_the_defaults():
    drawn = configurations(CONFIGURATIONS, seed=3)
    assert CONFIGURATIONS >= 20 and len(drawn) == CONFIGURATIONS
    assert drawn[0] == SKLEARN_DEFAULTS and drawn[1:3] == list(LONGER_FITS)
    assert all(p["max_iter"] > SKLEARN_DEFAULTS["max_iter"] for p in LONGER_FITS)
    assert len({tuple(sorted(p.items(), key=str)) for p in drawn}) == len(drawn)
    assert all(set(p) == set(SEARCH_SPACE) and all(p[k] in SEARCH_SPACE[k] for k in p) for p in drawn[3:])
    assert configurations(CONFIGURATIONS, seed=3) == drawn
    assert configurations(CONFIGURATIONS, seed=4) != drawn
    with pytest.raises(ValueError, match="at least 1"):
        configurations(0, seed=3)


def test_every_configuration_is_scored_on_the_validation_rows_and_the_best_kept(rows, search):
    _, (x_val, y_val), _ = rows
    record = search.record
    scores = [t["validation_weighted_f1"] for t in record["configurations"]]
    assert record["budget"]["configurations"] == len(scores) == CONFIGURATIONS
    assert record["budget"]["seed"] == 7 and record["budget"]["wall_seconds"] > 0
    assert len(set(scores)) > 1   # the configurations differ, so the choice means something
    assert record["chosen"]["validation_weighted_f1"] == max(scores)
    assert record["chosen"]["configuration"] == scores.index(max(scores))
    kept = compute_metrics(y_val, search.model.predict(x_val))["weighted_f1"]
    assert kept == pytest.approx(max(scores))
    assert search.model[-1].get_params()["learning_rate"] == record["chosen"]["params"]["learning_rate"]


def test_the_search_is_reproducible(rows, search):
    (x_train, y_train), (x_val, y_val), (x_test, _) = rows
    again = search_hist_gradient_boosting(x_train, y_train, x_val, y_val, FEATURES, seed=7)
    assert _choice(again.record) == _choice(search.record)
    np.testing.assert_array_equal(again.model.predict_proba(x_test), search.model.predict_proba(x_test))
    other = search_hist_gradient_boosting(x_train, y_train, x_val, y_val, FEATURES, seed=8, n_configurations=4)
    assert [t["params"] for t in other.record["configurations"]] == configurations(4, seed=8)


def test_the_validation_labels_decide(rows, search):
    (x_train, y_train), (x_val, y_val), _ = rows
    shuffled = np.random.default_rng(0).permutation(y_val)
    other = search_hist_gradient_boosting(x_train, y_train, x_val, shuffled, FEATURES, seed=7, n_configurations=4)
    first4 = [t["validation_weighted_f1"] for t in search.record["configurations"][:4]]
    assert [t["validation_weighted_f1"] for t in other.record["configurations"]] != first4


def test_test_rows_never_choose():
    """Garbage test rows (labels permuted, features shuffled) leave the choice and every validation score as they
    were; only the test metrics change."""
    (train, y_train), (val, y_val), (test, y_test) = loans(500, 21), loans(250, 22), loans(250, 23)
    rng = np.random.default_rng(5)
    garbage = test.apply(lambda column: column.sample(frac=1, random_state=1).to_numpy())
    kwargs = dict(include=(TUNED,), validation=(val, y_val), configurations=5)
    honest = fit_baselines(train, y_train, test, y_test, FEATURES, FILL, seed=2, **kwargs)[TUNED]
    noisy = fit_baselines(train, y_train, garbage, rng.permutation(y_test), FEATURES, FILL, seed=2, **kwargs)[TUNED]
    assert _choice(noisy[SEARCH_KEY]) == _choice(honest[SEARCH_KEY])
    assert noisy["weighted_f1"] != honest["weighted_f1"]


def test_the_tuned_baseline_needs_validation_rows_and_its_record_moves_out():
    (train, y_train), (test, y_test) = loans(300, 31), loans(100, 32)
    with pytest.raises(ValueError, match="validation rows"):
        fit_baselines(train, y_train, test, y_test, FEATURES, FILL, include=(TUNED,))
    results = fit_baselines(train, y_train, test, y_test, FEATURES, FILL, include=("majority", TUNED),
                            validation=loans(100, 33), configurations=2)
    records = pop_search_records(results)
    assert list(records) == [TUNED] and records[TUNED]["budget"]["configurations"] == 2
    assert all(SEARCH_KEY not in entry for entry in results.values())
    assert int(np.sum(results[TUNED]["confusion_matrix"])) == len(y_test)
