"""Other schemas and row keys: spellings renamed, absent columns filled as blanks, rows named by id or number."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.training.data.samples import COLS, GOOD_ROWS, HEADER, csv_text, write
from training.data import MissingColumnsError, load_loans, parse_frame, parse_records
from training.data.schema import COLUMN_SPELLINGS, spelled_columns
from training.errors import DataError

BAD_EMP = GOOD_ROWS[0].replace("10+ years", "bogus")
BAD_GRADE = GOOD_ROWS[1].replace(",A,", ",H,")


def test_spelled_columns_finds_other_spellings_and_letter_case() -> None:
    header = ["id", "is_inc_v", "Home_Ownership", "open_il_6m", "open_act_il", "verified_status_joint"]
    wanted = ["verification_status", "home_ownership", "open_act_il", "verification_status_joint", "dti"]
    assert spelled_columns(header, wanted) == {"verification_status": "is_inc_v", "home_ownership": "Home_Ownership",
                                               "verification_status_joint": "verified_status_joint"}
    assert all(name not in spellings for name, spellings in COLUMN_SPELLINGS.items())


def test_older_spellings_are_read_and_renamed_not_filled(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.csv", csv_text(GOOD_ROWS, HEADER + ",verification_status,open_act_il"))
    rows = [r + f",{v},{n}" for r, v, n in zip(GOOD_ROWS, ["Verified", "Not Verified", "Source Verified"], [1, 2, 3])]
    plain.write_text(csv_text(rows, HEADER + ",verification_status,open_act_il"))
    older = write(tmp_path / "older.csv", csv_text(rows, HEADER.replace("home_ownership", "HOME_OWNERSHIP")
                                                   + ",is_inc_v,open_il_6m"))
    wanted = [*COLS, "verification_status", "open_act_il"]
    expected, got = load_loans(plain, wanted), load_loans(older, wanted)
    pd.testing.assert_frame_equal(got.frame, expected.frame)
    assert got.spellings == {str(older): {"HOME_OWNERSHIP": "home_ownership", "is_inc_v": "verification_status",
                                          "open_il_6m": "open_act_il"}}
    assert got.renamed == got.spellings[str(older)] and got.filled == {} and expected.renamed == {}


def test_absent_columns_fail_or_are_blanks_in_every_row(tmp_path: Path) -> None:
    path = write(tmp_path / "loans_2016.csv", csv_text(GOOD_ROWS))
    wanted = [*COLS, "fico_range_low", "fico_range_high", "purpose"]
    with pytest.raises(MissingColumnsError) as info:
        load_loans(path, wanted)
    assert info.value.columns == ["fico_range_low", "fico_range_high", "purpose"]
    assert str(path) in str(info.value) and isinstance(info.value, DataError)
    d = load_loans(path, wanted, fill_missing=True)
    assert d.absent == {str(path): ["fico_range_low", "fico_range_high", "purpose"]}
    assert d.filled == {"fico_range_high": [str(path)], "fico_range_low": [str(path)], "purpose": [str(path)]}
    # the same values and dtypes as the columns of blanks parse_frame gives
    blanks, _ = parse_frame(pd.DataFrame({c: [""] * 3 for c in ("fico_range_low", "fico_range_high", "purpose")}),
                            source="blanks")
    pd.testing.assert_frame_equal(d.frame[list(blanks.columns)], blanks)
    with pytest.raises(DataError, match="none of the needed columns"):
        load_loans(path, ["fico_range_low", "dti"], require_grade=False, fill_missing=True)
    with pytest.raises(DataError, match="no 'grade' column"):
        load_loans(write(tmp_path / "ng.csv", "loan_amnt,term\n1,36\n"), ["loan_amnt", "dti"], fill_missing=True)


def test_rows_keep_their_id_in_order_and_dropped_rows_are_listed(tmp_path: Path) -> None:
    rows = [f"{100 + i},{r}" for i, r in enumerate([GOOD_ROWS[0], BAD_EMP, GOOD_ROWS[1], BAD_GRADE, GOOD_ROWS[2]])]
    path = write(tmp_path / "ids.csv", csv_text(rows + ["1,2,3"], "id," + HEADER))
    d = load_loans(path, COLS, require_grade=False, track_rows=True, max_bad_rows=0.5)
    assert d.keys == ["id"] and d.frame["id"].tolist() == ["100", "102", "103", "104"]
    assert "row" not in d.frame.columns and d.frame["loan_amnt"].tolist() == [10000, 5000, 5000, 8000]
    assert d.dropped_rows.to_dict("records")[0] == {"id": "101", "reason": "unparseable emp_length"}
    assert d.dropped_rows["reason"].tolist() == ["unparseable emp_length", "malformed row"]   # grade not required
    assert d.dropped == {"unparseable emp_length": 1, "malformed row": 1}
    labelled = load_loans(path, COLS, track_rows=True, max_bad_rows=0.5)
    assert labelled.dropped_rows["id"].tolist()[:2] == ["101", "103"] and labelled.frame["id"].tolist() == \
        ["100", "102", "104"]


def test_rows_without_usable_ids_are_numbered_and_several_files_name_their_source(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", csv_text([GOOD_ROWS[0], BAD_EMP, GOOD_ROWS[1]]))
    b = write(tmp_path / "b.csv", csv_text([f"7,{r}" for r in GOOD_ROWS], "id," + HEADER))   # ids repeated
    one = load_loans(a, COLS, track_rows=True, max_bad_rows=0.5)
    assert one.keys == ["row"] and one.frame["row"].tolist() == [1, 3] and one.notes == []
    assert one.dropped_rows.to_dict("records") == [{"row": 2, "reason": "unparseable emp_length"}]
    repeated = load_loans(b, COLS, track_rows=True)
    assert repeated.keys == ["row"] and "id" not in repeated.frame and "repeated" in repeated.notes[0]
    both = load_loans([a, b], COLS, track_rows=True, max_bad_rows=0.5)
    assert both.keys == ["source", "row"]
    assert list(zip(both.frame["source"], both.frame["row"])) == [(str(a), 1), (str(a), 3), (str(b), 1),
                                                                  (str(b), 2), (str(b), 3)]
    assert both.dropped_rows.to_dict("records") == [{"source": str(a), "row": 2, "reason": "unparseable emp_length"}]
    untracked = load_loans(b, COLS)
    assert untracked.dropped_rows is None and "row" not in untracked.frame and untracked.keys == []


def test_json_lines_load_like_a_csv(tmp_path: Path) -> None:
    csv = write(tmp_path / "loans.csv", csv_text(GOOD_ROWS, HEADER.replace("home_ownership", "is_inc_v")))
    records = pd.read_csv(csv, dtype=str).to_dict("records")
    records.insert(1, {**records[0], "emp_length": "bogus"})
    jsonl = tmp_path / "loans.jsonl.gz"
    jsonl.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode() + b"\n\n"))
    wanted = [c for c in COLS if c != "home_ownership"] + ["verification_status"]
    from_csv = load_loans(csv, wanted, track_rows=True)
    from_json = load_loans(jsonl, wanted, track_rows=True, max_bad_rows=0.5)
    pd.testing.assert_frame_equal(from_json.frame.drop(columns="row"), from_csv.frame.drop(columns="row"))
    assert from_json.frame["row"].tolist() == [1, 3, 4] and from_json.renamed == {"is_inc_v": "verification_status"}
    assert from_json.dropped_rows.to_dict("records") == [{"row": 2, "reason": "unparseable emp_length"}]
    broken = write(tmp_path / "broken.jsonl", '{"loan_amnt": 1\n')
    with pytest.raises(DataError, match="not a JSON-lines file"):
        load_loans(broken, ["loan_amnt"], require_grade=False)


def test_the_record_path_reads_the_same_spellings(tmp_path: Path) -> None:
    record = {"loan_amnt": "1000", "is_inc_v": "Verified", "OPEN_IL_6M": 2, "grade": "B"}
    frame, dropped = parse_records([record], ["loan_amnt", "verification_status", "open_act_il"], source="r")
    assert dropped == {} and frame.to_dict("records") == [{"loan_amnt": 1000.0, "verification_status": "Verified",
                                                          "open_act_il": 2.0}]
    many, _ = parse_records([record] * 100, ["loan_amnt", "verification_status"], source="r")
    assert len(many) == 100 and set(many["verification_status"]) == {"Verified"}
    assert np.isnan(parse_records([{"dti": None, "is_inc_v": None}], ["dti", "verification_status"],
                                  source="r")[0]["dti"].iloc[0])
