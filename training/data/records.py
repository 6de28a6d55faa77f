"""The record parser: a few raw records (dicts) to the frame :func:`parse_frame` gives, without its per-column cost.

:func:`~training.data.frames.parse_frame` runs several pandas/Arrow operations per column, which dominate the
time of predicting one record. Here a value is turned into its text in plain Python (what pandas would make
of it: a stripped string, a number, or missing), and the kind's rule of :mod:`training.data.parsing` is
applied to those texts; the numbers of all columns go through Arrow in one call. A column with a value whose
text pandas could spell differently (a number in a text column, a bool, Unicode blanks at the edges, an
infinity), a number column with a text Arrow cannot read, ``grade`` and columns unknown to the schema go
through :func:`~training.data.frames.parse_columns` itself, so values, dtypes, drops and errors are the same
either way.
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from training.data.frames import drop_rows, parse_columns, parse_frame
from training.data.parsing import RULES, Rule, as_percent, parse_numbers, spread, unparseable_mask
from training.data.schema import column_kind, spelled_columns, unparseable_reason
from training.errors import DataError

#: Up to this many records, :func:`parse_records` parses value by value; above it :func:`parse_frame` is faster.
SMALL_RECORDS = 64
_NUMBER_KINDS = ("number", "percent")
_PLAIN_KINDS = ("text", *_NUMBER_KINDS, *RULES)
_DEFER = object()            # a value whose text is left to the batch parser


def parse_records(records: Sequence[dict], columns: Sequence[str], *,
                  source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """``parse_frame(pd.DataFrame(records)[columns], source=source)``, fast for a few records.

    A column the records spell another way (:func:`~training.data.schema.spelled_columns`) is read under that
    spelling; a column missing from every record is a DataError.
    """
    columns = list(dict.fromkeys(columns))
    keys = dict.fromkeys(k for r in records for k in r)
    spelled = spelled_columns(keys, columns)
    missing = [c for c in columns if c not in keys and c not in spelled]
    if missing:
        raise DataError(f"{source}: records lack columns: {', '.join(missing)}")
    if spelled:
        records = [{**r, **{name: r[spelling] for name, spelling in spelled.items() if spelling in r}}
                   for r in records]
    if len(records) > SMALL_RECORDS or not records:
        return parse_frame(pd.DataFrame(list(records), columns=columns), source=source)
    raw = {c: [r.get(c) for r in records] for c in columns}
    parsed = _parse_plain(raw)
    out: dict[str, object] = {}
    masks: dict[str, np.ndarray] = {}
    for column in columns:           # in order, so that the first column that fails is the one named
        if column not in parsed:
            frame, column_masks = parse_columns(pd.DataFrame([{column: r.get(column)} for r in records],
                                                             columns=[column]), source, require_grade=False)
            out[column] = frame[column]
            masks.update(column_masks)
            continue
        out[column], bad = parsed[column]
        if bad.any():
            raw_values = pd.Series(raw[column], dtype=object)
            masks[unparseable_reason(column)] = unparseable_mask(column, bad, raw_values, source)
    index = pd.RangeIndex(len(records))
    frame = pd.DataFrame({c: pd.Series(out[c], index=index, dtype=object)   # object, as parse_frame's text
                          if isinstance(out[c], np.ndarray) and out[c].dtype == object else out[c]
                          for c in columns}, index=index)
    return drop_rows(frame, masks, keep_index=False)


def _parse_plain(raw: dict[str, list]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(values, bad) of the columns whose values all have a plain text (see the module docstring)."""
    kinds = {c: column_kind(c) for c in raw}
    cells = {c: _cells(values, numbers=kinds[c] in _NUMBER_KINDS) for c, values in raw.items()
             if kinds[c] in _PLAIN_KINDS}
    cells = {c: v for c, v in cells.items() if v is not None}
    numbers = {c: v for c, v in cells.items() if kinds[c] in _NUMBER_KINDS}
    parsed = _parse_numbers(numbers, percent={c for c in numbers if kinds[c] == "percent"})
    for column, column_cells in cells.items():
        if kinds[column] == "text":
            parsed[column] = (np.array([np.nan if t is None else t for t in column_cells], dtype=object),
                              np.zeros(len(column_cells), dtype=bool))
        elif kinds[column] in RULES:
            parsed[column] = _apply(RULES[kinds[column]][0], column_cells)
    return parsed


def _cells(values: list, *, numbers: bool) -> list | None:
    """The values as parse_frame would see them (stripped text, float, None: missing); None to defer."""
    cells = [_cell(v, numbers) for v in values]
    return None if any(c is _DEFER for c in cells) else cells


def _cell(value: object, numbers: bool) -> object:
    """Stripped text, a finite number (in number columns), None (missing), or _DEFER."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if value.strip(" \t\r\n") != text:
            return _DEFER                    # other (Unicode) blanks at the edges: left to pandas/arrow
        return text or None
    if isinstance(value, float):
        if value != value:
            return None
        return value if numbers and abs(value) < float("inf") else _DEFER
    if numbers and isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2 ** 53:
        return float(value)
    return _DEFER


def _apply(rule: Rule, cells: list) -> tuple[np.ndarray, np.ndarray]:
    """A rule of training.data.parsing applied to the distinct texts of a column's cells."""
    codes: dict[str, int] = {}
    positions = np.array([-1 if t is None else codes.setdefault(t, len(codes)) for t in cells], dtype=np.intp)
    values, bad = rule(list(codes))
    return spread(values, bad, positions)


def _parse_numbers(cells: dict[str, list], percent: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Number columns' values and bad flags, their texts parsed in one call; a column Arrow rejects is left out."""
    try:
        return _numbers_together(cells, percent)
    except pa.ArrowInvalid:
        out = {}
        for column, column_cells in cells.items():
            with contextlib.suppress(pa.ArrowInvalid):
                out.update(_numbers_together({column: column_cells}, percent))
        return out


def _numbers_together(cells: dict[str, list], percent: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The columns' texts as one Arrow array through parse_numbers; numbers and missing values as they are."""
    flat = [t for column_cells in cells.values() for t in column_cells]
    at_text = np.array([isinstance(t, str) for t in flat], dtype=bool)
    values = np.array([t if isinstance(t, float) else np.nan for t in flat], dtype="float64")
    bad, signed = np.zeros(len(flat), dtype=bool), np.zeros(len(flat), dtype=bool)
    if at_text.any():
        texts = pa.array([t for t in flat if isinstance(t, str)], type=pa.string())
        values[at_text], bad[at_text], signed[at_text] = parse_numbers(texts, fallback=False)
    shape = (len(cells), len(flat) // max(len(cells), 1))
    values, bad, signed = values.reshape(shape), bad.reshape(shape), signed.reshape(shape)
    out = {}
    for i, column in enumerate(cells):
        column_values = as_percent(values[i], bool(signed[i].any())) if column in percent else values[i]
        out[column] = (column_values, bad[i])
    return out
