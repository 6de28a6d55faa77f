"""training.data: sources, formats, every spelling, bad input, drop counting, S3 (moto) and the real files."""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

import training.data as data_module
from training.data import GRADES, RAW_COLUMNS, SourceFile, load_loans, parse_frame, parse_records, resolve_sources
from training.errors import DataError

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lendingclub"
COLS = ["loan_amnt", "term", "int_rate", "emp_length", "issue_d", "earliest_cr_line", "revol_util",
        "annual_inc", "home_ownership"]
HEADER = "loan_amnt,term,int_rate,grade,emp_length,issue_d,earliest_cr_line,revol_util,annual_inc,home_ownership"
GOOD_ROWS = [
    '10000, 36 months, 11.55%,B,10+ years,Dec-2015,Aug-2000,36.2%,55000,RENT',
    '5000, 60 months,  7.49%,A,< 1 year,Jan-2016,May-1998,5%,72000.5,MORTGAGE',
    '8000, 36 months, 22.90%,E,n/a,Feb-2016,Feb-2002,100.1%,30000,OWN',
]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def csv_text(rows: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "loans.csv", csv_text(GOOD_ROWS))


# ------------------------------------------------------------------------------------------ spellings

def test_raw_text_spellings_parse(good: Path) -> None:
    d = load_loans(good, COLS)
    f = d.frame
    assert list(f.columns) == COLS + ["grade"]
    assert f["int_rate"].tolist() == [11.55, 7.49, 22.90]
    assert f["revol_util"].tolist() == [36.2, 5.0, 100.1]
    assert f["term"].tolist() == [36.0, 60.0, 36.0]
    assert f["issue_d"].tolist() == [pd.Timestamp("2015-12-01"), pd.Timestamp("2016-01-01"),
                                     pd.Timestamp("2016-02-01")]
    assert f["issue_d"].dtype == "datetime64[ns]" and f["earliest_cr_line"].dtype == "datetime64[ns]"
    assert f["emp_length"].iloc[0] == "10+ years" and f["emp_length"].iloc[1] == "< 1 year"
    assert pd.isna(f["emp_length"].iloc[2])
    assert f["grade"].tolist() == ["B", "A", "E"]
    assert f["annual_inc"].dtype == "float64" and f["annual_inc"].iloc[1] == 72000.5
    assert f["home_ownership"].tolist() == ["RENT", "MORTGAGE", "OWN"]
    assert isinstance(f.index, pd.RangeIndex)
    assert d.rows_read == 3 and d.dropped == {}


def test_fraction_and_iso_spellings(tmp_path: Path) -> None:
    # the 2007-2011 re-publication: fractions (with a utilisation above 100%), ISO dates, integer term
    rows = ['10000,36,0.1155,B,10 years,2015-12-01,2000-08-01,0.362,55000,RENT',
            '5000,60,0.0749,A,1 year,2016-01-01,1998-05-01,1.19,72000,RENT',
            '5000,60,0.2290,E,0,2016-01-01,1998-05-01,0.5,72000,RENT']
    f = load_loans(write(tmp_path / "f.csv", csv_text(rows)), COLS).frame
    assert f["int_rate"].tolist() == [11.55, 7.49, 22.9]
    assert f["revol_util"].tolist() == [36.2, 119.0, 50.0]
    assert f["term"].tolist() == [36.0, 60.0, 60.0]
    assert f["issue_d"].iloc[0] == pd.Timestamp("2015-12-01")
    assert f["emp_length"].tolist() == ["10+ years", "1 year", "< 1 year"]


def test_percent_numbers_are_kept(tmp_path: Path) -> None:
    rows = ['10000,36,11.55,B,2 years,Dec-2015,Aug-2000,0.5,55000,RENT',
            '5000,60,7.49,A,3 years,Dec-2015,Aug-2000,36.2,72000,RENT']
    f = load_loans(write(tmp_path / "p.csv", csv_text(rows)), COLS).frame
    assert f["int_rate"].tolist() == [11.55, 7.49]
    assert f["revol_util"].tolist() == [0.5, 36.2]      # median 18.35 > 1.5: percent, not fractions


def test_parse_frame_json_like_records() -> None:
    raw = pd.DataFrame({"int_rate": [" 11.55%", 7.49], "term": [36, " 60 months"],
                        "issue_d": ["Dec-2015", "2016-01-01"], "emp_length": ["n/a", 10],
                        "annual_inc": ["55000", None]}, dtype=object)
    f, dropped = parse_frame(raw, source="records.jsonl")
    assert dropped == {}
    assert f["int_rate"].tolist() == [11.55, 7.49]
    assert f["term"].tolist() == [36.0, 60.0]
    assert f["issue_d"].tolist() == [pd.Timestamp("2015-12-01"), pd.Timestamp("2016-01-01")]
    assert pd.isna(f["emp_length"].iloc[0]) and f["emp_length"].iloc[1] == "10+ years"
    assert f["annual_inc"].iloc[0] == 55000.0 and np.isnan(f["annual_inc"].iloc[1])


def test_parse_frame_keep_index_and_grade_handling() -> None:
    raw = pd.DataFrame({"grade": ["b", "H", None], "annual_inc": ["1", "x", "3"]}, index=[10, 11, 12])
    f, dropped = parse_frame(raw, source="r", keep_index=True)
    assert dropped == {"unparseable annual_inc": 1}
    assert f.index.tolist() == [10, 12] and f["grade"].iloc[0] == "B" and pd.isna(f["grade"].iloc[1])
    f, dropped = parse_frame(raw, source="r", require_grade=True)
    assert dropped == {"grade not in A-G": 1, "grade missing": 1}
    assert f["grade"].tolist() == ["B"] and isinstance(f.index, pd.RangeIndex)


# ------------------------------------------------------------------------------------ envelope, formats

def test_notice_line_and_summary_tail(tmp_path: Path) -> None:
    text = ("Notes offered by Prospectus (https://www.lendingclub.com/info/prospectus.action)\n"
            + csv_text(GOOD_ROWS[:2])
            + "Loans that do not meet the credit policy\n" + GOOD_ROWS[2] + "\n\n"
            + "Total amount funded in policy code 1: 2059175\nTotal amount funded in policy code 2: 511988\n")
    d = load_loans(write(tmp_path / "lc.csv", text), COLS)
    assert d.rows_read == 3 and d.dropped == {} and d.frame["grade"].tolist() == ["B", "A", "E"]


def test_short_data_row_is_dropped_as_malformed(tmp_path: Path) -> None:
    rows = GOOD_ROWS * 40 + ["10000, 36 months, 11.55%,B"]
    d = load_loans(write(tmp_path / "m.csv", csv_text(rows)), COLS, max_bad_rows=0.05)
    assert d.rows_read == 121 and d.dropped == {"malformed row": 1} and len(d.frame) == 120


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
    import hashlib
    assert plain.files == [SourceFile(uri=str(good), sha256=hashlib.sha256(good.read_bytes()).hexdigest(),
                                      bytes=good.stat().st_size, rows=3)]


def test_several_files_glob_list_and_directory(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", csv_text(GOOD_ROWS[:1]))
    write(tmp_path / "b.csv", csv_text(GOOD_ROWS[1:]))
    write(tmp_path / "notes.txt", "ignored")
    by_glob = load_loans(str(tmp_path / "*.csv"), COLS)
    by_list = load_loans([tmp_path / "a.csv", tmp_path / "b.csv"], COLS)
    by_dir = load_loans(tmp_path, COLS)
    for d in (by_glob, by_list, by_dir):
        assert d.rows_read == 3 and [f.rows for f in d.files] == [1, 2]
        assert d.frame["grade"].tolist() == ["B", "A", "E"] and isinstance(d.frame.index, pd.RangeIndex)
    assert resolve_sources(str(tmp_path / "*.csv")) == [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]


def test_reads_only_requested_columns(good: Path) -> None:
    d = load_loans(good, ["annual_inc"], require_grade=False)
    assert list(d.frame.columns) == ["annual_inc"]


# ------------------------------------------------------------------------------------------- bad input

def _read_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The columns read as float64 by each CSV read of the next loads."""
    calls: list[list[str]] = []
    original = data_module._read_csv

    def recording(path, uri, wanted, notice_lines, typed):
        calls.append(list(typed))
        return original(path, uri, wanted, notice_lines, typed)

    monkeypatch.setattr(data_module, "_read_csv", recording)
    return calls


def test_numbers_are_read_typed_in_one_pass(good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _read_calls(monkeypatch)
    load_loans(good, COLS)
    assert calls == [["loan_amnt", "annual_inc"]]     # percent, date and text columns stay text


@pytest.mark.parametrize("odd,reads", [("5%", 2), ("  ", 2), ("NAN", 2), ("-nan", 2), ("abc", 2),
                                       ("inf", 1), (" 7 ", 1), ("1e3", 1)])
def test_typed_read_gives_what_the_text_parser_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     odd: str, reads: int) -> None:
    """Whatever the spelling in a numeric column, the typed read (or its text fallback) parses like the text path."""
    rows = [*GOOD_ROWS, *GOOD_ROWS, f'9000, 36 months, 9.1%,C,2 years,Mar-2016,Jan-2001,20%,"{odd}",RENT']
    path = write(tmp_path / "odd.csv", csv_text(rows))
    calls = _read_calls(monkeypatch)
    fast = load_loans(path, COLS, max_bad_rows=0.5)
    assert len(calls) == reads and calls[-1] == ([] if reads == 2 else ["loan_amnt", "annual_inc"])
    monkeypatch.setattr(data_module, "_TYPED_AT_READ", frozenset())
    text = load_loans(path, COLS, max_bad_rows=0.5)
    pd.testing.assert_frame_equal(fast.frame, text.frame)
    assert fast.dropped == text.dropped and fast.rows_read == text.rows_read == 7


def _error(data, columns=COLS, **kw) -> str:
    with pytest.raises(DataError) as info:
        load_loans(data, columns, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert str(missing) in _error(missing) and "not found" in _error(missing)
    assert "no files match" in _error(str(tmp_path / "*.csv"))
    assert "no data files" in _error([])


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.csv", "")
    assert str(empty) in _error(empty) and "empty" in _error(empty)
    blank_gz = tmp_path / "blank.csv.gz"
    blank_gz.write_bytes(gzip.compress(b"\n\n"))
    assert "empty" in _error(blank_gz)
    header_only = write(tmp_path / "h.csv", HEADER + "\n")
    assert "no data rows" in _error(header_only)


def test_not_a_csv(tmp_path: Path) -> None:
    png = tmp_path / "image.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert str(png) in _error(png) and "not a CSV" in _error(png)
    prose = write(tmp_path / "prose.csv", "Hello there\nthis is a letter\n")
    assert "not a CSV" in _error(prose)
    jsonl = write(tmp_path / "r.csv", '{"a": 1, "b": 2}\n{"a": 3, "b": 4}\n')
    assert "not a CSV" in _error(jsonl)


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(csv_text(GOOD_ROWS * 3000).encode())
    bad = tmp_path / "cut.csv.gz"
    bad.write_bytes(data[: len(data) // 2])
    message = _error(bad)
    assert str(bad) in message and "truncated or corrupt" in message


def test_zip_with_zero_or_several_csvs(tmp_path: Path, good: Path) -> None:
    none = tmp_path / "none.zip"
    with zipfile.ZipFile(none, "w") as z:
        z.writestr("readme.txt", "no data")
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        z.write(good, "a.csv")
        z.write(good, "b.csv")
    assert str(none) in _error(none) and "exactly one .csv" in _error(none)
    assert "found 2 (a.csv, b.csv)" in _error(many)


def test_missing_grade_and_feature_columns(tmp_path: Path) -> None:
    no_grade = write(tmp_path / "ng.csv", "loan_amnt,term\n1,36\n")
    assert str(no_grade) in _error(no_grade) and "'grade'" in _error(no_grade)
    message = _error(no_grade, ["loan_amnt", "dti", "fico_range_low"], require_grade=False)
    assert str(no_grade) in message and "dti, fico_range_low" in message


def test_numeric_column_full_of_text(tmp_path: Path) -> None:
    def with_income(row: str, value: str) -> str:
        fields = row.split(",")
        fields[8] = value
        return ",".join(fields)

    rows = [with_income(r, v) for r, v in zip(GOOD_ROWS, ["lots", "many", "plenty"])]
    path = write(tmp_path / "t.csv", csv_text(rows))
    message = _error(path)
    assert str(path) in message and "'annual_inc'" in message and "lots" in message
    # mostly text (one number): still the column is named, through the per-column limit
    rows[0] = GOOD_ROWS[0]
    assert "'annual_inc'" in _error(write(tmp_path / "t2.csv", csv_text(rows)))


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
    message = _error(path)
    assert str(path) in message and "grade not in A-G: 2" in message and "--max-bad-rows" in message
    assert load_loans(path, COLS, max_bad_rows=0.2).dropped == {"grade not in A-G": 2}
    assert "max_bad_rows" in _error(path, max_bad_rows=1.5)


# ------------------------------------------------------------------------------------------------- S3

@mock_aws
def test_s3_object_prefix_and_glob(tmp_path: Path, good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="loans")
    s3.put_object(Bucket="loans", Key="in/a.csv", Body=good.read_bytes())
    s3.put_object(Bucket="loans", Key="in/b.csv.gz", Body=gzip.compress(good.read_bytes()))
    s3.put_object(Bucket="loans", Key="in/readme.txt", Body=b"x")
    one = load_loans("s3://loans/in/a.csv", COLS)
    assert one.files[0].uri == "s3://loans/in/a.csv" and one.rows_read == 3
    assert one.files[0].sha256 == load_loans(good, COLS).files[0].sha256
    prefix = load_loans("s3://loans/in", COLS)
    assert [f.uri for f in prefix.files] == ["s3://loans/in/a.csv", "s3://loans/in/b.csv.gz"]
    assert prefix.rows_read == 6
    assert [f.uri for f in load_loans("s3://loans/in/*.gz", COLS).files] == ["s3://loans/in/b.csv.gz"]
    assert "s3://loans/nothing" in _error("s3://loans/nothing")
    assert "s3://missing-bucket/x.csv" in _error("s3://missing-bucket/x.csv")


# ------------------------------------------------------------------------------------------- real data

REAL_FILES = sorted(REAL.glob("**/*.csv.gz")) if REAL.is_dir() else []


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


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_FILES, reason=f"real LendingClub files not found at {REAL}")
def test_real_raw_header_matches_raw_columns() -> None:
    raw = REAL / "raw" / "nissan18_sample.csv.gz"
    if not raw.exists():
        pytest.skip(f"{raw} absent")
    with gzip.open(raw, "rt") as f:
        assert tuple(f.readline().strip().split(",")) == RAW_COLUMNS


# ------------------------------------------------------------------- parse_records (the few-records path)

def _record(**values):
    base = {"loan_amnt": "10000", "term": " 36 months", "int_rate": " 11.55%", "emp_length": "10+ years",
            "issue_d": "Dec-2015", "earliest_cr_line": "Aug-2000", "revol_util": "36.2%", "annual_inc": 55000,
            "home_ownership": "RENT", "id": "1077501"}
    return {**base, **values}


#: Common spellings: every one is parsed in plain Python by parse_records (no pandas per column).
COMMON_SPELLINGS = [
    [_record()],
    [_record(int_rate="11.55", revol_util=36.2, term="60", emp_length="< 1 year", issue_d="2015-12-01",
             earliest_cr_line="dec-1999", annual_inc="72000.5", loan_amnt=5000)],
    [_record(int_rate=0.1155, revol_util="0.362")],                       # fractions: scaled to percent
    [_record(revol_util="1.19"), _record(revol_util=0.2), _record(revol_util=None)],   # median of fractions
    [_record(emp_length="n/a", home_ownership="  ", annual_inc=None, issue_d="", term=None, int_rate=float("nan"),
             loan_amnt="", id=None)],                                     # every kind of missing value
    [_record(emp_length="1 year", term="36 MONTHS", loan_amnt="+1e3", annual_inc=".5", int_rate="7.%",
             home_ownership="SPACESHIP"), _record(emp_length="0 years", term="36.0 months", revol_util="5 %")],
    [_record(emp_length=" 3 years ", home_ownership=" MORTGAGE\n", earliest_cr_line="2001-02-28",
             issue_d="Feb-2016")],
]
#: Odd or unparseable spellings: those columns go through the vectorised parser (same drops, same errors).
ODD_SPELLINGS = [
    [_record(loan_amnt="1,000"), _record()],                             # unparseable: dropped and counted
    [_record(emp_length="bogus"), _record(term="forever"), _record(issue_d="2015-02-30"), _record()],
    [_record(term=36, emp_length=10, home_ownership=7, id=1077501)],      # numbers where text is parsed
    [_record(loan_amnt="inf", annual_inc=float("inf")), _record(int_rate=True), _record()],
    [_record(home_ownership="\u00a0RENT", term="36\u00a0months", issue_d="Sept-2015"), _record()],
    [_record(loan_amnt="NA", revol_util="n/a"), _record(), _record(), _record()],
]


def _batch_parse(records, columns):
    return parse_frame(pd.DataFrame(records)[columns], source="records")


@pytest.mark.parametrize("records", COMMON_SPELLINGS + ODD_SPELLINGS)
def test_parse_records_gives_parse_frames_values_dtypes_and_drops(records):
    columns = COLS + ["id"]
    frame, dropped = parse_records(records, columns, source="records")
    expected, expected_dropped = _batch_parse(records, columns)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert dropped == expected_dropped


@pytest.mark.parametrize("records", COMMON_SPELLINGS)
def test_common_spellings_never_reach_the_vectorised_parser(records, monkeypatch):
    columns = COLS + ["id"]
    expected, _ = _batch_parse(records, columns)

    def vectorised(*args, **kwargs):
        raise AssertionError("the vectorised parser was used")

    monkeypatch.setattr(data_module, "_parse", vectorised)
    frame, dropped = parse_records(records, columns, source="records")
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert dropped == {}


def test_parse_records_fractions_are_decided_per_call_like_parse_frame():
    frame, _ = parse_records([_record(int_rate="0.9")], ["int_rate"], source="records")
    assert frame["int_rate"].tolist() == [90.0]
    frame, _ = parse_records([_record(int_rate="0.9%")], ["int_rate"], source="records")
    assert frame["int_rate"].tolist() == [0.9]


def test_parse_records_errors_match_parse_frame():
    records = [_record(annual_inc="lots"), _record(annual_inc="plenty")]
    with pytest.raises(DataError) as batch:
        _batch_parse(records, COLS)
    with pytest.raises(DataError) as fast:
        parse_records(records, COLS, source="records")
    assert str(fast.value) == str(batch.value)
    assert "annual_inc" in str(fast.value)
    with pytest.raises(DataError, match="records lack columns: dti"):
        parse_records([_record()], COLS + ["dti"], source="records")


def test_parse_records_above_the_small_limit_uses_the_batch_parser():
    records = [_record(loan_amnt=str(1000 + i)) for i in range(data_module.SMALL_RECORDS + 1)]
    frame, dropped = parse_records(records, COLS, source="records")
    expected, _ = _batch_parse(records, COLS)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame["loan_amnt"].iloc[-1] == 1000.0 + data_module.SMALL_RECORDS
