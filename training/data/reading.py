"""Open a data file (plain CSV, gzip, a zip holding one CSV, or Parquet: told by its first bytes) and read its
columns.

LendingClub's envelope around the CSV is handled here:

* a notice line before the header (``Notes offered by Prospectus (https://...)``): leading lines
  without a comma are skipped;
* summary lines at the end (``Total amount funded in policy code 1: ...``) and separator lines
  (``Loans that do not meet the credit policy``): one-field rows that start with a letter are ignored
  and not counted as data rows; any other row with the wrong number of fields is skipped and counted
  as malformed.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from training.data.schema import FRACTION_PERCENT_COLUMNS, NULL_VALUES, NUMERIC_COLUMNS
from training.errors import DataError
from training.progress import bar as progress_bar

_PEEK_BYTES = 1 << 20
# what opening and reading a data file raises for a file that is not what it claims (DataError via _io_error)
READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, pa.ArrowException)
_MAX_NOTICE_LINES = 5


def _compression(path: Path) -> str:
    """"gzip", "zip", "parquet" or "plain", from the first bytes."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PAR1":
        return "parquet"
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"PK\x03\x04" or magic == b"PK\x05\x06":
        return "zip"
    return "plain"


def is_parquet(path: Path) -> bool:
    """Whether the file is Parquet (by its first bytes)."""
    return _compression(path) == "parquet"


def _zip_member(path: Path, uri: str) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist()
                     if not i.is_dir() and i.filename.lower().endswith(".csv")
                     and not i.filename.startswith("__MACOSX/")]
    except zipfile.BadZipFile:
        raise DataError(f"{uri}: not a readable zip file") from None
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        raise DataError(f"{uri}: a zip must hold exactly one .csv file, found {len(names)} ({found})")
    return names[0]


def _open(path: Path, uri: str, progress: str | None = None):
    """A binary stream of the CSV text (decompressed); with ``progress`` (its label), a progress bar of the
    file's bytes read where bars are shown (training.progress)."""
    kind = _compression(path)
    bar = progress_bar(total=path.stat().st_size, desc=progress, unit="B", unit_scale=True,
                       unit_divisor=1024) if progress else None
    source = _ProgressFile(path, bar) if bar is not None else str(path)
    if kind == "gzip":
        return pa.input_stream(source, compression="gzip")
    if kind == "zip":
        return _ZipStream(source, _zip_member(path, uri))
    return pa.input_stream(source)


class _ProgressFile(io.FileIO):
    """A file read in binary, its position shown on a progress bar, closed with the file."""

    def __init__(self, path: Path, bar):
        super().__init__(path, "rb")
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self._bar.update(self.tell() - self._bar.n)
        return data

    def readinto(self, buffer) -> int | None:
        count = super().readinto(buffer)
        self._bar.update(self.tell() - self._bar.n)
        return count

    def close(self) -> None:
        self._bar.close()
        super().close()


class _ZipStream:
    """The one CSV member of a zip, closing the archive with the stream."""

    def __init__(self, source: str | io.FileIO, member: str):
        self._source = source
        self._zip = zipfile.ZipFile(source)
        self._stream = self._zip.open(member)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def close(self) -> None:
        self._stream.close()
        self._zip.close()
        if isinstance(self._source, io.FileIO):   # a file object given is not closed by the ZipFile
            self._source.close()

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def readable(self) -> bool:
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _io_error(uri: str, exc: Exception) -> DataError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, EOFError) or any(
            w in text.lower() for w in ("gzip", "zlib", "truncat", "compressed", "end-of-stream", "inflate", "crc")):
        return DataError(f"{uri}: truncated or corrupt compressed file ({text[:120]}); download it again")
    return DataError(f"{uri}: cannot be read as CSV ({text[:160]})")


def read_header(path: Path, uri: str) -> tuple[list[str], int]:
    """The header fields (a Parquet file's column names) and the number of notice lines before them."""
    if _compression(path) == "parquet":
        return _parquet_schema(path, uri).names, 0
    try:
        with _open(path, uri) as stream:
            head = stream.read(_PEEK_BYTES)
    except DataError:
        raise
    except READ_ERRORS as exc:
        raise _io_error(uri, exc) from None
    if b"\x00" in head:
        raise DataError(f"{uri}: not a CSV file (binary content)")
    text = head.decode("utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"{uri}: file is empty")
    lines = text.splitlines()
    for i, line in enumerate(lines[:_MAX_NOTICE_LINES + 1]):
        if "," in line:
            header = [h.strip() for h in next(csv.reader([line]))]
            names = sum(bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ .]*", h)) for h in header)
            if names < max(2, len(header) // 2):
                raise DataError(f"{uri}: not a CSV file with a header row (first line: {line[:60]!r})")
            return header, i
        if line.strip() and not line.strip()[0].isalpha():
            break
    raise DataError(f"{uri}: not a CSV file (no comma-separated header line)")


#: Numeric columns read as float64 by the CSV reader itself (no text round trip). The percent columns
#: are left out: LendingClub writes them with a "%" sign, which the reader rejects.
_TYPED_AT_READ = NUMERIC_COLUMNS - FRACTION_PERCENT_COLUMNS


def read_table(path: Path, uri: str, wanted: list[str], notice_lines: int) -> tuple[pa.Table, int]:
    """The ``wanted`` columns and the count of malformed rows.

    Numeric columns are first read as float64 by the reader, which skips a text column per number and
    its parsing. Where that cannot give what the text parser gives (a value the reader rejects, such as
    ``"5%"`` or blanks, or a NaN spelling it accepts, such as ``"NAN"``), the file is read once more with
    every column as text, so the parsed result is the same either way.
    """
    if _compression(path) == "parquet":
        return _read_parquet(path, uri, wanted), 0
    typed = [c for c in wanted if c in _TYPED_AT_READ]
    if typed:
        try:
            table, malformed = _read_csv(path, uri, wanted, notice_lines, typed)
        except _TypedReadRejected:
            pass
        else:
            if not any(pc.any(pc.is_nan(table[c])).as_py() for c in typed):
                return table, malformed
    return _read_csv(path, uri, wanted, notice_lines, [])


def _parquet_schema(path: Path, uri: str) -> pa.Schema:
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{uri}: not a readable Parquet file ({str(exc)[:120]})") from None


def _read_parquet(path: Path, uri: str, wanted: list[str]) -> pa.Table:
    """The ``wanted`` columns of a Parquet file, typed as the CSV reader gives them: numbers of the
    numeric columns as float64, everything else as text (the parser reads the spellings)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=wanted)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{uri}: not a readable Parquet file ({str(exc)[:120]})") from None
    return typed_like_csv(table, wanted)


def typed_like_csv(table: pa.Table, wanted: list[str]) -> pa.Table:
    """A Parquet table's ``wanted`` columns as the CSV reader types them: float64 for the numbers of the
    numeric columns read typed, text for everything else."""
    columns = []
    for name in wanted:
        column = table[name]
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        columns.append(column.cast(pa.float64() if numeric and name in _TYPED_AT_READ else pa.string()))
    return pa.table(columns, names=wanted)


class _TypedReadRejected(Exception):
    """The CSV reader could not convert a value of a column read as float64."""


def csv_options(wanted: list[str], notice_lines: int, typed: list[str], on_invalid: Callable[[object], str]
                ) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    """The Arrow CSV reader's options: the ``wanted`` columns as text, the ``typed`` ones as float64, rows with
    the wrong number of fields handed to ``on_invalid``."""
    types = {c: pa.string() for c in wanted} | {c: pa.float64() for c in typed}
    read = pacsv.ReadOptions(skip_rows=notice_lines, block_size=1 << 22)   # 4 MiB: gzip inflate overlaps parsing
    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(include_columns=wanted, column_types=types,
                                   null_values=NULL_VALUES, strings_can_be_null=True,
                                   quoted_strings_can_be_null=True)
    return read, parse, convert


def _read_csv(path: Path, uri: str, wanted: list[str], notice_lines: int,
              typed: list[str]) -> tuple[pa.Table, int]:
    malformed = 0

    def on_invalid(row) -> str:
        nonlocal malformed
        text = (row.text or "").strip()
        if "," not in text and text[:1].isalpha():
            return "skip"          # LendingClub summary / separator line: not a data row
        malformed += 1
        return "skip"

    read, parse, convert = csv_options(wanted, notice_lines, typed, on_invalid)
    for encoding in ("utf8", "latin-1"):
        try:
            read.encoding = encoding
            malformed = 0
            with _open(path, uri, progress=f"reading {Path(uri).name}") as stream:
                table = pacsv.read_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
            return table, malformed
        except pa.ArrowInvalid as exc:
            if typed and "conversion error" in str(exc).lower():
                raise _TypedReadRejected(str(exc)) from None
            if encoding == "utf8" and "utf8" in str(exc).lower():
                continue
            raise _io_error(uri, exc) from None
        except READ_ERRORS as exc:
            raise _io_error(uri, exc) from None
    raise AssertionError("unreachable")
