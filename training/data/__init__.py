"""Find, open and parse raw LendingClub loan CSVs into a typed frame.

Sources: one path, a directory (its .csv/.csv.gz/.gz/.zip files), a glob, an ``s3://bucket/key`` object,
an ``s3://bucket/prefix/`` (or a glob under it), or a list of any of these. Files may be plain CSV,
gzip or a zip holding exactly one CSV (detected from the first bytes, not the name); a ``.jsonl``/``.ndjson``/
``.json`` (optionally ``.gz``) file holds one JSON record per line.

Modules, in the order the data goes through them: :mod:`~training.data.schema` (the raw columns and their
kinds), :mod:`~training.data.sources` (paths, globs, S3), :mod:`~training.data.reading` (decompression and
the Arrow CSV reader) or :mod:`~training.data.json_lines`, :mod:`~training.data.parsing` (what each spelling
means), then :mod:`~training.data.frames` (the batch parser) or :mod:`~training.data.records` (a few records), and
:mod:`~training.data.loading` (:func:`load_loans`: all of it for a list of files) or :mod:`~training.data.streaming`
(one file in chunks, for `predict`).
"""
from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module that owns it. Imported on first use (PEP 562), so that the standard-library parts
# (schema, sources) serve the CLI's path checks without pandas or pyarrow being imported.
_OWNERS = {
    "parse_frame": "frames",
    "LoadedData": "loading", "MissingColumnsError": "loading", "SourceFile": "loading", "load_loans": "loading",
    "read_table": "reading",
    "parse_records": "records",
    "resolve_sources": "sources",
    **{name: "schema" for name in ("COLUMN_SPELLINGS", "DATE_COLUMNS", "EMP_LENGTHS", "FRACTION_PERCENT_COLUMNS",
                                   "GRADES", "NUMERIC_COLUMNS", "RAW_COLUMNS", "TEXT_COLUMNS")},
}
__all__ = sorted(_OWNERS)


def __getattr__(name: str) -> Any:
    if name not in _OWNERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_OWNERS[name]}"), name)
