"""Row splits: stratified with a random fallback, train/validation/test, stratified sample, time split."""
import numpy as np
import pandas as pd
import pytest

from training.errors import ConfigError, DataError
from training.splits import TEST_FRACTION, split_rows, stratified_sample, stratified_split, time_split


def test_split_is_stratified_disjoint_and_reproducible():
    labels = np.repeat(np.arange(7), [180, 290, 280, 150, 70, 24, 6])
    train_pos, val_pos, test_pos = split_rows(labels, seed=7)
    again = split_rows(labels, seed=7)
    for a, b in zip((train_pos, val_pos, test_pos), again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(split_rows(labels, seed=8)[2], test_pos)
    everything = np.concatenate([train_pos, val_pos, test_pos])
    assert sorted(everything) == list(range(len(labels)))
    shares = np.bincount(labels) / len(labels)
    for part in (train_pos, val_pos, test_pos):
        np.testing.assert_allclose(np.bincount(labels[part], minlength=7) / len(part), shares, atol=0.02)


def test_stratified_split_falls_back_to_random_where_a_grade_has_one_row():
    labels = np.array([0] * 10 + [1] * 9 + [2])  # grade 2 cannot be on both sides
    first, second = stratified_split(np.arange(20), labels, 0, test_size=TEST_FRACTION)
    assert sorted([*first, *second]) == list(range(20)) and len(second) == 3
    too_small = np.repeat(np.arange(7), 3)  # 7 grades cannot fit into a 2-row test part
    rest, test = stratified_split(np.arange(21), too_small, 0, test_size=2)
    assert len(test) == 2 and len(rest) == 19


def test_stratified_sample_is_reproducible_and_keeps_grade_shares():
    labels = np.repeat(np.arange(7), [1800, 2900, 2800, 1500, 700, 240, 60])
    frame = pd.DataFrame({"row": np.arange(len(labels)), "label": labels})
    sample = stratified_sample(frame, labels, 1000, seed=1)
    assert len(sample) == 1000
    pd.testing.assert_frame_equal(sample, stratified_sample(frame, labels, 1000, seed=1))
    np.testing.assert_allclose(np.bincount(sample["label"], minlength=7) / 1000,
                               np.bincount(labels) / len(labels), atol=0.005)


def test_time_split_tests_on_the_newest_fifth():
    rng = np.random.default_rng(0)
    dates = pd.Series(pd.to_datetime("2010-01-01") + pd.to_timedelta(rng.integers(0, 1000, 500), unit="D"))
    labels = rng.integers(0, 7, 500)
    train, validation, test = time_split(dates, labels, seed=1)
    assert len(test) == 100
    assert sorted([*train, *validation, *test]) == list(range(500))
    assert dates.iloc[test].min() >= dates.iloc[np.concatenate([train, validation])].max()
    again = time_split(dates, labels, seed=1)
    assert all((a == b).all() for a, b in zip((train, validation, test), again))


def test_time_split_needs_dates_and_older_rows():
    with pytest.raises(DataError, match="issue_d"):
        time_split(pd.Series([None, None, None]), np.array([0, 1, 2]), seed=0)
    with pytest.raises(ConfigError, match="older"):
        time_split(pd.Series(pd.to_datetime(["2015-01-01", "2016-01-01"])), np.array([0, 1]), seed=0)
