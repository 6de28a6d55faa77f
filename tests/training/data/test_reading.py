"""training.data.reading: compression, zip members, the LendingClub envelope, the typed read and its text fallback."""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import training.data.reading as reading
from tests.training.data.samples import COLS, GOOD_ROWS, csv_text, damaged_gzip, load_error, write
from training.data import load_loans


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


def _read_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The columns read as float64 by each CSV read of the next loads."""
    calls: list[list[str]] = []
    original = reading._read_csv

    def recording(path, uri, wanted, notice_lines, typed):
        calls.append(list(typed))
        return original(path, uri, wanted, notice_lines, typed)

    monkeypatch.setattr(reading, "_read_csv", recording)
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
    monkeypatch.setattr(reading, "_TYPED_AT_READ", frozenset())
    text = load_loans(path, COLS, max_bad_rows=0.5)
    pd.testing.assert_frame_equal(fast.frame, text.frame)
    assert fast.dropped == text.dropped and fast.rows_read == text.rows_read == 7


def test_not_a_csv(tmp_path: Path) -> None:
    png = tmp_path / "image.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert str(png) in load_error(png) and "not a CSV" in load_error(png)
    prose = write(tmp_path / "prose.csv", "Hello there\nthis is a letter\n")
    assert "not a CSV" in load_error(prose)
    jsonl = write(tmp_path / "r.csv", '{"a": 1, "b": 2}\n{"a": 3, "b": 4}\n')
    assert "not a CSV" in load_error(jsonl)


@pytest.mark.parametrize("damage", ["truncated", "middle", "crc"])
def test_damaged_gzip(tmp_path: Path, damage: str) -> None:
    bad = tmp_path / "cut.csv.gz"
    bad.write_bytes(damaged_gzip(gzip.compress(csv_text(GOOD_ROWS * 3000).encode()), damage))
    message = load_error(bad)
    assert str(bad) in message and "truncated or corrupt" in message and "\n" not in message


def test_zip_with_zero_or_several_csvs(tmp_path: Path, good: Path) -> None:
    none = tmp_path / "none.zip"
    with zipfile.ZipFile(none, "w") as z:
        z.writestr("readme.txt", "no data")
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        z.write(good, "a.csv")
        z.write(good, "b.csv")
    assert str(none) in load_error(none) and "exactly one .csv" in load_error(none)
    assert "found 2 (a.csv, b.csv)" in load_error(many)


def test_parquet_is_read_like_the_csv_it_was_written_beside(tmp_path: Path) -> None:
    from training.synthetic import write_raw

    columns = [*COLS, "int_rate", "term", "issue_d"]
    as_csv = load_loans(write_raw(tmp_path / "s.csv.gz", 300, seed=4), columns)
    as_parquet = load_loans(write_raw(tmp_path / "s.parquet", 300, seed=4), columns)
    pd.testing.assert_frame_equal(as_parquet.frame, as_csv.frame)
    assert as_parquet.dropped == as_csv.dropped and as_parquet.files[0].rows == 300
    assert "missing columns" in load_error(tmp_path / "s.parquet", [*COLS, "no_such_column"])
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\0" * 20)
    assert "not a readable Parquet file" in load_error(tmp_path / "bad.parquet")


def test_a_progress_bar_counts_the_bytes_read_on_a_terminal(good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip as gz
    import io

    bars = []

    class Bar:
        def __init__(self, **options):
            self.n, self.options, self.closed = 0, options, False
            bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(reading, "progress_bar", lambda **options: Bar(**options))
    packed = good.with_suffix(".csv.gz")
    packed.write_bytes(gz.compress(good.read_bytes()))
    zipped = good.with_suffix(".zip")
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(good, "loans.csv")
    for path in (good, packed, zipped):
        bars.clear()
        assert load_loans(path, COLS).rows_read == 3
        (bar,) = bars
        assert (bar.closed, bar.options["desc"], bar.options["total"]) == (True, f"reading {path.name}",
                                                                           path.stat().st_size)
        assert bar.n == path.stat().st_size or path == zipped and 0 < bar.n < bar.options["total"]
    assert not isinstance(reading._open(good, str(good)), io.FileIO)   # no bar asked: no wrapper
