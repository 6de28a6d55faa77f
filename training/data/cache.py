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
space (an entry is about the parsed columns' size: 7 MB per 100k rows of the 48 ``reference`` columns).
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
from training.data.schema import REASON_GRADE_INVALID, REASON_GRADE_MISSING, unparseable_reason

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


@dataclass(frozen=True)
class Request:
    """The columns a load asks of a file: ``wanted`` (a missing one is noted), ``extra`` (read where present)."""
    wanted: tuple[str, ...]
    extra: tuple[str, ...]
    require_grade: bool

    @property
    def key(self) -> str:
        """The part of an entry's name besides the file's sha256: the parser version and the columns asked for."""
        text = json.dumps({"parser": PARSER_VERSION, "wanted": self.wanted, "extra": self.extra,
                           "grade": self.require_grade})
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def lookup(path: Path, uri: str, sha256: str, request: Request) -> Parsed | None:
    """The cached parse of the file for ``request``, or None (no cache in use, no entry that serves it, a Parquet
    input). The entry of this very request, else any entry of the file that asked for every column asked here
    (and, where grades are required, required them): train's entry serves evaluate's and predict's reads."""
    setting = active_cache()
    if setting is None:
        return None
    exact = _entry(setting, sha256, request.key)
    try:
        others = sorted(p for p in exact.parent.glob(f"{sha256}-*.parquet") if p != exact)
        entries = [e for e in (exact, *others) if e.is_file()]
        if not entries or is_parquet(path):
            return None
    except OSError:
        return None
    for entry in entries:
        try:
            meta = _meta(entry)
            if not _serves(meta, request):
                continue
            parsed = _read(entry, meta, request)
        except Exception as exc:   # noqa: BLE001 - any unreadable entry is parsed again, never fatal
            setting.log(f"cache: ignoring the unreadable entry {entry} ({_short(exc)}); parsing {uri} again")
            continue
        setting.log(f"read {uri} (cached: {entry.parent})")
        return parsed
    return None


def store(path: Path, uri: str, sha256: str, request: Request, parsed: Parsed) -> None:
    """Keep ``parsed`` as the file's entry for ``request`` (nothing without a cache in use, or for a Parquet
    input)."""
    setting = active_cache()
    if setting is None or setting.directory in _unusable or is_parquet(path):
        return
    table = _table(parsed, request)
    if table is None:
        return
    entry = _entry(setting, sha256, request.key)
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


def _table(parsed: Parsed, request: Request) -> pa.Table | None:
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
    meta = {"parser": PARSER_VERSION, "asked": [*request.wanted, *request.extra], "grade": request.require_grade,
            "dtypes": dtypes, "reasons": reasons, "malformed": parsed.malformed, "spelled": parsed.spelled}
    return table.replace_schema_metadata({_META: json.dumps(meta)})


def _meta(entry: Path) -> dict:
    return json.loads(pq.read_schema(entry).metadata[_META])


def _serves(meta: dict, request: Request) -> bool:
    """Whether the entry asked for every column of ``request`` (and required grades where it does)."""
    return (meta["parser"] == PARSER_VERSION and (meta["grade"] or not request.require_grade)
            and set(request.wanted + request.extra) <= set(meta["asked"]))


def _read(entry: Path, meta: dict, request: Request) -> Parsed:
    """What parsing the file for ``request`` gives, from an entry that serves it: its columns in the order asked,
    their drop masks in the parser's order (a column's in its place, grade's where grades are required)."""
    dtypes: dict[str, str] = meta["dtypes"]
    reading = [c for c in (*request.wanted, *request.extra) if c in dtypes]
    order = [r for c in reading for r in ((REASON_GRADE_MISSING, REASON_GRADE_INVALID) if c == "grade" else
                                          (unparseable_reason(c),))
             if c != "grade" or request.require_grade]
    masks_at = {r: f"{_MASK}{i}" for i, r in enumerate(meta["reasons"])}
    reasons = [r for r in order if r in masks_at]
    table = pq.read_table(entry, columns=[*reading, *(masks_at[r] for r in reasons)],
                          read_dictionary=[c for c in reading if dtypes[c] == "object"])
    index = pd.RangeIndex(table.num_rows)
    columns = {c: pd.Series(_column(table[c], dtypes[c]), index=index, dtype=dtypes[c], copy=False)
               for c in reading}
    frame = pd.DataFrame(columns, index=index, copy=False)
    masks = {r: table[masks_at[r]].to_numpy(zero_copy_only=False).astype(bool) for r in reasons}
    spelled = {c: s for c, s in meta["spelled"].items() if c in reading}
    missing = [c for c in request.wanted if c not in dtypes]
    return Parsed(frame, masks, int(meta["malformed"]), spelled, missing)


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
