"""The files `predict` writes, by name only (standard library: the CLI checks them before heavy imports).

``predictions.csv`` (or ``.csv.gz``; Parquet when the name ends ``.parquet``) and, when rows were dropped,
``predictions.dropped.csv`` beside it: the output's name without its suffix, then ``.dropped.csv``.
"""
from __future__ import annotations

from pathlib import Path

from training.data.schema import PARQUET_SUFFIX

_KNOWN_SUFFIXES = (".csv.gz", ".csv", PARQUET_SUFFIX)


def is_parquet(output: str | Path) -> bool:
    """Whether predictions go to a Parquet file (by the name)."""
    return str(output).lower().endswith(PARQUET_SUFFIX)


def dropped_path(output: str | Path) -> Path:
    """Where the dropped rows of a prediction to ``output`` are listed: ``<output without suffix>.dropped.csv``."""
    output = Path(output)
    name = output.name
    for suffix in _KNOWN_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return output.with_name(name[:-len(suffix)] + ".dropped.csv")
    stem = output.stem if output.suffix else name
    return output.with_name(stem + ".dropped.csv")
