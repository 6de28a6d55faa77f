"""training.data.parsing: every spelling of the rules, read from files and applied to texts directly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.training.data.samples import COLS, csv_text, write
from training.data import load_loans
from training.data.parsing import as_percent, parse_dates, parse_emp_lengths, parse_numbers, parse_terms, spread


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


def test_date_rule_plain_and_odd_spellings() -> None:
    values, bad = parse_dates(["Dec-2015", "dec-1999", "2015-12-01", "2015-02-30", "Sept-2015", "2015-12",
                               "someday"])
    assert values.dtype == "datetime64[ns]"
    assert list(values[:3]) == [np.datetime64("2015-12-01"), np.datetime64("1999-12-01"), np.datetime64("2015-12-01")]
    assert values[5] == np.datetime64("2015-12-01")          # ISO 8601 month, read by pandas
    assert bad.tolist() == [False, False, False, True, True, False, True]


def test_term_rule() -> None:
    values, bad = parse_terms(["36 months", "60", "36.0 months", "36 MONTHS", "forever", "36\u00a0months"])
    assert values[:4].tolist() == [36.0, 60.0, 36.0, 36.0] and values[5] == 36.0
    assert bad.tolist() == [False, False, False, False, True, False]


def test_emp_length_rule() -> None:
    values, bad = parse_emp_lengths(["10+ years", "11 years", "0", "< 1 year", "n/a", "bogus"])
    assert values[:4].tolist() == ["10+ years", "10+ years", "< 1 year", "< 1 year"]
    assert np.isnan(values[4]) and np.isnan(values[5]) and bad.tolist() == [False] * 5 + [True]


def test_number_rule_signs_blanks_and_bad_values() -> None:
    values, bad, signed = parse_numbers(pa.array([" 11.55%", "5 %", "1e3", "%", None, "inf", "NaN"]))
    assert values[:3].tolist() == [11.55, 5.0, 1000.0] and np.isnan(values[3:]).all()
    assert bad.tolist() == [False, False, False, False, False, True, True]
    assert signed.tolist() == [True, True, False, True, False, False, False]
    values, bad, _ = parse_numbers(pa.array(["1,000", "7"]))             # pandas reads what Arrow cannot
    assert np.isnan(values[0]) and values[1] == 7.0 and bad.tolist() == [True, False]
    with pytest.raises(pa.ArrowInvalid):
        parse_numbers(pa.array(["1,000", "7"]), fallback=False)


def test_fractions_are_scaled_by_their_median() -> None:
    assert as_percent(np.array([0.1155, 1.19, np.nan]), had_sign=False).tolist()[:2] == [11.55, 119.0]
    assert as_percent(np.array([0.5, 36.2]), had_sign=False).tolist() == [0.5, 36.2]
    assert as_percent(np.array([0.9]), had_sign=True).tolist() == [0.9]


def test_spread_puts_distinct_results_back_in_row_order() -> None:
    values, bad = spread(np.array([1.0, np.nan]), np.array([False, True]), np.array([1, -1, 0, 0]))
    assert np.isnan(values[:2]).all() and values[2:].tolist() == [1.0, 1.0]
    assert bad.tolist() == [True, False, False, False]
    dates, _ = spread(np.array(["2015-12-01"], dtype="datetime64[ns]"), np.array([False]), np.array([-1, 0]))
    assert np.isnat(dates[0]) and dates[1] == np.datetime64("2015-12-01")
