"""training.data.cache: a hit gives the cold read's LoadedData; invalidation by file content and parser version;
unreadable entries and unusable directories; what is not cached."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.training.data.samples import COLS, GOOD_ROWS, HEADER, csv_text, load_error, write
from training import synthetic
from training.data import LoadedData, cache, load_loans
from training.data.cache_dir import using_cache

ID_HEADER = "id," + HEADER + ",Is_Inc_V"
ROWS = [
    "1," + GOOD_ROWS[0] + ",Verified",
    "2," + GOOD_ROWS[1] + ",Not Verified",
    "3," + GOOD_ROWS[2].replace(",E,", ",,") + ",Verified",           # grade missing
    "4," + GOOD_ROWS[0].replace("11.55%", "abc") + ",Verified",       # int_rate unparseable
    "5,1,2,3",                                                        # malformed (wrong number of fields)
    "6," + GOOD_ROWS[1].replace(",A,", ",Z,") + ",Source Verified",   # grade not in A-G
    "7," + GOOD_ROWS[2] + ",",
]
WANTED = [*COLS, "verification_status", "dti"]   # verification_status spelled Is_Inc_V; dti absent
OPTIONS = {"max_bad_rows": 0.9, "fill_missing": True, "track_rows": True}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "loans.csv.gz"
    path.write_bytes(gzip.compress(csv_text(ROWS, ID_HEADER).encode()))
    return path


def _load(data, directory: Path | None, lines: list[str] | None = None, **kw) -> LoadedData:
    with using_cache(directory, log=(lines if lines is not None else []).append):
        return load_loans(data, kw.pop("columns", WANTED), **(OPTIONS | kw))


def _entries(directory: Path) -> list[Path]:
    return sorted((directory / cache.ENTRIES).glob("*.parquet"))


def assert_same(hit: LoadedData, cold: LoadedData) -> None:
    pd.testing.assert_frame_equal(hit.frame, cold.frame, check_exact=True)
    for column in (c for c, dtype in cold.frame.dtypes.items() if str(dtype) == "object"):
        assert list(map(type, hit.frame[column])) == list(map(type, cold.frame[column]))   # str and NaN, as parsed
    if cold.dropped_rows is None:
        assert hit.dropped_rows is None
    else:
        pd.testing.assert_frame_equal(hit.dropped_rows, cold.dropped_rows, check_exact=True)
    for name in ("files", "dropped", "rows_read", "keys", "notes", "spellings", "absent", "repeated_ids"):
        assert getattr(hit, name) == getattr(cold, name), name


def test_a_hit_is_the_cold_read(tmp_path: Path, data: Path) -> None:
    cold = _load(data, None)
    assert cold.dropped == {"grade missing": 1, "grade not in A-G": 1, "unparseable int_rate": 1, "malformed row": 1}
    assert cold.spellings == {str(data): {"Is_Inc_V": "verification_status"}} and cold.absent == {str(data): ["dti"]}
    lines: list[str] = []
    first = _load(data, tmp_path / "cache", lines)
    assert lines == [] and len(_entries(tmp_path / "cache")) == 1
    second = _load(data, tmp_path / "cache", lines)
    assert lines == [f"read {data} (cached: {tmp_path / 'cache' / cache.ENTRIES})"]
    assert_same(first, cold)
    assert_same(second, cold)
    assert second.keys == ["id"] and list(second.dropped_rows["id"][:3]) == ["3", "4", "6"]
    assert list(second.dropped_rows["reason"]) == ["grade missing", "unparseable int_rate", "grade not in A-G",
                                                   "malformed row"]


def test_a_hit_of_several_files_keeps_their_sources(tmp_path: Path, data: Path) -> None:
    other = write(tmp_path / "other.csv", csv_text(GOOD_ROWS))
    cold = _load([data, other], None)
    _load([data, other], tmp_path / "cache")
    lines: list[str] = []
    hit = _load([data, other], tmp_path / "cache", lines)
    assert len(lines) == 2 and all(line.endswith(f"(cached: {tmp_path / 'cache' / cache.ENTRIES})") for line in lines)
    assert hit.keys == ["source", "row"]
    assert_same(hit, cold)


def test_synthetic_file_without_row_keys(tmp_path: Path) -> None:
    path = synthetic.write_raw_csv(tmp_path / "synthetic.csv.gz", 300, seed=3)
    columns = ["grade", "loan_amnt", "int_rate", "term", "emp_length", "issue_d", "home_ownership", "emp_title"]
    cold = load_loans(path, columns)
    with using_cache(tmp_path / "cache", log=lambda line: None):
        load_loans(path, columns)
        hit = load_loans(path, columns)
    assert_same(hit, cold)


def test_an_entry_serves_fewer_columns_in_another_order(tmp_path: Path, data: Path) -> None:
    """An entry serves any request for columns it asked for: train's serves evaluate's and ungraded reads."""
    _load(data, tmp_path / "cache")
    for columns, kw in ((["int_rate", "grade", "loan_amnt"], {"track_rows": False}),
                        (["home_ownership", "int_rate", "dti"], {"require_grade": False}),
                        (["term", "revol_util", "grade"], {"max_bad_rows": 0.5, "fill_missing": False})):
        lines: list[str] = []
        hit = _load(data, tmp_path / "cache", lines, columns=columns, **kw)
        assert len(lines) == 1 and "(cached:" in lines[0], (columns, kw)
        assert_same(hit, _load(data, None, columns=columns, **kw))
    assert len(_entries(tmp_path / "cache")) == 1


def test_an_entry_does_not_serve_columns_or_grades_it_did_not_ask_for(tmp_path: Path, data: Path) -> None:
    _load(data, tmp_path / "cache", columns=["loan_amnt", "int_rate"], require_grade=False)
    for columns, kw in ((["loan_amnt", "int_rate"], {}), (["loan_amnt", "annual_inc"], {"require_grade": False})):
        lines: list[str] = []
        loaded = _load(data, tmp_path / "cache", lines, columns=columns, **kw)
        assert lines == []
        assert_same(loaded, _load(data, None, columns=columns, **kw))
    assert len(_entries(tmp_path / "cache")) == 3


def test_a_changed_file_is_parsed_again(tmp_path: Path, data: Path) -> None:
    _load(data, tmp_path / "cache")
    changed = gzip.decompress(data.read_bytes()).replace(b"55000", b"55001")
    data.write_bytes(gzip.compress(changed))
    lines: list[str] = []
    hit_or_not = _load(data, tmp_path / "cache", lines)
    assert lines == [] and len(_entries(tmp_path / "cache")) == 2
    assert hit_or_not.frame["annual_inc"].iloc[0] == 55001.0
    assert_same(hit_or_not, _load(data, None))


def test_a_new_parser_version_parses_again(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _load(data, tmp_path / "cache")
    monkeypatch.setattr(cache, "PARSER_VERSION", cache.PARSER_VERSION + 1)
    lines: list[str] = []
    again = _load(data, tmp_path / "cache", lines)
    assert lines == [] and len(_entries(tmp_path / "cache")) == 2
    _load(data, tmp_path / "cache", lines)
    assert len(lines) == 1 and lines[0].endswith("(cached: " + str(tmp_path / "cache" / cache.ENTRIES) + ")")
    assert_same(again, _load(data, None))


def test_an_unreadable_entry_is_ignored_and_written_again(tmp_path: Path, data: Path) -> None:
    _load(data, tmp_path / "cache")
    [entry] = _entries(tmp_path / "cache")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    lines: list[str] = []
    again = _load(data, tmp_path / "cache", lines)
    assert len(lines) == 1 and lines[0].startswith(f"cache: ignoring the unreadable entry {entry} (")
    assert lines[0].endswith(f"; parsing {data} again")
    assert_same(again, _load(data, None))
    lines.clear()
    assert_same(_load(data, tmp_path / "cache", lines), again)
    assert len(lines) == 1 and "(cached:" in lines[0]
    assert [p.name for p in (tmp_path / "cache" / cache.ENTRIES).iterdir()] == [entry.name]   # no temporary left


def test_an_unusable_directory_means_no_cache(tmp_path: Path, data: Path) -> None:
    not_a_dir = write(tmp_path / "cache", "a file")
    lines: list[str] = []
    loaded = _load(data, not_a_dir, lines)
    assert len(lines) == 1 and lines[0].startswith(f"cache: cannot write in {not_a_dir} (")
    assert lines[0].endswith("reading without the cache (set another --cache-dir, or --no-cache)")
    assert_same(loaded, _load(data, None))
    assert not_a_dir.read_text() == "a file"


def test_a_hit_keeps_the_column_share_limit(tmp_path: Path, data: Path) -> None:
    _load(data, tmp_path / "cache")
    with using_cache(tmp_path / "cache", log=lambda line: None):
        message = load_error(data, WANTED, max_bad_rows=0.05, fill_missing=True)
    assert message == load_error(data, WANTED, max_bad_rows=0.05, fill_missing=True)
    assert "column 'int_rate' has 1 of 6 values" in message and "(e.g. ' abc')" in message


def test_a_hit_keeps_the_missing_columns_error(tmp_path: Path, data: Path) -> None:
    _load(data, tmp_path / "cache")   # the same entry: filling is not part of the key
    with using_cache(tmp_path / "cache", log=lambda line: None):
        message = load_error(data, WANTED, max_bad_rows=0.9)
    assert message == load_error(data, WANTED, max_bad_rows=0.9)
    assert "missing columns needed by the feature set: dti" in message


def test_no_cache_outside_using_cache_nor_for_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = synthetic.write_raw_csv(tmp_path / "synthetic.csv", 50, seed=1)
    load_loans(path, ["loan_amnt"])
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()
    parquet = synthetic.write_raw_parquet(tmp_path / "synthetic.parquet", 50, seed=1)
    for _ in range(2):
        _load(parquet, tmp_path / "cache", columns=["loan_amnt"], track_rows=False)
    assert not (tmp_path / "cache").exists()


def test_trains_entry_serves_the_reads_of_evaluate_and_ungraded_reads(tmp_path: Path) -> None:
    from training.data_audit import load_for_training
    from training.features import get_feature_set, raw_columns_for

    path = synthetic.write_raw_csv(tmp_path / "synthetic.csv.gz", 300, seed=4)
    columns = raw_columns_for(get_feature_set("application").columns)
    lines: list[str] = []
    with using_cache(tmp_path / "cache", log=lines.append):
        load_for_training(str(path), ["grade", *columns], max_bad_rows=0.01, log=lambda line: None)
        assert lines == []
        hits = [load_loans(path, columns, require_grade=grade, track_rows=True) for grade in (True, False)]
    assert len(lines) == 2 and all("(cached:" in line for line in lines)
    for hit, grade in zip(hits, (True, False)):
        assert_same(hit, load_loans(path, columns, require_grade=grade, track_rows=True))


def test_columns_blank_in_every_row(tmp_path: Path) -> None:
    rows = [",".join([*row.split(",")[:5], "", "", "", "", ""]) for row in GOOD_ROWS]   # issue_d .. home_ownership
    path = write(tmp_path / "blank.csv", csv_text(rows))
    cold = load_loans(path, COLS)
    assert cold.frame["home_ownership"].isna().all() and cold.frame["issue_d"].isna().all()
    lines: list[str] = []
    with using_cache(tmp_path / "cache", log=lines.append):
        load_loans(path, COLS)
        hit = load_loans(path, COLS)
    assert len(_entries(tmp_path / "cache")) == 1 and len(lines) == 1 and "(cached:" in lines[0]
    assert_same(hit, cold)


def test_json_lines_file(tmp_path: Path) -> None:
    records = [{"id": "1", "loan_amnt": 1000, "int_rate": "11.5%", "grade": "B", "issue_d": "Dec-2015"},
               {"id": "2", "loan_amnt": "x", "int_rate": 7, "grade": "A", "issue_d": "Jan-2016"},
               {"id": "3", "loan_amnt": 5, "int_rate": 7, "grade": "A", "issue_d": None}]
    path = write(tmp_path / "records.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    columns, kw = ["loan_amnt", "int_rate", "issue_d"], {"max_bad_rows": 0.5, "track_rows": True}
    cold = load_loans(path, columns, **kw)
    lines: list[str] = []
    with using_cache(tmp_path / "cache", log=lines.append):
        load_loans(path, columns, **kw)
        hit = load_loans(path, columns, **kw)
    assert lines == [f"read {path} (cached: {tmp_path / 'cache' / cache.ENTRIES})"]
    assert hit.dropped == {"unparseable loan_amnt": 1}
    assert_same(hit, cold)
