"""The batch parser: a frame of raw values (read from a file, or records) to typed columns, bad rows dropped.

Each column is parsed by the rule of its kind (:func:`~training.data.schema.column_kind`,
:mod:`training.data.parsing`), applied once per distinct value; numbers are parsed by Arrow over the whole
column, or passed through when the reader already typed them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from training.data.parsing import (
    RULES,
    Rule,
    as_percent,
    parse_numbers,
    reads_as_fractions,
    spread,
    unparseable_mask,
)
from training.data.schema import GRADES, REASON_GRADE_INVALID, REASON_GRADE_MISSING, column_kind, unparseable_reason
from training.errors import DataError


def parse_frame(raw: pd.DataFrame, *, source: str, require_grade: bool = False,
                keep_index: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parse an already-read frame of raw text/numbers (e.g. JSON-lines records at predict time).

    Rows with unparseable values (or, with ``require_grade``, a missing/invalid grade) are dropped and
    counted by reason. Without ``require_grade`` an invalid grade becomes NaN instead. ``keep_index``
    keeps the original index labels of the kept rows (to align results with the input).
    """
    if require_grade and "grade" not in raw.columns:
        raise DataError(f"{source}: no 'grade' column (the label)")
    frame, masks = parse_columns(raw, source, require_grade)
    return drop_rows(frame, masks, keep_index=keep_index)


def parse_columns(raw: pd.DataFrame, source: str, require_grade: bool, *, check_text: bool = True,
                  fractions: dict[str, bool] | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Parsed columns and, per drop reason, a boolean mask of the rows it hits.

    For the chunks of one file (training.data.streaming): ``check_text=False`` leaves the check that a column is
    not all text to the caller, and ``fractions`` carries each percent column's fraction decision (made on the
    first chunk that has values, recorded in the dict, applied to the later chunks)."""
    out: dict[str, object] = {}
    masks: dict[str, np.ndarray] = {}
    for column in raw.columns:
        series = raw[column]
        if column == "grade":
            out[column], missing, invalid = _parse_grades(series)
            if require_grade:
                masks[REASON_GRADE_MISSING] = missing
                masks[REASON_GRADE_INVALID] = invalid
            continue
        out[column], bad = _parse_series(column_kind(column), series, column, fractions)
        if bad is not None and bad.any():
            masks[unparseable_reason(column)] = unparseable_mask(column, bad, series, source) if check_text else bad
    # copy=False: the parsed arrays are new and ours; no copy into consolidated 2-D blocks
    frame = pd.DataFrame(out, index=raw.index, copy=False)
    return frame, masks


def first_reasons(masks: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """Per reason, the rows it drops: a row hit by several masks counts for the first only."""
    firsts: dict[str, np.ndarray] = {}
    taken = np.zeros(rows, dtype=bool)
    for reason, mask in masks.items():
        new = mask & ~taken
        if new.any():
            firsts[reason] = new
            taken |= new
    return firsts


def drop_rows(frame: pd.DataFrame, masks: dict[str, np.ndarray], *,
              keep_index: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows no mask hits, and per reason the rows dropped (a row counts for its first reason)."""
    firsts = first_reasons(masks, len(frame))
    if firsts:
        frame = frame.loc[~np.logical_or.reduce(list(firsts.values()))]
    if not keep_index:
        frame = frame.reset_index(drop=True)
    return frame, {reason: int(mask.sum()) for reason, mask in firsts.items()}


def missing_column(column: str, rows: int) -> pd.Series:
    """A column absent from the data as parse_frame gives a column of blanks: NaN (numbers, text) or NaT (dates)."""
    kind = column_kind(column)
    if kind == "date":
        return pd.Series(np.full(rows, np.datetime64("NaT", "ns")), dtype="datetime64[ns]")
    if kind in ("text", "emp_length", "grade"):
        return pd.Series(np.full(rows, np.nan, dtype=object), dtype=object)
    return pd.Series(np.full(rows, np.nan), dtype="float64")


def _parse_series(kind: str, series: pd.Series, column: str = "",
                  fractions: dict[str, bool] | None = None) -> tuple[pd.Series, np.ndarray | None]:
    """A column parsed by its kind's rule, and where its present values do not parse (None: nowhere)."""
    if kind == "text":
        return _objects(_text(series)), None
    if kind == "percent" and fractions is not None:
        return _parse_numbers(series, percent=True, fractions=fractions, column=column)
    if kind in ("number", "percent"):
        return _parse_numbers(series, percent=kind == "percent")
    if kind == "other":      # a column this package does not know: numbers if they all parse, else text
        values, bad = _parse_numbers(series, percent=False)
        return (_objects(_text(series)), None) if bad.any() else (values, bad)
    if kind == "date" and pd.api.types.is_datetime64_any_dtype(series):
        return series.astype("datetime64[ns]"), np.zeros(len(series), dtype=bool)
    rule, dtype = RULES[kind]
    values, bad = _map_uniques(series, rule)
    return pd.Series(values, index=series.index, dtype=dtype, copy=False), bad


def _text(series: pd.Series) -> pd.Series:
    """Stripped strings, NaN where missing or blank."""
    if series.dtype != "str":
        series = series.astype("str")
    series = series.str.strip()
    return series.mask(series == "")


def _objects(series: pd.Series) -> pd.Series:
    """The strings as an object column (NaN where missing) holding one ``str`` per distinct value, not one per
    row: a category column of millions of rows has a few dozen values."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = np.empty(len(uniques) + 1, dtype=object)
    labels[:-1] = uniques.to_numpy(dtype=object)   # no loop in Python over the values: an id column has one per row
    labels[-1] = np.nan                            # code -1 (missing) picks the last
    return pd.Series(labels[codes], index=series.index, dtype=object, copy=False)


def _parse_grades(series: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Upper-cased grades (NaN outside A-G), and the rows where the grade is missing or invalid."""
    text = _text(series).str.upper()
    missing = text.isna().to_numpy()
    valid = text.isin(GRADES).to_numpy()
    invalid = ~missing & ~valid
    return _objects(text.where(valid)), missing, invalid


def _map_uniques(series: pd.Series, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``rule`` once per distinct text of the column."""
    codes, uniques = pd.factorize(_text(series), use_na_sentinel=True)
    values, bad = rule(list(uniques))
    return spread(values, bad, codes)


def _parse_numbers(series: pd.Series, *, percent: bool, fractions: dict[str, bool] | None = None,
                   column: str = "") -> tuple[pd.Series, np.ndarray]:
    """Floats; "%" stripped; with ``percent``, fractions scaled to percent (see training.data.parsing)."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        # float64 (numbers typed at read): the values as they are, no copy
        values = (series.to_numpy() if series.dtype == "float64"
                  else series.to_numpy(dtype="float64", na_value=np.nan))
        bad = np.isinf(values)
        if bad.any():
            values = np.where(bad, np.nan, values)
        had_sign = False
    else:
        values, bad, signed = parse_numbers(pa.array(_text(series), type=pa.string(), from_pandas=True))
        had_sign = bool(signed.any())
    if percent and fractions is not None:
        if column not in fractions and np.isfinite(values).any():
            fractions[column] = reads_as_fractions(values, had_sign)
        values = np.round(values * 100.0, 8) if fractions.get(column) else values
    elif percent:
        values = as_percent(values, had_sign)
    return pd.Series(values, index=series.index, dtype="float64", copy=False), bad
