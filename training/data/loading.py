"""Load the needed columns of every data file into one parsed frame, counting the rows dropped and why.

Rows whose grade is missing or outside A-G, or with a value that cannot be parsed, are dropped and
counted by reason (the first reason of a row counts). A load fails with :class:`DataError` when the
dropped share exceeds ``max_bad_rows``, or when one column alone is unparseable in more than that
share of a file's rows (a numeric column full of text), or when every value of a column is text.

A needed column that a file spells another way (:data:`~training.data.schema.COLUMN_SPELLINGS`, or other
letter case) is read under that spelling and renamed. A needed column the file lacks is a
:class:`MissingColumnsError`, or with ``fill_missing`` a column of blanks (missing in every row); with
``union_columns`` only a column that every file lacks is an error, and one that some files lack is missing in
their rows (:attr:`LoadedData.absent`). ``optional`` columns are read from the files that have them.
``drop_repeated_ids`` drops the rows whose ``id`` repeats an earlier row's (the same loan in several files).

With ``track_rows`` every row is named by keys (:attr:`LoadedData.keys`): ``id`` when every file has an
``id`` column whose values are present and unique, else ``row``, the 1-based number of the row among the
file's data rows (or of the record in a JSON-lines file), and ``source`` (the file's URI) when several
files are read; the dropped rows are listed with their keys and reason (:attr:`LoadedData.dropped_rows`).
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from training.checksums import sha256_file
from training.data import cache
from training.data.frames import drop_rows, first_reasons, missing_column, parse_columns
from training.data.json_lines import is_json_lines_name, read_json_lines
from training.data.parsing import unparseable_share_error
from training.data.reading import read_header, read_table
from training.data.schema import REASON_MALFORMED, REASON_UNPARSEABLE_PREFIX, spelled_columns
from training.data.sources import fetch, resolve_sources
from training.errors import DataError

ROW_KEYS = ("source", "id", "row")


class MissingColumnsError(DataError):
    """A data file lacks columns that are needed (under every known spelling)."""

    def __init__(self, uri: str, columns: Sequence[str]):
        super().__init__(f"{uri}: missing columns needed by the feature set: {', '.join(columns)}")
        self.uri, self.columns = uri, list(columns)


@dataclass(frozen=True)
class SourceFile:
    uri: str          # as given (local path or s3://bucket/key)
    sha256: str
    bytes: int
    rows: int         # data rows read (before dropping)


@dataclass
class LoadedData:
    frame: pd.DataFrame                    # parsed columns, default RangeIndex
    files: list[SourceFile]
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> rows dropped
    rows_read: int = 0
    keys: list[str] = field(default_factory=list)           # track_rows: the frame's columns naming each row
    dropped_rows: pd.DataFrame | None = None                # track_rows: keys + "reason", one row per dropped row
    notes: list[str] = field(default_factory=list)          # track_rows: why rows are not named by their id
    spellings: dict[str, dict[str, str]] = field(default_factory=dict)   # uri -> {spelling in it: column name}
    absent: dict[str, list[str]] = field(default_factory=dict)   # uri -> needed columns it lacks (fill_missing)
    repeated_ids: int = 0                  # rows dropped by drop_repeated_ids

    @property
    def renamed(self) -> dict[str, str]:
        """Every file's spelling -> column name."""
        return {k: v for names in self.spellings.values() for k, v in names.items()}

    @property
    def filled(self) -> dict[str, list[str]]:
        """Each column filled as missing in every row -> the files that lack it, by column name."""
        out: dict[str, list[str]] = {}
        for uri, columns in self.absent.items():
            for column in columns:
                out.setdefault(column, []).append(uri)
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class LoadOptions:
    """How one file is read and checked: shared by load_loans and the streamed reader (data/streaming.py)."""

    wanted: list[str]
    require_grade: bool
    max_bad_rows: float
    fill_missing: bool
    track_rows: bool
    several: bool
    union_columns: bool = False
    optional: tuple[str, ...] = ()


def check_max_bad_rows(max_bad_rows: float) -> None:
    """DataError unless ``max_bad_rows`` is a share between 0 and 1."""
    if not 0.0 <= max_bad_rows <= 1.0:
        raise DataError(f"max_bad_rows must be a share between 0 and 1, got {max_bad_rows}")


def load_loans(data: str | Path | Sequence[str | Path], columns: Iterable[str], *,
               require_grade: bool = True, max_bad_rows: float = 0.01, fill_missing: bool = False,
               track_rows: bool = False, union_columns: bool = False, optional: Iterable[str] = ()) -> LoadedData:
    """Read and parse the needed ``columns`` (plus ``grade`` when required, and the ``optional`` columns where a
    file has them) of every source file."""
    check_max_bad_rows(max_bad_rows)
    wanted = list(dict.fromkeys(columns))
    if require_grade and "grade" not in wanted:
        wanted.append("grade")
    uris = resolve_sources(data)
    options = LoadOptions(wanted, require_grade, max_bad_rows, fill_missing, track_rows, len(uris) > 1,
                          union_columns, tuple(c for c in optional if c not in wanted))
    frames, files, drops, dropped_rows, spellings, absent = [], [], [], [], {}, {}
    with tempfile.TemporaryDirectory(prefix="spotgrade-data-") as tmp:
        for uri in uris:
            local = fetch(uri, Path(tmp)) if uri.startswith("s3://") else Path(uri)
            file = _load_file(local, uri, options)
            frames.append(file.frame)
            files.append(file.source)
            dropped_rows.append(file.dropped_rows)
            drops.append(file.dropped)
            spellings.update({uri: file.renamed} if file.renamed else {})
            absent.update({uri: file.filled} if file.filled else {})
    if union_columns and not fill_missing:
        _check_absent_everywhere(uris, wanted, absent)
    rows_read, dropped = sum(f.rows for f in files), sum_dropped(drops)
    check_dropped_share(uris, dropped, rows_read, max_bad_rows)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # the raw tables are gone: hand arrow's freed blocks back to the OS, or they stay in the process for
    # the whole run
    pa.default_memory_pool().release_unused()
    loaded = LoadedData(frame=frame, files=files, dropped=dropped, rows_read=rows_read, spellings=spellings,
                        absent=absent)
    if track_rows:
        _name_rows(loaded, pd.concat(dropped_rows, ignore_index=True), keep_id="id" in wanted)
    return loaded


def _check_absent_everywhere(uris: list[str], wanted: list[str], absent: dict[str, list[str]]) -> None:
    """MissingColumnsError for the needed columns that no file has (``union_columns``)."""
    everywhere = [c for c in wanted if all(c in absent.get(uri, ()) for uri in uris)]
    if everywhere:
        raise MissingColumnsError(_names(uris), everywhere)


def drop_repeated_ids(loaded: LoadedData) -> int:
    """Drop the rows whose ``id`` repeats an earlier row's (the same loan in several files), keeping the first;
    their count, also in ``loaded.repeated_ids``. Rows without an id are kept."""
    if "id" not in loaded.frame.columns:
        return 0
    ids = loaded.frame["id"]
    repeated = (ids.notna() & ids.duplicated()).to_numpy()
    loaded.repeated_ids = int(repeated.sum())
    if loaded.repeated_ids:
        loaded.frame = loaded.frame.loc[~repeated].reset_index(drop=True)
    return loaded.repeated_ids


def sum_dropped(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Rows dropped per reason, summed over files (in the order the reasons first appear)."""
    total: dict[str, int] = {}
    for per_file in counts:
        for reason, n in per_file.items():
            total[reason] = total.get(reason, 0) + n
    return total


def check_dropped_share(uris: list[str], dropped: dict[str, int], rows_read: int, max_bad_rows: float) -> None:
    """DataError when the rows dropped, over all ``uris``, are more than ``max_bad_rows`` of those read."""
    bad = sum(dropped.values())
    if rows_read and bad / rows_read > max_bad_rows:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        raise DataError(f"{_names(uris)}: {bad} of {rows_read} rows ({bad / rows_read:.1%}) are unusable "
                        f"({reasons}), more than the limit of {max_bad_rows:.1%}; fix the data or raise "
                        f"--max-bad-rows")


@dataclass
class _File:
    frame: pd.DataFrame
    source: SourceFile
    dropped: dict[str, int]
    dropped_rows: pd.DataFrame | None
    renamed: dict[str, str]      # spelling in the file -> column name
    filled: list[str]            # needed columns the file lacks


def _load_file(path: Path, uri: str, options: LoadOptions) -> _File:
    sha, size = _digest(path, uri)
    if size == 0:
        raise DataError(f"{uri}: file is empty")
    extra = [*options.optional, *(["id"] if options.track_rows and "id" not in options.wanted else [])]
    extra = list(dict.fromkeys(extra))
    request = cache.Request(tuple(options.wanted), tuple(extra), options.require_grade)
    parsed = cache.lookup(path, uri, sha, request)
    if parsed is not None:
        check_missing(uri, parsed.missing, options)
    if parsed is None or not _shares_within(parsed, options.max_bad_rows):   # (the file names the bad values)
        parsed = _parse_file(path, uri, options, extra)
        cache.store(path, uri, sha, request, parsed)
        _check_column_shares(parsed.raw, parsed.masks, uri, options.max_bad_rows)
    frame, masks, malformed, missing = parsed.frame, parsed.masks, parsed.malformed, parsed.missing
    rows = len(frame) + malformed
    for column in missing:
        frame[column] = missing_column(column, len(frame)).to_numpy()
    rows_dropped = None
    if options.track_rows:
        frame["row"] = np.arange(1, len(frame) + 1)
        if options.several:
            frame["source"] = uri
        rows_dropped = dropped_rows_listed(frame, masks, malformed, uri)
    frame, dropped = drop_rows(frame, masks, keep_index=False)
    if malformed:
        dropped[REASON_MALFORMED] = malformed
    return _File(frame, SourceFile(uri=uri, sha256=sha, bytes=size, rows=rows), dropped, rows_dropped,
                 renamed={spelling: name for name, spelling in parsed.spelled.items()}, filled=missing)


def _parse_file(path: Path, uri: str, options: LoadOptions, extra: list[str]) -> cache.Parsed:
    """Read the needed (and ``extra``) columns of the file and parse them, no row dropped yet."""
    header, read = _reader(path, uri)
    spelled = spelled_columns(header, options.wanted + extra)
    present = set(header) | set(spelled)
    missing = [c for c in options.wanted if c not in present]
    check_missing(uri, missing, options)
    reading = [c for c in options.wanted + extra if c in present]
    raw, malformed = read([spelled.get(c, c) for c in reading])
    raw = raw.rename(columns={spelling: name for name, spelling in spelled.items()})
    if len(raw) + malformed == 0:
        raise DataError(f"{uri}: has a header but no data rows")
    frame, masks = parse_columns(raw, uri, options.require_grade)
    return cache.Parsed(frame, masks, malformed, spelled, missing, raw)


def _reader(path: Path, uri: str) -> tuple[list[str], Callable[[list[str]], tuple[pd.DataFrame, int]]]:
    """The file's column names, and a function reading some of them as raw values (frame, malformed rows)."""
    if is_json_lines_name(uri):
        records = read_json_lines(path, uri)
        return list(records.columns), lambda columns: (records[columns], 0)
    header, notice_lines = read_header(path, uri)

    def read(columns: list[str]) -> tuple[pd.DataFrame, int]:
        table, malformed = read_table(path, uri, columns, notice_lines)
        return table.to_pandas(split_blocks=True), malformed   # one block per column: no 2-D stacking copy

    return header, read


def check_missing(uri: str, missing: list[str], options: LoadOptions) -> None:
    """DataError when the file lacks ``grade`` (where required) or needed columns the options do not fill."""
    if options.require_grade and "grade" in missing:
        raise DataError(f"{uri}: no 'grade' column (the label); is this a LendingClub loan file?")
    if missing and not (options.fill_missing or options.union_columns):
        raise MissingColumnsError(uri, missing)
    if missing and len(missing) == len(options.wanted) - options.require_grade:
        raise DataError(f"{uri}: has none of the needed columns ({', '.join(missing[:5])}, ...); "
                        f"is this a LendingClub loan file?")


def dropped_rows_listed(frame: pd.DataFrame, masks: dict[str, np.ndarray], malformed: int, uri: str) -> pd.DataFrame:
    """The keys and first reason of each row that is dropped (malformed rows: no id or row number known)."""
    keys = [c for c in ROW_KEYS if c in frame.columns]
    firsts = first_reasons(masks, len(frame))
    parts = [frame.loc[mask, keys].assign(reason=reason) for reason, mask in firsts.items()]
    listed = pd.concat(parts).sort_index() if parts else pd.DataFrame(columns=[*keys, "reason"])
    if malformed:
        unknown = pd.DataFrame({"reason": [REASON_MALFORMED] * malformed})
        if "source" in keys:
            unknown["source"] = uri
        listed = pd.concat([listed, unknown], ignore_index=True)
    return listed


def _name_rows(loaded: LoadedData, dropped_rows: pd.DataFrame, *, keep_id: bool) -> None:
    """Choose the keys (id, or row numbers) and keep only them in the frame and the dropped rows."""
    several = len(loaded.files) > 1
    frame = loaded.frame
    keys = ["source"] if several else []
    keys.append("id" if _ids_name_rows(frame, dropped_rows, keys) else "row")
    if "row" in keys and "id" in frame.columns:
        loaded.notes.append("rows are named by their row number: the id column is absent, blank or repeated "
                            "in some rows")
    unused = [c for c in ("id", "row") if c not in keys and not (c == "id" and keep_id)]
    loaded.frame = frame.drop(columns=[c for c in unused if c in frame.columns])
    dropped_rows = dropped_rows.reindex(columns=[*keys, "reason"])
    if "row" in keys:
        dropped_rows["row"] = dropped_rows["row"].astype("Int64")
    loaded.dropped_rows = dropped_rows.reset_index(drop=True)
    loaded.keys = keys


def _ids_name_rows(frame: pd.DataFrame, dropped_rows: pd.DataFrame, keys: list[str]) -> bool:
    """Whether every file has ids, present and unique (within a source), for its rows (malformed rows aside)."""
    if "id" not in frame.columns:
        return False
    listed = dropped_rows.loc[dropped_rows["reason"] != REASON_MALFORMED]
    named = pd.concat([frame[[*keys, "id"]], listed.reindex(columns=[*keys, "id"])], ignore_index=True)
    return not named["id"].isna().any() and not named.duplicated().any()


def _shares_within(parsed: cache.Parsed, max_bad_rows: float) -> bool:
    """Whether no column alone is unparseable in more than ``max_bad_rows`` of the rows (_check_column_shares)."""
    return not any(reason.startswith(REASON_UNPARSEABLE_PREFIX) and int(mask.sum()) > max_bad_rows * len(mask)
                   for reason, mask in parsed.masks.items())


def _check_column_shares(raw: pd.DataFrame, masks: dict, uri: str, max_bad_rows: float) -> None:
    """DataError when one column alone is unparseable in more than ``max_bad_rows`` of the rows."""
    n = len(raw)
    for reason, mask in masks.items():
        count = int(mask.sum())
        if reason.startswith(REASON_UNPARSEABLE_PREFIX) and count > max_bad_rows * n:
            column = reason.removeprefix(REASON_UNPARSEABLE_PREFIX)
            raise unparseable_share_error(uri, column, count, n, raw.loc[mask, column].iloc[0])


def _names(uris: list[str]) -> str:
    return uris[0] if len(uris) == 1 else f"{uris[0]} (+{len(uris) - 1} more files)"


def _digest(path: Path, uri: str) -> tuple[str, int]:
    """The file's sha256 and size; DataError naming ``uri`` when it cannot be read."""
    with file_errors(uri):
        return sha256_file(path), path.stat().st_size


@contextmanager
def file_errors(uri: str) -> Iterator[None]:
    """OSError inside as one DataError line naming ``uri``: not found, or cannot be read and why."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{uri}: file not found") from None
    except OSError as exc:
        raise DataError(f"{uri}: cannot read the file ({exc.strerror or exc})") from None
