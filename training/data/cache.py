"""The parsed-data cache: a data file's parsed columns kept as Parquet, so a second read of the file is free.

An entry holds what parsing one file gave, before any row is dropped: the parsed columns (every data row), the
drop masks by reason, the malformed-row count, the columns read under another spelling and the needed columns
the file lacks. :func:`~training.data.loading.load_loans` builds the same :class:`~training.data.LoadedData`
from an entry as from the file (drops, row keys, limits): a hit is the cold read, without the reading and
parsing.

An entry is named by the file's sha256 and a key of :data:`PARSER_VERSION` and the columns asked for, so it is
not used when the file changes or when the parser does (bump :data:`PARSER_VERSION` with any change of what
parsing gives). Entries are written to a temporary file and renamed into place; an unreadable entry is ignored
with one line (and written again), an unusable directory means no cache, with one line. Parquet inputs are not
cached (their read is already columnar). Entries are never removed: delete ``<cache dir>/parsed`` to free the
space (about the parsed columns' size, a fifth to a half of the gzip CSV's for the usual feature sets).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from training.data.cache_dir import CacheSetting, active_cache
from training.data.reading import is_parquet

#: Bump with every change of what parsing a file gives (rules, dtypes, drop reasons): older entries are then
#: not used.
PARSER_VERSION = 1
ENTRIES = "parsed"     # the entries' folder in the cache directory
_META = b"spotgrade.parsed"
_MASK = "__spotgrade_drop_"
_KINDS = {"object", "float64", "datetime64[ns]"}   # the dtypes parsing gives (anything else is not cached)
_unusable: set[Path] = set()      # directories already reported as unusable (one line each per process)


@dataclass
class Parsed:
    """What parsing one file gave, before any row is dropped."""
    frame: pd.DataFrame               # parsed columns, every data row, default RangeIndex
    masks: dict[str, np.ndarray]      # drop reason -> rows it hits, in the parser's order
    malformed: int                    # rows skipped by the reader (wrong number of fields)
    spelled: dict[str, str]           # column name -> its other spelling in the file
    missing: list[str]                # needed columns the file lacks
    raw: pd.DataFrame | None = None   # the raw values (None from the cache)


def entry_key(wanted: list[str], extra: list[str], require_grade: bool) -> str:
    """The part of an entry's name besides the file's sha256: the parser version and the columns asked for."""
    text = json.dumps({"parser": PARSER_VERSION, "wanted": wanted, "extra": extra, "grade": require_grade})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def lookup(path: Path, uri: str, sha256: str, key: str) -> Parsed | None:
    """The cached parse of the file, or None (no cache in use, no entry, an unreadable one, a Parquet input)."""
    setting = active_cache()
    if setting is None:
        return None
    entry = _entry(setting, sha256, key)
    try:
        if not entry.is_file() or is_parquet(path):
            return None
        parsed = _read(entry, key)
    except Exception as exc:   # noqa: BLE001 - any unreadable entry is parsed again, never fatal
        setting.log(f"cache: ignoring the unreadable entry {entry} ({_short(exc)}); parsing {uri} again")
        return None
    setting.log(f"read {uri} (cached: {entry.parent})")
    return parsed


def store(path: Path, uri: str, sha256: str, key: str, parsed: Parsed) -> None:
    """Keep ``parsed`` as the file's entry (nothing without a cache in use, or for a Parquet input)."""
    setting = active_cache()
    if setting is None or setting.directory in _unusable or is_parquet(path):
        return
    table = _table(parsed, key)
    if table is None:
        return
    entry = _entry(setting, sha256, key)
    temporary = entry.with_name(f".{entry.name}.{secrets.token_hex(4)}.tmp")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, temporary, compression="lz4")   # reads about twice as fast as snappy here
        os.replace(temporary, entry)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        _unusable.add(setting.directory)
        setting.log(f"cache: cannot write in {setting.directory} ({_short(exc)}); reading without the cache "
                    "(set another --cache-dir, or --no-cache)")


def _entry(setting: CacheSetting, sha256: str, key: str) -> Path:
    return setting.directory / ENTRIES / f"{sha256}-{key}.parquet"


def _table(parsed: Parsed, key: str) -> pa.Table | None:
    """The entry's table: the columns, then one boolean column per drop reason; None where it cannot be kept
    exactly (a dtype parsing does not give, an index other than 0..n-1)."""
    frame = parsed.frame
    dtypes = {c: str(t) for c, t in frame.dtypes.items()}
    if (not all(t in _KINDS for t in dtypes.values()) or not frame.index.equals(pd.RangeIndex(len(frame)))
            or any(str(c).startswith(_MASK) for c in frame.columns) or frame.columns.duplicated().any()):
        return None
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None   # e.g. an object column of mixed values: not cached, read from the file each time
    reasons = list(parsed.masks)
    for i, reason in enumerate(reasons):
        table = table.append_column(f"{_MASK}{i}", pa.array(parsed.masks[reason], type=pa.bool_()))
    meta = {"parser": PARSER_VERSION, "key": key, "dtypes": dtypes, "reasons": reasons,
            "malformed": parsed.malformed, "spelled": parsed.spelled, "missing": parsed.missing}
    return table.replace_schema_metadata({_META: json.dumps(meta)})


def _read(entry: Path, key: str) -> Parsed:
    meta = json.loads(pq.read_schema(entry).metadata[_META])
    if meta["parser"] != PARSER_VERSION or meta["key"] != key:
        raise ValueError(f"written for parser {meta['parser']}, key {meta['key']}")
    dtypes: dict[str, str] = meta["dtypes"]
    texts = [c for c, t in dtypes.items() if t == "object"]
    table = pq.read_table(entry, read_dictionary=texts)
    index = pd.RangeIndex(table.num_rows)
    columns = {c: pd.Series(_column(table[c], t), index=index, dtype=t, copy=False) for c, t in dtypes.items()}
    frame = pd.DataFrame(columns, index=index, copy=False)
    masks = {r: table[f"{_MASK}{i}"].to_numpy(zero_copy_only=False).astype(bool)
             for i, r in enumerate(meta["reasons"])}
    return Parsed(frame, masks, int(meta["malformed"]), dict(meta["spelled"]), list(meta["missing"]))


def _column(chunked: pa.ChunkedArray, dtype: str) -> np.ndarray:
    """The column's values as parsing gave them: text as Python strings with NaN where missing (each distinct
    text one object), numbers as float64, dates as datetime64[ns]."""
    if pa.types.is_null(chunked.type):    # a column missing in every row
        return np.full(len(chunked), np.nan if dtype != "datetime64[ns]" else np.datetime64("NaT", "ns"), dtype=dtype)
    if dtype != "object":
        return chunked.to_numpy().astype(dtype, copy=False)
    codes = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    if not pa.types.is_dictionary(codes.type):
        codes = codes.dictionary_encode()
    texts = codes.dictionary.to_numpy(zero_copy_only=False).astype(object)
    indices = pc.fill_null(codes.indices, len(texts)).to_numpy()
    return np.append(texts, np.nan)[indices]


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]
