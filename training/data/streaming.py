"""One data file read and parsed in chunks of at most ``chunk_rows`` rows, for `predict` on files of any size.

The reading (:mod:`training.data.reading`: the CSV envelope, numbers typed at read, Parquet typed as CSV) and the
parsing (:func:`~training.data.frames.parse_columns`) are load_loans', chunk by chunk: a CSV through Arrow's
streaming reader, a Parquet file by record batches; a JSON-lines file is read whole and cut into chunks. What
load_loans checks over a whole file is counted over the chunks and checked when the file is done
(:meth:`FileChunks.finish`): no data rows, a column holding only text, a column unparseable in more than
``max_bad_rows`` of the rows. Each chunk's rows carry their ``row`` number (``source`` with several files, ``id``
where the file has it); its dropped rows are listed with those keys and the reason.

Two decisions load_loans makes on the whole file are made early here: a percent column is read as fractions or
not on the file's first chunk that has values (the same for a file of one chunk); a CSV whose text turns out not
to be UTF-8 is read as Latin-1 from that block on (load_loans: the whole file). A numeric column the reader
cannot type (``"5%"``, ``"NAN"``) is read as text from that chunk on, which parses to the same values.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from training.data.frames import drop_rows, missing_column, parse_columns
from training.data.json_lines import is_json_lines_name, read_json_lines
from training.data.loading import LoadOptions, check_missing, dropped_rows_listed, file_errors, sum_dropped
from training.data.parsing import only_text_error, unparseable_share_error
from training.data.reading import (
    _TYPED_AT_READ,
    READ_ERRORS,
    _compression,
    _io_error,
    _open,
    _parquet_schema,
    csv_options,
    read_header,
    typed_like_csv,
)
from training.data.schema import REASON_MALFORMED, REASON_UNPARSEABLE_PREFIX, spelled_columns
from training.errors import DataError

CHUNK_ROWS = 65_536


@dataclass
class ParsedChunk:
    frame: pd.DataFrame          # the kept rows' parsed columns and keys (row; source, id where known)
    dropped_rows: pd.DataFrame   # the dropped rows' keys and reason


@dataclass
class _Tally:
    """What the file's chunks add up to, for the checks load_loans makes on the whole file."""
    rows: int = 0                                              # rows parsed (malformed ones aside)
    malformed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)     # first reason -> rows
    unparseable: dict[str, int] = field(default_factory=dict)  # column -> rows whose value does not parse
    examples: dict[str, object] = field(default_factory=dict)  # column -> its first value that does not parse
    only_text: set[str] | None = None                         # columns with no value that parses so far
    id_hashes: list[np.ndarray] = field(default_factory=list)
    ids_missing: bool = False


class FileChunks:
    """The parsed chunks of one file (iterate once), then :meth:`finish`. Opening reads the header (or a JSON-lines
    file) and raises MissingColumnsError for needed columns the file lacks (unless ``fill_missing``)."""

    def __init__(self, path: Path, uri: str, wanted: list[str], *, max_bad_rows: float, fill_missing: bool,
                 several: bool, chunk_rows: int = CHUNK_ROWS, track_ids: bool = True):
        self.path, self.uri, self.chunk_rows, self.track_ids = path, uri, chunk_rows, track_ids
        self.options = LoadOptions(wanted, False, max_bad_rows, fill_missing, True, several)
        self.bytes = _size(path, uri)
        if self.bytes == 0:
            raise DataError(f"{uri}: file is empty")
        self._records: pd.DataFrame | None = None
        if is_json_lines_name(uri):
            self._records = read_json_lines(path, uri)
            header, self._notice_lines = list(self._records.columns), 0
        else:
            header, self._notice_lines = read_header(path, uri)
        extra = [] if "id" in wanted else ["id"]
        spelled = spelled_columns(header, wanted + extra)
        present = set(header) | set(spelled)
        self.filled = [c for c in wanted if c not in present]      # needed columns the file lacks
        check_missing(uri, self.filled, self.options)
        self._reading = [c for c in wanted + extra if c in present]
        self._spellings = [spelled.get(c, c) for c in self._reading]
        self.renamed = {spelling: name for name, spelling in spelled.items()}
        self.has_id = "id" in self._reading
        self._fractions: dict[str, bool] = {}
        self.tally = _Tally()

    @property
    def rows(self) -> int:
        """Data rows read (malformed ones included)."""
        return self.tally.rows + self.tally.malformed

    @property
    def dropped(self) -> dict[str, int]:
        """Rows dropped by reason (malformed rows once :meth:`finish` has run)."""
        return dict(self.tally.dropped)

    def __iter__(self) -> Iterator[ParsedChunk]:
        for table in rechunk(self._tables(), self.chunk_rows):
            yield self._parse(table)

    def ids_name_rows(self) -> bool:
        """Whether every row so far has an id, and none repeats (64-bit keys compared: :func:`id_keys`)."""
        if not self.has_id or self.tally.ids_missing:
            return False
        hashes = np.concatenate(self.tally.id_hashes) if self.tally.id_hashes else np.zeros(0, np.uint64)
        return len(np.unique(hashes)) == len(hashes)

    def finish(self) -> pd.DataFrame:
        """The checks load_loans makes on a whole file (DataError); the malformed rows' listing."""
        tally, uri = self.tally, self.uri
        if self.rows == 0:
            raise DataError(f"{uri}: has a header but no data rows")
        for column in self._reading:
            if column in (tally.only_text or ()) and tally.unparseable.get(column):
                raise only_text_error(uri, column, tally.examples[column])
        for column in self._reading:
            count = tally.unparseable.get(column, 0)
            if count > self.options.max_bad_rows * tally.rows:
                raise unparseable_share_error(uri, column, count, tally.rows, tally.examples[column])
        listed = pd.DataFrame(columns=["reason"])
        if tally.malformed:
            tally.dropped[REASON_MALFORMED] = tally.malformed
            listed = pd.DataFrame({"reason": [REASON_MALFORMED] * tally.malformed})
            if self.options.several:
                listed["source"] = uri
        return listed

    def _tables(self) -> Iterator[pa.Table]:
        if self._records is not None:
            records = self._records[self._spellings]
            for start in range(0, len(records), self.chunk_rows):
                yield records.iloc[start:start + self.chunk_rows].reset_index(drop=True)
        elif _compression(self.path) == "parquet":
            yield from parquet_tables(self.path, self.uri, self._spellings, self.chunk_rows)
        else:
            yield from self._csv_tables()

    def _csv_tables(self) -> Iterator[pa.Table]:
        """The CSV's record batches; after a typed column is rejected, or text that is not UTF-8, the file is read
        again the other way and the rows already given are skipped."""
        typed = [c for c in self._spellings if c in _TYPED_AT_READ]
        encoding, given = "utf8", 0
        while True:
            skip = given
            try:
                for batch in self._csv_batches(typed, encoding):
                    if typed and any(pc.any(pc.is_nan(batch.column(c))).as_py() for c in typed):
                        raise _Rejected
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    batch, skip = batch.slice(skip), 0
                    given += batch.num_rows
                    yield batch
                return
            except _Rejected:
                typed = []
            except pa.ArrowInvalid as exc:
                if typed and "conversion error" in str(exc).lower():
                    typed = []
                elif encoding == "utf8" and "utf8" in str(exc).lower():
                    encoding = "latin-1"
                else:
                    raise _io_error(self.uri, exc) from None
            except READ_ERRORS as exc:
                raise _io_error(self.uri, exc) from None

    def _csv_batches(self, typed: list[str], encoding: str) -> Iterator[pa.RecordBatch]:
        tally = self.tally
        tally.malformed = 0        # counted again from the top of the file

        def on_invalid(row) -> str:
            text = (row.text or "").strip()
            if not ("," not in text and text[:1].isalpha()):   # a summary / separator line is not a data row
                tally.malformed += 1
            return "skip"

        read, parse, convert = csv_options(self._spellings, self._notice_lines, typed, on_invalid)
        read.encoding = encoding
        with _open(self.path, self.uri, progress=f"reading {Path(self.uri).name}") as stream:
            yield from pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)

    def _parse(self, table: pa.Table | pd.DataFrame) -> ParsedChunk:
        raw = table if isinstance(table, pd.DataFrame) else table.to_pandas(split_blocks=True)
        raw.columns = self._reading
        frame, masks = parse_columns(raw, self.uri, False, check_text=False, fractions=self._fractions)
        self._count(raw, masks)
        start, n = self.tally.rows, len(frame)
        self.tally.rows += n
        for column in self.filled:
            frame[column] = missing_column(column, n).to_numpy()
        frame["row"] = np.arange(start + 1, start + n + 1)
        if self.options.several:
            frame["source"] = self.uri
        if self.track_ids and self.has_id:
            ids = frame["id"]
            self.tally.ids_missing |= bool(ids.isna().any())
            if not self.tally.ids_missing:
                self.tally.id_hashes.append(id_keys(ids))
        listed = dropped_rows_listed(frame, masks, 0, self.uri)
        frame, dropped = drop_rows(frame, masks, keep_index=False)
        self.tally.dropped = sum_dropped([self.tally.dropped, dropped])
        return ParsedChunk(frame=frame, dropped_rows=listed)

    def _count(self, raw: pd.DataFrame, masks: dict[str, np.ndarray]) -> None:
        """Add the chunk's unparseable values to the tally (the whole-file checks of :meth:`finish`)."""
        tally = self.tally
        bad_columns = {r.removeprefix(REASON_UNPARSEABLE_PREFIX): m for r, m in masks.items()
                       if r.startswith(REASON_UNPARSEABLE_PREFIX)}
        if tally.only_text is None:
            tally.only_text = set(raw.columns)
        for column in list(tally.only_text):
            present = int(raw[column].notna().sum())
            bad = bad_columns.get(column)
            if present > (0 if bad is None else int(bad.sum())):
                tally.only_text.discard(column)
        for column, mask in bad_columns.items():
            tally.unparseable[column] = tally.unparseable.get(column, 0) + int(mask.sum())
            tally.examples.setdefault(column, raw.loc[mask, column].iloc[0])


def id_keys(ids: pd.Series) -> np.ndarray:
    """64-bit keys of present ids, equal for equal ids: a digit string's value and length (most ids; no hashing),
    any other id's hash (pandas), the top bit set."""
    text = pa.array(ids.to_numpy(dtype=object), type=pa.string())
    digits = pc.match_substring_regex(text, r"^[0-9]{1,17}$").to_numpy(zero_copy_only=False)
    keys = np.empty(len(text), dtype=np.uint64)
    if digits.any():
        plain = text.filter(pa.array(digits))
        keys[digits] = (pc.cast(plain, pa.int64()).to_numpy().astype(np.uint64) << np.uint64(5)) \
            | pc.utf8_length(plain).to_numpy().astype(np.uint64)
    if not digits.all():   # hashed from Arrow's strings: twice as fast as from Python objects, the same hashes
        other = pd.Series(pd.arrays.ArrowStringArray(text.filter(pa.array(~digits))))
        keys[~digits] = pd.util.hash_pandas_object(other, index=False).to_numpy() | np.uint64(1 << 63)
    return keys


class _Rejected(Exception):
    """A column read as float64 holds a value that the text parser reads otherwise (NaN)."""


def rechunk(tables: Iterator[pa.Table | pa.RecordBatch | pd.DataFrame], rows: int
            ) -> Iterator[pa.Table | pd.DataFrame]:
    """The tables' rows, in order, in tables of ``rows`` rows (fewer at the end, or where the types change);
    frames pass as they are."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        if isinstance(table, pd.DataFrame):
            yield table
            continue
        table = pa.Table.from_batches([table]) if isinstance(table, pa.RecordBatch) else table
        if pending and table.schema != pending[0].schema:    # read as text from here: a chunk of its own
            yield pa.concat_tables(pending)
            pending, held = [], 0
        pending.append(table)
        held += table.num_rows
        while held >= rows:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, rows)
            rest = whole.slice(rows)
            pending, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield pa.concat_tables(pending)


def _size(path: Path, uri: str) -> int:
    """The file's size; DataError naming ``uri`` when it cannot be read."""
    with file_errors(uri):
        return path.stat().st_size


def parquet_tables(path: Path, uri: str, columns: list[str], rows: int) -> Iterator[pa.Table]:
    """The ``columns`` of a Parquet file, typed as the CSV reader types them, ``rows`` rows at a time."""
    import pyarrow.parquet as pq

    _parquet_schema(path, uri)
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            yield typed_like_csv(pa.Table.from_batches([batch]), columns)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{uri}: not a readable Parquet file ({str(exc)[:120]})") from None
