"""training.predict_stream (predict_file in chunks): the same output files and log lines as the in-memory path,
whatever the chunk size; max_bad_rows over the whole input with nothing left behind; row keys."""
from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from training.errors import DataError
from training.predict import _predict_in_memory, predict_file
from training.synthetic import generate_raw, write_raw_parquet

BATCH = 64


@pytest.fixture(scope="module")
def model_path(trained_run):
    return trained_run[0].run_dir / "model.keras"


def _with_bad_rows(rows: int, seed: int, *, malformed_at: int | None = None) -> str:
    raw = generate_raw(rows, seed=seed).astype({"dti": object})
    raw.loc[3, "emp_length"] = "bogus"
    raw.loc[rows - 4, "issue_d"] = "someday"
    raw.loc[rows // 2, "dti"] = "lots"
    text = raw.to_csv(index=False).splitlines()
    if malformed_at is not None:
        text.insert(malformed_at, "1,2,3")
    return "\n".join(text) + "\n"


def _inputs(tmp_path: Path, kind: str) -> list[Path]:
    if kind == "csv":
        (tmp_path / "in.csv").write_text(_with_bad_rows(50, 1, malformed_at=20))
        return [tmp_path / "in.csv"]
    if kind == "gz":
        (tmp_path / "in.csv.gz").write_bytes(gzip.compress(_with_bad_rows(50, 2).encode()))
        return [tmp_path / "in.csv.gz"]
    if kind == "parquet":
        return [write_raw_parquet(tmp_path / "in.parquet", 45, seed=3)]
    (tmp_path / "a.csv").write_text(_with_bad_rows(30, 4, malformed_at=9))
    generate_raw(12, seed=5).drop(columns="id").to_json(tmp_path / "b.jsonl", orient="records", lines=True)
    return [tmp_path / "a.csv", tmp_path / "b.jsonl"]


def _both(model_path, data, tmp_path: Path, suffix: str, chunk_rows: int, **kwargs):
    """(in memory, streamed): each (result, log lines, output directory)."""
    runs = []
    for name in ("memory", "stream"):
        out = tmp_path / name
        out.mkdir(exist_ok=True)
        lines: list[str] = []
        options = {"batch_size": BATCH, "max_bad_rows": 0.1, "fill_missing_columns": False, **kwargs}
        if name == "memory":
            result = _predict_in_memory(model_path, data, out / f"p{suffix}", log=lines.append, **options)
        else:
            result = predict_file(model_path, data, out / f"p{suffix}", chunk_rows=chunk_rows, log=lines.append,
                                  **options)
        runs.append((result, [line.replace(str(out), "OUT") for line in lines], out))
    return runs


@pytest.mark.parametrize("kind", ["csv", "gz", "parquet", "several"])
@pytest.mark.parametrize("chunk_rows", [7, 16, 10_000])
def test_chunked_output_equals_the_in_memory_output(model_path, tmp_path, kind, chunk_rows):
    data = _inputs(tmp_path, kind)
    (memory, memory_lines, a), (stream, stream_lines, b) = _both(model_path, data, tmp_path, ".csv", chunk_rows)
    assert (b / "p.csv").read_bytes() == (a / "p.csv").read_bytes()
    assert stream_lines == memory_lines and stream.rows == memory.rows
    assert stream.dropped == memory.dropped and stream.renamed_columns == memory.renamed_columns
    if memory.dropped_file:
        assert (b / "p.dropped.csv").read_bytes() == (a / "p.dropped.csv").read_bytes()
    else:
        assert stream.dropped_file is None
    assert sorted(p.name for p in b.iterdir()) == sorted(p.name for p in a.iterdir())   # no temporary file left


@pytest.mark.parametrize("suffix", [".parquet", ".csv.gz"])
def test_parquet_and_gzip_outputs_equal_the_in_memory_ones(model_path, tmp_path, suffix):
    data = _inputs(tmp_path, "several")
    (_, _, a), (_, _, b) = _both(model_path, data, tmp_path, suffix, 8)
    if suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(b / "p.parquet"), pd.read_parquet(a / "p.parquet"))
    else:
        assert gzip.decompress((b / "p.csv.gz").read_bytes()) == gzip.decompress((a / "p.csv.gz").read_bytes())


@pytest.mark.parametrize("change", ["repeated", "blank"])
def test_an_id_repeated_or_blank_in_a_later_chunk_names_the_rows_by_number(model_path, tmp_path, change):
    raw = generate_raw(40, seed=6)
    raw.loc[33, "id"] = raw.loc[2, "id"] if change == "repeated" else None
    raw.to_csv(tmp_path / "in.csv", index=False)
    (memory, memory_lines, a), (_, stream_lines, b) = _both(model_path, tmp_path / "in.csv", tmp_path, ".csv", 10)
    assert (b / "p.csv").read_bytes() == (a / "p.csv").read_bytes()
    assert pd.read_csv(b / "p.csv").columns[0] == "row" and stream_lines == memory_lines
    assert any(line.startswith("rows are named by their row number") for line in stream_lines)


def test_too_many_bad_rows_over_the_chunks_is_one_line_and_leaves_no_output(model_path, tmp_path):
    (tmp_path / "in.csv").write_text(_with_bad_rows(50, 7))    # 3 of 50 rows: 6%, each chunk of 10 below 10%
    (tmp_path / "out.csv").write_text("an earlier run's output\n")
    with pytest.raises(DataError) as info:
        predict_file(model_path, tmp_path / "in.csv", tmp_path / "out.csv", max_bad_rows=0.05, chunk_rows=10,
                     log=print)
    message = str(info.value)
    assert "\n" not in message and "3 of 50 rows (6.0%) are unusable" in message and "--max-bad-rows" in message
    assert (tmp_path / "out.csv").read_text() == "an earlier run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_a_missing_column_is_the_flag_error_before_anything_is_written(model_path, tmp_path):
    generate_raw(20, seed=8).drop(columns=["dti"]).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataError, match="lacks columns the model needs: dti; pass --fill-missing-columns"):
        predict_file(model_path, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=5, log=print)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_first_chunk_with_every_row_dropped_gives_the_in_memory_parquet(model_path, tmp_path):
    raw = generate_raw(30, seed=9)
    raw.loc[:7, "emp_length"] = "bogus"
    raw.to_csv(tmp_path / "in.csv", index=False)
    (_, _, a), (stream, _, b) = _both(model_path, tmp_path / "in.csv", tmp_path, ".parquet", 8, max_bad_rows=0.5)
    got, expected = pd.read_parquet(b / "p.parquet"), pd.read_parquet(a / "p.parquet")
    pd.testing.assert_frame_equal(got, expected)
    assert stream.rows == 22 and got["prob_A"].dtype == "float32"
