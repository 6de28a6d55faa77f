"""training.data.records: parse_records gives what parse_frame gives (values, dtypes, drops, errors)."""
from __future__ import annotations

import pandas as pd
import pytest

import training.data.records as records_module
from tests.training.data.samples import COLS
from training.data import parse_frame, parse_records
from training.errors import DataError


def _record(**values):
    base = {"loan_amnt": "10000", "term": " 36 months", "int_rate": " 11.55%", "emp_length": "10+ years",
            "issue_d": "Dec-2015", "earliest_cr_line": "Aug-2000", "revol_util": "36.2%", "annual_inc": 55000,
            "home_ownership": "RENT", "id": "1077501"}
    return {**base, **values}


#: Common spellings: every one is parsed by parse_records itself (no pandas per column).
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
#: Odd or unparseable spellings: the same values, drops and errors as the vectorised parser.
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

    monkeypatch.setattr(records_module, "parse_columns", vectorised)
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
    records = [_record(loan_amnt=str(1000 + i)) for i in range(records_module.SMALL_RECORDS + 1)]
    frame, dropped = parse_records(records, COLS, source="records")
    expected, _ = _batch_parse(records, COLS)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame["loan_amnt"].iloc[-1] == 1000.0 + records_module.SMALL_RECORDS


def test_unparseable_dates_terms_and_lengths_are_dropped_by_the_rules_themselves(monkeypatch):
    def vectorised(*args, **kwargs):
        raise AssertionError("the vectorised parser was used")

    monkeypatch.setattr(records_module, "parse_columns", vectorised)
    records = [_record(issue_d="2015-02-30"), _record(term="forever"), _record(emp_length="bogus"), _record()]
    frame, dropped = parse_records(records, COLS, source="records")
    assert dropped == {"unparseable term": 1, "unparseable emp_length": 1, "unparseable issue_d": 1}
    assert len(frame) == 1 and frame["int_rate"].tolist() == [11.55]


def test_a_number_column_arrow_rejects_goes_alone_through_the_batch_parser(monkeypatch):
    calls = []
    original = records_module.parse_columns

    def recording(raw, *args, **kwargs):
        calls.append(list(raw.columns))
        return original(raw, *args, **kwargs)

    monkeypatch.setattr(records_module, "parse_columns", recording)
    frame, dropped = parse_records([_record(loan_amnt="1,000"), _record()], COLS, source="records")
    assert calls == [["loan_amnt"]] and dropped == {"unparseable loan_amnt": 1}
    assert frame["annual_inc"].tolist() == [55000.0]
