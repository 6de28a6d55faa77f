"""training.data.loading: load_loans over files, the SourceFile record, drop counting and limits, the real files."""
from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.training.data.samples import COLS, GOOD_ROWS, HEADER, REAL, REAL_FILES, csv_text, load_error, write
from training.data import GRADES, SourceFile, load_loans


def test_gzip_zip_and_source_file(tmp_path: Path, good: Path) -> None:
    gz = tmp_path / "loans.csv.gz"
    gz.write_bytes(gzip.compress(good.read_bytes()))
    zp = tmp_path / "loans.zip"
    with zipfile.ZipFile(zp, "w") as z:
        z.write(good, "LoanStats.csv")
        z.writestr("__MACOSX/._LoanStats.csv", b"junk")
    plain = load_loans(good, COLS)
    for path in (gz, zp):
        d = load_loans(path, COLS)
        pd.testing.assert_frame_equal(d.frame, plain.frame)
        assert d.files[0].bytes == path.stat().st_size and d.files[0].rows == 3
    assert plain.files == [SourceFile(uri=str(good), sha256=hashlib.sha256(good.read_bytes()).hexdigest(),
                                      bytes=good.stat().st_size, rows=3)]


def test_reads_only_requested_columns(good: Path) -> None:
    d = load_loans(good, ["annual_inc"], require_grade=False)
    assert list(d.frame.columns) == ["annual_inc"]


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.csv", "")
    assert str(empty) in load_error(empty) and "empty" in load_error(empty)
    blank_gz = tmp_path / "blank.csv.gz"
    blank_gz.write_bytes(gzip.compress(b"\n\n"))
    assert "empty" in load_error(blank_gz)
    header_only = write(tmp_path / "h.csv", HEADER + "\n")
    assert "no data rows" in load_error(header_only)


def test_missing_grade_and_feature_columns(tmp_path: Path) -> None:
    no_grade = write(tmp_path / "ng.csv", "loan_amnt,term\n1,36\n")
    assert str(no_grade) in load_error(no_grade) and "'grade'" in load_error(no_grade)
    message = load_error(no_grade, ["loan_amnt", "dti", "fico_range_low"], require_grade=False)
    assert str(no_grade) in message and "dti, fico_range_low" in message


def test_numeric_column_full_of_text(tmp_path: Path) -> None:
    def with_income(row: str, value: str) -> str:
        fields = row.split(",")
        fields[8] = value
        return ",".join(fields)

    rows = [with_income(r, v) for r, v in zip(GOOD_ROWS, ["lots", "many", "plenty"])]
    path = write(tmp_path / "t.csv", csv_text(rows))
    message = load_error(path)
    assert str(path) in message and "'annual_inc'" in message and "lots" in message
    # mostly text (one number): still the column is named, through the per-column limit
    rows[0] = GOOD_ROWS[0]
    assert "'annual_inc'" in load_error(write(tmp_path / "t2.csv", csv_text(rows)))


def test_bad_rows_dropped_and_counted_within_limit(tmp_path: Path) -> None:
    rows = GOOD_ROWS * 100 + [GOOD_ROWS[0].replace(",B,", ",H,"), GOOD_ROWS[1].replace(",A,", ",,"),
                              GOOD_ROWS[2].replace("Feb-2016", "someday")]
    d = load_loans(write(tmp_path / "b.csv", csv_text(rows)), COLS)
    assert d.dropped == {"grade not in A-G": 1, "grade missing": 1, "unparseable issue_d": 1}
    assert d.rows_read == 303 and len(d.frame) == 300
    assert set(d.frame["grade"]) <= set(GRADES)


def test_bad_share_above_limit_fails(tmp_path: Path) -> None:
    rows = GOOD_ROWS * 10 + [GOOD_ROWS[0].replace(",B,", ",H,")] * 2
    path = write(tmp_path / "b.csv", csv_text(rows))
    message = load_error(path)
    assert str(path) in message and "grade not in A-G: 2" in message and "--max-bad-rows" in message
    assert load_loans(path, COLS, max_bad_rows=0.2).dropped == {"grade not in A-G": 2}
    assert "max_bad_rows" in load_error(path, max_bad_rows=1.5)


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_FILES, reason=f"real LendingClub files not found at {REAL}")
def test_every_real_file_loads() -> None:
    wanted = ["loan_amnt", "term", "int_rate", "installment", "emp_length", "home_ownership", "annual_inc",
              "issue_d", "earliest_cr_line", "revol_util", "dti", "addr_state", "application_type",
              "fico_range_low", "bc_util", "tot_cur_bal", "purpose", "verification_status"]
    for path in REAL_FILES:
        d = load_loans(path, wanted)
        f = d.frame
        assert len(f) == d.rows_read - sum(d.dropped.values()) > 0
        assert set(f["grade"]) <= set(GRADES)
        assert f["int_rate"].between(4, 32).all(), path.name           # percent units in every release
        assert f["revol_util"].median() > 10 and set(f["term"]) <= {36.0, 60.0}
        assert f["issue_d"].dt.year.between(2007, 2019).all() and f["issue_d"].notna().all()
        if "2007_2011" in path.name:
            assert d.rows_read == 42_535
            assert f["bc_util"].isna().all() and f["tot_cur_bal"].isna().all()
        else:
            assert d.rows_read in (1000, 2000) and f["bc_util"].notna().mean() > 0.5
