"""Load the needed columns of every data file into one parsed frame, counting the rows dropped and why.

Rows whose grade is missing or outside A-G, or with a value that cannot be parsed, are dropped and
counted by reason (the first reason of a row counts). A load fails with :class:`DataError` when the
dropped share exceeds ``max_bad_rows``, or when one column alone is unparseable in more than that
share of a file's rows (a numeric column full of text), or when every value of a column is text.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from training.checksums import sha256_file
from training.data.frames import drop_rows, parse_columns
from training.data.reading import read_header, read_table
from training.data.schema import REASON_MALFORMED, REASON_UNPARSEABLE_PREFIX
from training.data.sources import fetch, resolve_sources
from training.errors import DataError


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


def load_loans(data: str | Path | Sequence[str | Path], columns: Iterable[str], *,
               require_grade: bool = True, max_bad_rows: float = 0.01) -> LoadedData:
    """Read and parse the needed ``columns`` (plus ``grade`` when required) of every source file."""
    if not 0.0 <= max_bad_rows <= 1.0:
        raise DataError(f"max_bad_rows must be a share between 0 and 1, got {max_bad_rows}")
    wanted = list(dict.fromkeys(columns))
    if require_grade and "grade" not in wanted:
        wanted.append("grade")
    uris = resolve_sources(data)
    frames, files, dropped = [], [], {}
    with tempfile.TemporaryDirectory(prefix="spotgrade-data-") as tmp:
        for uri in uris:
            local = fetch(uri, Path(tmp)) if uri.startswith("s3://") else Path(uri)
            frame, source, file_dropped = _load_file(local, uri, wanted, require_grade, max_bad_rows)
            frames.append(frame)
            files.append(source)
            for reason, n in file_dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
    rows_read = sum(f.rows for f in files)
    bad = sum(dropped.values())
    if rows_read and bad / rows_read > max_bad_rows:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        raise DataError(f"{_names(uris)}: {bad} of {rows_read} rows ({bad / rows_read:.1%}) are unusable "
                        f"({reasons}), more than the limit of {max_bad_rows:.1%}; fix the data or raise "
                        f"--max-bad-rows")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # the raw tables are gone: hand arrow's freed blocks back to the OS, or they stay in the process for
    # the whole run
    pa.default_memory_pool().release_unused()
    return LoadedData(frame=frame, files=files, dropped=dropped, rows_read=rows_read)


def _load_file(path: Path, uri: str, wanted: list[str], require_grade: bool,
               max_bad_rows: float) -> tuple[pd.DataFrame, SourceFile, dict[str, int]]:
    sha, size = _digest(path, uri)
    if size == 0:
        raise DataError(f"{uri}: file is empty")
    header, notice_lines = read_header(path, uri)
    missing = [c for c in wanted if c not in header]
    if require_grade and "grade" in missing:
        raise DataError(f"{uri}: no 'grade' column (the label); is this a LendingClub loan file?")
    if missing:
        raise DataError(f"{uri}: missing columns needed by the feature set: {', '.join(missing)}")
    table, malformed = read_table(path, uri, wanted, notice_lines)
    rows = table.num_rows + malformed
    if rows == 0:
        raise DataError(f"{uri}: has a header but no data rows")
    raw = table.to_pandas(split_blocks=True)   # one block per column: no 2-D stacking copy
    frame, masks = parse_columns(raw, uri, require_grade)
    _check_column_shares(raw, masks, uri, max_bad_rows)
    frame, dropped = drop_rows(frame, masks, keep_index=False)
    if malformed:
        dropped[REASON_MALFORMED] = malformed
    return frame, SourceFile(uri=uri, sha256=sha, bytes=size, rows=rows), dropped


def _check_column_shares(raw: pd.DataFrame, masks: dict, uri: str, max_bad_rows: float) -> None:
    """DataError when one column alone is unparseable in more than ``max_bad_rows`` of the rows."""
    n = len(raw)
    for reason, mask in masks.items():
        count = int(mask.sum())
        if reason.startswith(REASON_UNPARSEABLE_PREFIX) and count > max_bad_rows * n:
            column = reason.removeprefix(REASON_UNPARSEABLE_PREFIX)
            example = raw.loc[mask, column].iloc[0]
            raise DataError(f"{uri}: column {column!r} has {count} of {n} values that are not numbers/dates "
                            f"(e.g. {str(example)[:40]!r}); check that the column holds what its name says")


def _names(uris: list[str]) -> str:
    return uris[0] if len(uris) == 1 else f"{uris[0]} (+{len(uris) - 1} more files)"


def _digest(path: Path, uri: str) -> tuple[str, int]:
    """The file's sha256 and size; DataError naming ``uri`` when it cannot be read."""
    try:
        return sha256_file(path), path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{uri}: file not found") from None
    except OSError as exc:
        raise DataError(f"{uri}: cannot read the file ({exc.strerror or exc})") from None
