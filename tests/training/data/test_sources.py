"""training.data.sources: paths, globs, directories, lists and S3 (moto) objects, prefixes and globs."""
from __future__ import annotations

import gzip
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from tests.training.data.samples import COLS, GOOD_ROWS, csv_text, load_error, write
from training.data import load_loans, resolve_sources
from training.data.sources import describe_files


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


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert str(missing) in load_error(missing) and "not found" in load_error(missing)
    assert "no files match" in load_error(str(tmp_path / "*.csv"))
    assert "no data files" in load_error([])


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
    assert "s3://loans/nothing" in load_error("s3://loans/nothing")
    assert "s3://missing-bucket/x.csv" in load_error("s3://missing-bucket/x.csv")


def test_a_directory_is_read_without_its_subdirectories_which_a_recursive_glob_reads(tmp_path: Path) -> None:
    (tmp_path / "2016").mkdir()
    write(tmp_path / "top.csv", csv_text(GOOD_ROWS[:1]))
    write(tmp_path / "2016" / "deep.csv", csv_text(GOOD_ROWS[1:]))
    assert resolve_sources(tmp_path) == [str(tmp_path / "top.csv")]
    assert resolve_sources(str(tmp_path / "**" / "*.csv")) == [str(tmp_path / "2016" / "deep.csv"),
                                                             str(tmp_path / "top.csv")]
    only_deep = tmp_path / "only_deep"
    (only_deep / "sub").mkdir(parents=True)
    write(only_deep / "sub" / "x.csv.gz", "")
    assert "subdirectories are not read" in load_error(only_deep) and "**" in load_error(only_deep)


def test_files_are_named_in_one_short_line() -> None:
    assert describe_files(["/d/a.csv"]) == "1 file: a.csv"
    assert describe_files(["s3://b/p/a.csv", "/d/b.parquet"]) == "2 files: a.csv, b.parquet"
    many = [f"/d/part-{i}.csv.gz" for i in range(12)]
    assert describe_files(many) == "12 files: part-0.csv.gz, part-1.csv.gz, part-2.csv.gz (+9 more)"
