"""JSON-lines files of raw loan records (one object per line; ``.jsonl``, ``.ndjson``, ``.json``, optionally
``.gz``): read into a frame of raw values that :func:`~training.data.frames.parse_columns` parses as it parses
a CSV's columns. Blank lines are skipped; the n-th record is row n."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.errors import DataError

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")


def is_json_lines_name(name: str) -> bool:
    """Whether a file or object name says JSON lines (by its suffix)."""
    return name.lower().endswith(JSON_LINES_SUFFIXES)


def read_json_lines(path: Path, uri: str) -> pd.DataFrame:
    """Every record of the file, values as written (no type inference); DataError naming ``uri``."""
    compression = "gzip" if uri.lower().endswith(".gz") else None
    try:
        raw = pd.read_json(path, lines=True, dtype=False, compression=compression)
    except (ValueError, OSError, EOFError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{uri}: not a JSON-lines file, one object per line ({first[:120]})") from None
    if raw.empty:
        raise DataError(f"{uri}: no records")
    raw.columns = [str(c) for c in raw.columns]
    return raw
