"""Find, open and parse raw LendingClub loan CSVs into a typed frame.

Sources: one path, a directory (its .csv/.csv.gz/.gz/.zip files), a glob, an ``s3://bucket/key`` object,
an ``s3://bucket/prefix/`` (or a glob under it), or a list of any of these. Files may be plain CSV,
gzip or a zip holding exactly one CSV (detected from the first bytes, not the name); a ``.jsonl``/``.ndjson``/
``.json`` (optionally ``.gz``) file holds one JSON record per line.

Modules, in the order the data goes through them: :mod:`~training.data.schema` (the raw columns and their
kinds), :mod:`~training.data.sources` (paths, globs, S3), :mod:`~training.data.reading` (decompression and
the Arrow CSV reader) or :mod:`~training.data.json_lines`, :mod:`~training.data.parsing` (what each spelling
means), then :mod:`~training.data.frames` (the batch parser) or :mod:`~training.data.records` (a few records), and
:mod:`~training.data.loading` (:func:`load_loans`: all of it for a list of files).
"""
from training.data.frames import parse_frame
from training.data.loading import LoadedData, MissingColumnsError, SourceFile, load_loans
from training.data.reading import read_table
from training.data.records import parse_records
from training.data.schema import (
    COLUMN_SPELLINGS,
    DATE_COLUMNS,
    EMP_LENGTHS,
    FRACTION_PERCENT_COLUMNS,
    GRADES,
    NUMERIC_COLUMNS,
    RAW_COLUMNS,
    TEXT_COLUMNS,
)
from training.data.sources import resolve_sources

__all__ = [
    "COLUMN_SPELLINGS", "DATE_COLUMNS", "EMP_LENGTHS", "FRACTION_PERCENT_COLUMNS", "GRADES", "NUMERIC_COLUMNS",
    "RAW_COLUMNS", "TEXT_COLUMNS", "LoadedData", "MissingColumnsError", "SourceFile", "load_loans", "parse_frame",
    "parse_records", "read_table", "resolve_sources",
]
