"""training.synthetic: deterministic, LendingClub-shaped raw rows that round-trip through load_loans."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import GRADES, RAW_COLUMNS, load_loans
from training.errors import ConfigError
from training.features import APPLICATION, REFERENCE, add_derived_features, apply_fill, fit_fill_values, raw_columns_for
from training.synthetic import GRADE_SHARES, NOTICE, RATE_MEDIANS, generate_raw, write_raw, write_raw_csv

NEEDED = sorted(set(raw_columns_for(REFERENCE.columns)) | set(raw_columns_for(APPLICATION.columns)))
EXTRA = ["purpose", "verification_status", "sub_grade", "issue_d", "loan_status", "last_pymnt_d", "total_pymnt",
         "int_rate", "grade"]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate_raw(20_000, seed=3)


def test_deterministic_and_seed_dependent() -> None:
    a, b = generate_raw(500, seed=7), generate_raw(500, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not generate_raw(500, seed=8)["annual_inc"].equals(a["annual_inc"])


def test_shape_columns_and_spellings(sample: pd.DataFrame) -> None:
    assert len(sample) == 20_000
    assert set(NEEDED + EXTRA) <= set(sample.columns)
    assert list(sample.columns) == [c for c in RAW_COLUMNS if c in sample.columns]     # file order
    assert sample["id"].str.startswith("synthetic-").all()
    assert sample["int_rate"].str.fullmatch(r" {1,2}\d{1,2}\.\d\d%").all()         # " 11.55%", "  7.49%"
    assert set(sample["term"]) == {" 36 months", " 60 months"}
    assert sample["issue_d"].str.fullmatch(r"[A-Z][a-z]{2}-201[2-8]").all()
    assert sample["revol_util"].dropna().str.fullmatch(r"\d+(\.\d)?%").all()
    emp = set(sample["emp_length"].dropna())
    assert {"10+ years", "< 1 year", "1 year", "n/a"} <= emp and sample["emp_length"].isna().any()
    assert set(sample["grade"]) == set(GRADES)
    assert (sample["sub_grade"].str[0] == sample["grade"]).all()


def test_all_columns_header_is_the_raw_one() -> None:
    wide = generate_raw(50, seed=1, all_columns=True)
    assert tuple(wide.columns) == RAW_COLUMNS and len(RAW_COLUMNS) == 151


def test_marginals(sample: pd.DataFrame) -> None:
    shares = sample["grade"].value_counts(normalize=True)
    for grade, share in zip(GRADES, GRADE_SHARES):
        assert shares[grade] == pytest.approx(share, abs=0.01)
    rate = sample["int_rate"].str.strip().str.rstrip("%").astype(float)
    medians = rate.groupby(sample["grade"]).median()
    for grade, median in zip(GRADES, RATE_MEDIANS):
        assert medians[grade] == pytest.approx(median, abs=0.5)
    assert 680 < sample["fico_range_low"].median() < 720 and sample["fico_range_low"].between(660, 845).all()
    assert 50_000 < sample["annual_inc"].median() < 85_000 and 10 < sample["dti"].median() < 25
    for column in ("emp_length", "revol_util", "bc_util", "mths_since_last_delinq", "il_util"):
        assert 0 < sample[column].isna().mean() < 0.8, column


def test_installment_follows_the_amortisation_formula(sample: pd.DataFrame) -> None:
    rate = sample["int_rate"].str.strip().str.rstrip("%").astype(float) / 1200
    months = sample["term"].str.extract(r"(\d+)", expand=False).astype(float)
    expected = sample["loan_amnt"] * rate / (1 - (1 + rate) ** -months)
    np.testing.assert_allclose(sample["installment"], expected, atol=0.006)


def test_grade_depends_on_the_credit_profile(sample: pd.DataFrame) -> None:
    rank = sample["grade"].map({g: i for i, g in enumerate(GRADES)})
    assert sample["fico_range_low"].corr(rank, method="spearman") < -0.3      # better FICO, better grade
    assert sample["inq_last_6mths"].corr(rank, method="spearman") > 0.05
    by_grade = sample.groupby("grade")["fico_range_low"].mean()
    assert by_grade["A"] > by_grade["D"] > by_grade["G"]
    assert sample.groupby("fico_range_low")["grade"].nunique().max() > 3      # noisy, not a lookup


def test_round_trip_through_load_loans_with_envelope(tmp_path: Path) -> None:
    path = write_raw_csv(tmp_path / "syn.csv.gz", 3000, seed=5)
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    assert lines[0] == NOTICE and "SYNTHETIC" in lines[0]
    assert lines[-1].startswith("Total amount funded in policy code 2")
    d = load_loans(path, NEEDED + EXTRA)
    assert d.rows_read == 3000 and d.dropped == {} and len(d.frame) == 3000
    raw = generate_raw(3000, seed=5)
    f = d.frame
    np.testing.assert_allclose(f["int_rate"], raw["int_rate"].str.strip().str.rstrip("%").astype(float))
    assert f["term"].isin([36.0, 60.0]).all() and f["issue_d"].dtype == "datetime64[ns]"
    assert f["grade"].tolist() == raw["grade"].tolist()
    assert f["emp_length"].isna().sum() == raw["emp_length"].isin(["n/a"]).sum() + raw["emp_length"].isna().sum()


def test_plain_csv_without_envelope_and_all_columns(tmp_path: Path) -> None:
    path = write_raw_csv(tmp_path / "syn.csv", 200, seed=2, all_columns=True, raw_envelope=False)
    header = path.read_text().splitlines()[0]
    assert tuple(header.split(",")) == RAW_COLUMNS
    d = load_loans(path, NEEDED)
    assert d.rows_read == 200 and d.files[0].rows == 200


def test_write_raw_picks_csv_gzip_or_parquet_by_the_suffix(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    assert write_raw(tmp_path / "a.csv", 50, 1).read_text().startswith(NOTICE)
    with gzip.open(write_raw(tmp_path / "a.CSV.GZ", 50, 1), "rt") as f:
        assert f.readline().strip() == NOTICE
    table = pq.read_table(write_raw(tmp_path / "sub" / "a.parquet", 50, 1))
    assert table.num_rows == 50 and table.schema.metadata[b"spotgrade"].decode() == NOTICE
    assert table.column_names == list(generate_raw(50, seed=1).columns)
    for name in ("a.txt", "a.gz", "a.json", "a"):
        with pytest.raises(ConfigError, match=r"end it with one of \.csv, \.csv\.gz, \.parquet"):
            write_raw(tmp_path / name, 50, 1)
    assert not (tmp_path / "a.txt").exists()


# A pin on the cleaned output of a seeded synthetic sample: speed work must not change results.
# If a deliberate change to the generator or the cleaning rules moves it, update the hash in the same commit.
PINNED_SHA256 = "53a8f3bd1b2a81e0f3e6d7ed86e064bc3f3239320b2c39d8cef23d9825649958"


def cleaned_digest(tmp_path: Path) -> str:
    path = write_raw_csv(tmp_path / "pin.csv.gz", 2000, seed=11)
    d = load_loans(path, raw_columns_for(REFERENCE.columns) + ["purpose", "verification_status"])
    frame = add_derived_features(d.frame)
    fill = fit_fill_values(frame, REFERENCE)
    out, _ = apply_fill(frame, fill, REFERENCE)
    out = out[list(REFERENCE.columns) + ["grade"]]
    text = out.to_csv(index=False, float_format="%.6f")
    return hashlib.sha256(text.encode()).hexdigest()


def test_cleaned_output_is_pinned(tmp_path: Path) -> None:
    assert cleaned_digest(tmp_path) == PINNED_SHA256
