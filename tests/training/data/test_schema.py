"""training.data.schema: the raw header and the kind of every column."""
from __future__ import annotations

import gzip

import pytest

from tests.training.data.samples import REAL, REAL_FILES
from training.data import DATE_COLUMNS, FRACTION_PERCENT_COLUMNS, RAW_COLUMNS, TEXT_COLUMNS
from training.data.schema import column_kind


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_FILES, reason=f"real LendingClub files not found at {REAL}")
def test_real_raw_header_matches_raw_columns() -> None:
    raw = REAL / "raw" / "nissan18_sample.csv.gz"
    if not raw.exists():
        pytest.skip(f"{raw} absent")
    with gzip.open(raw, "rt") as f:
        assert tuple(f.readline().strip().split(",")) == RAW_COLUMNS


def test_every_raw_column_has_a_kind() -> None:
    kinds = {c: column_kind(c) for c in RAW_COLUMNS}
    assert "other" not in kinds.values()
    assert kinds["grade"] == "grade" and kinds["term"] == "term" and kinds["emp_length"] == "emp_length"
    assert kinds["int_rate"] == kinds["revol_util"] == "percent" and kinds["loan_amnt"] == "number"
    assert kinds["issue_d"] == "date" and kinds["home_ownership"] == "text"
    assert column_kind("issue_year") == "number" and column_kind("not_a_column") == "other"
    assert {c for c, k in kinds.items() if k == "percent"} == FRACTION_PERCENT_COLUMNS
    assert {c for c, k in kinds.items() if k == "text"} == TEXT_COLUMNS
    assert {c for c, k in kinds.items() if k == "date"} == DATE_COLUMNS
