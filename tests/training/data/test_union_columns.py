"""Files with different column sets (eras) read as one frame: the union of their columns, repeated loans dropped."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.data.samples import write
from training.data import MissingColumnsError, load_loans
from training.data.loading import drop_repeated_ids
from training.data_audit import load_for_training

OLD = "id,grade,loan_amnt,int_rate,issue_d\n1,A,1000,0.0749,2011-01-01\n2,B,2000,0.1155,2011-02-01\n"
NEW = ("id,grade,loan_amnt,int_rate,issue_d,bc_util\n2,B,2000, 11.55%,Feb-2011,50.5%\n"
       "30,C,3000, 14.00%,Mar-2015,20%\n31,D,4000, 17.00%,Apr-2016,\n")


@pytest.fixture
def eras(tmp_path: Path) -> list[str]:
    return [str(write(tmp_path / "a_old.csv", OLD)), str(write(tmp_path / "b_new.csv", NEW))]


def test_union_of_columns_absent_ones_missing_in_their_rows(eras: list[str]) -> None:
    columns = ["loan_amnt", "int_rate", "bc_util"]
    with pytest.raises(MissingColumnsError):
        load_loans(eras, columns)
    d = load_loans(eras, columns, union_columns=True)
    assert d.absent == {eras[0]: ["bc_util"]} and d.filled == {"bc_util": [eras[0]]}
    assert d.frame["grade"].tolist() == ["A", "B", "B", "C", "D"]
    np.testing.assert_allclose(d.frame["int_rate"], [7.49, 11.55, 11.55, 14.0, 17.0])   # both spellings
    np.testing.assert_array_equal(d.frame["bc_util"].isna(), [True, True, False, False, True])
    with pytest.raises(MissingColumnsError) as info:   # no file has it: still an error
        load_loans(eras, [*columns, "dti"], union_columns=True)
    assert info.value.columns == ["dti"]


def test_optional_columns_read_where_present(eras: list[str]) -> None:
    d = load_loans(eras, ["loan_amnt"], optional=["bc_util", "dti"])
    assert "dti" not in d.frame.columns and d.frame["bc_util"].notna().sum() == 2 and not d.absent


def test_repeated_ids_dropped_first_kept(eras: list[str]) -> None:
    d = load_loans(eras, ["loan_amnt"], optional=["id", "issue_d"])
    assert drop_repeated_ids(d) == 1 and d.repeated_ids == 1
    assert d.frame["id"].tolist() == ["1", "2", "30", "31"]
    assert str(d.frame["issue_d"].iloc[1].date()) == "2011-02-01"   # the first file's row kept
    assert list(d.frame.index) == [0, 1, 2, 3]
    assert drop_repeated_ids(d) == 0


def test_load_for_training_reports_absent_columns_and_repeats_in_one_line_each(eras: list[str]) -> None:
    lines: list[str] = []
    d = load_for_training(eras, ["grade", "loan_amnt", "bc_util"], max_bad_rows=0.0, log=lines.append)
    assert len(d.frame) == 4 and d.repeated_ids == 1 and {"id", "issue_d"} <= set(d.frame.columns)
    assert lines == ["columns absent from some files, missing in their rows (1): bc_util (a_old.csv)",
                     "dropped 1 rows whose id repeats an earlier row's (the same loan in several files); "
                     "run.json data.repeated_ids"]
    lines.clear()
    load_for_training(eras[1:], ["grade", "loan_amnt"], max_bad_rows=0.0, log=lines.append)
    assert lines == []
