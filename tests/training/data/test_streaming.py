"""training.data.streaming: a file read and parsed in chunks gives load_loans' rows, drops and errors."""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import training.data.streaming as streaming
from tests.training.data.samples import damaged_gzip
from training.data import load_loans
from training.data.streaming import FileChunks
from training.errors import DataError
from training.synthetic import generate_raw, write_raw_csv, write_raw_parquet

COLUMNS = ["loan_amnt", "annual_inc", "dti", "int_rate", "revol_util", "term", "emp_length", "issue_d",
           "earliest_cr_line", "addr_state", "purpose"]


def _chunks(path: Path, chunk_rows: int, columns: list[str] = COLUMNS, **kwargs) -> tuple[list, FileChunks]:
    options = {"max_bad_rows": 0.2, "fill_missing": False, "several": False} | kwargs
    f = FileChunks(path, str(path), columns, chunk_rows=chunk_rows, **options)
    chunks = list(f)
    listed = f.finish()
    return chunks, f, listed


def _bad_rows_csv(tmp_path: Path, rows: int = 50) -> Path:
    raw = generate_raw(rows, seed=21).astype({"dti": object})
    raw.loc[3, "emp_length"] = "bogus"
    raw.loc[17, "issue_d"] = "someday"
    raw.loc[18, "dti"] = "lots"
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    text = path.read_text().splitlines()
    text.insert(30, "1,2,3")                              # a malformed line
    path.write_text("\n".join(text) + "\n")
    return path


@pytest.mark.parametrize("chunk_rows", [7, 16, 1000])
def test_the_chunks_parse_as_load_loans_and_never_exceed_chunk_rows(tmp_path: Path, chunk_rows: int) -> None:
    path = _bad_rows_csv(tmp_path)
    chunks, f, listed = _chunks(path, chunk_rows)
    whole = load_loans(path, COLUMNS, require_grade=False, max_bad_rows=0.2, track_rows=True)
    assert all(len(c.frame) + len(c.dropped_rows) <= chunk_rows for c in chunks)
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(frame[list(whole.frame.columns)], whole.frame)
    dropped = pd.concat([*(c.dropped_rows for c in chunks), listed], ignore_index=True)
    assert dropped["reason"].tolist() == whole.dropped_rows["reason"].tolist()
    assert dropped["id"].iloc[:-1].tolist() == whole.dropped_rows["id"].iloc[:-1].tolist()
    assert f.dropped == whole.dropped and f.rows == whole.rows_read == 51
    assert f.ids_name_rows()


@pytest.mark.parametrize("suffix", [".csv.gz", ".zip", ".parquet", ".jsonl"])
def test_gzip_zip_parquet_and_json_lines_chunks_give_the_whole_files_rows(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"loans{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.write(write_raw_csv(tmp_path / "loans.csv", 45, seed=4), "LoanStats.csv")
    elif suffix == ".parquet":
        write_raw_parquet(path, 45, seed=4)
    elif suffix == ".jsonl":
        generate_raw(45, seed=4).to_json(path, orient="records", lines=True)
    else:
        write_raw_csv(path, 45, seed=4)
    chunks, f, _ = _chunks(path, 10)
    assert [len(c.frame) for c in chunks] == [10, 10, 10, 10, 5]
    whole = load_loans(path, COLUMNS, require_grade=False, track_rows=True)
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(frame[list(whole.frame.columns)], whole.frame)


@pytest.mark.parametrize("damage", ["truncated", "middle", "crc"])
def test_a_damaged_gzip_stops_the_chunks_with_a_one_line_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "loans.csv.gz"
    path.write_bytes(damaged_gzip(gzip.compress(write_raw_csv(tmp_path / "l.csv", 3000, seed=4).read_bytes()), damage))
    with pytest.raises(DataError) as caught:
        _chunks(path, 1000)
    assert str(path) in str(caught.value) and "truncated or corrupt" in str(caught.value)


def test_a_percent_column_keeps_the_first_chunks_fraction_decision(tmp_path: Path) -> None:
    raw = generate_raw(30, seed=5)
    raw["revol_util"] = np.r_[np.full(20, 0.5), np.full(10, 2.0)]   # fractions; the last chunk alone is not
    raw["int_rate"] = 0.11
    raw.to_csv(tmp_path / "fractions.csv", index=False)
    chunks, _, _ = _chunks(tmp_path / "fractions.csv", 10)
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert frame["revol_util"].tolist() == [50.0] * 20 + [200.0] * 10 and (frame["int_rate"] == 11.0).all()


def test_a_column_typed_at_read_and_rejected_in_a_later_block_is_read_as_text(tmp_path: Path, monkeypatch) -> None:
    raw = generate_raw(300, seed=6).astype({"annual_inc": object, "dti": object})
    raw.loc[250, "annual_inc"] = "61000%"                 # the reader rejects it as a number
    raw.loc[260, "dti"] = "NAN"                           # the reader reads NaN; the parser: unparseable
    raw.to_csv(tmp_path / "late.csv", index=False)
    options = streaming.csv_options

    def small_blocks(*args):
        read, parse, convert = options(*args)
        read.block_size = 4096                            # several blocks: the rejection comes late
        return read, parse, convert

    monkeypatch.setattr(streaming, "csv_options", small_blocks)
    chunks, f, _ = _chunks(tmp_path / "late.csv", 64)
    whole = load_loans(tmp_path / "late.csv", COLUMNS, require_grade=False, max_bad_rows=0.2, track_rows=True)
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(frame[list(whole.frame.columns)], whole.frame)
    assert f.dropped == whole.dropped == {"unparseable dti": 1} and frame["annual_inc"].iloc[250] == 61000.0


def test_the_whole_file_checks_are_made_over_the_chunks(tmp_path: Path) -> None:
    raw = generate_raw(40, seed=8).astype({"dti": object})
    raw.loc[10:19, "dti"] = None
    raw.loc[12, "dti"] = "lots"                 # the only dti of its chunk: not "a column of text" in the file
    raw.to_csv(tmp_path / "one.csv", index=False)
    chunks, f, _ = _chunks(tmp_path / "one.csv", 10)
    assert f.dropped == {"unparseable dti": 1}
    raw["dti"] = "lots"
    raw.to_csv(tmp_path / "text.csv", index=False)
    raw["dti"] = ["lots"] * 5 + [str(v) for v in range(35)]
    raw.to_csv(tmp_path / "share.csv", index=False)
    for name in ("text.csv", "share.csv"):
        with pytest.raises(DataError) as whole:
            load_loans(tmp_path / name, COLUMNS, require_grade=False, max_bad_rows=0.1)
        with pytest.raises(DataError) as chunked:
            _chunks(tmp_path / name, 10, max_bad_rows=0.1)
        assert str(chunked.value) == str(whole.value) and "\n" not in str(chunked.value)


def test_ids_that_repeat_or_are_missing_across_chunks_do_not_name_rows(tmp_path: Path) -> None:
    raw = generate_raw(30, seed=9)
    raw.loc[25, "id"] = raw.loc[2, "id"]
    raw.to_csv(tmp_path / "repeated.csv", index=False)
    assert not _chunks(tmp_path / "repeated.csv", 10)[1].ids_name_rows()
    raw = generate_raw(30, seed=9)
    raw.loc[25, "id"] = None
    raw.to_csv(tmp_path / "blank.csv", index=False)
    assert not _chunks(tmp_path / "blank.csv", 10)[1].ids_name_rows()


def test_id_keys_are_equal_only_for_equal_ids() -> None:
    ids = pd.Series(["123", "0123", "123", "abc", "abc", "5" * 17, "9" * 18, "9" * 18, "12a"], dtype=object)
    keys = streaming.id_keys(ids)
    assert len(np.unique(keys)) == len(set(ids)) == 6
    assert keys[0] == keys[2] and keys[3] == keys[4] and keys[6] == keys[7] and keys[0] != keys[1]
