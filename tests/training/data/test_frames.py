"""training.data.frames: parse_frame on frames of raw values (records), keep_index and the grade."""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.data import parse_frame


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


def test_text_columns_hold_one_string_per_distinct_value() -> None:
    states = [" CA", "NY ", None, "", "CA", "TX", "NY"] * 300
    raw = pd.DataFrame({"addr_state": states, "grade": ["a", "B", None, "c", "x", "b", "G"] * 300}, dtype=object)
    f, _ = parse_frame(raw, source="r")
    assert f["addr_state"].dtype == object and f["grade"].dtype == object
    expected = pd.Series([s.strip() or np.nan if s else np.nan for s in states], dtype=object, name="addr_state")
    pd.testing.assert_series_equal(f["addr_state"], expected)
    assert [g if isinstance(g, str) else None for g in f["grade"][:7]] == ["A", "B", None, "C", None, "B", "G"]
    assert len({id(s) for s in f["addr_state"] if isinstance(s, str)}) == 3     # CA, NY, TX: shared, not per row
    assert all(v is np.nan or isinstance(v, str) for v in f["addr_state"])
