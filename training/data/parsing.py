"""The parsing rules: what each spelling of a raw value means, written once for the batch and the record parser.

============================  ==========================================  =========================
column                        spellings                                   parsed to
============================  ==========================================  =========================
``int_rate``, ``revol_util``  ``" 11.55%"``, ``11.55``, ``0.1155``        percent, float (11.55)
``term``                      ``" 36 months"``, ``36``                    months, float (36.0)
dates (``issue_d``, ...)      ``Dec-2015``, ``2015-12-01``                ``datetime64[ns]``
``emp_length``                ``"10+ years"``, ``"< 1 year"``, ``"n/a"``  ``"10+ years"``, ... / NaN
============================  ==========================================  =========================

Fractions: a percent column (:data:`FRACTION_PERCENT_COLUMNS`) with no ``%`` sign in a file is read
as fractions, and multiplied by 100, when the median of its values in that file is at most
:data:`FRACTION_MEDIAN_MAX` (1.5). The median, not the maximum, because real fraction files hold
utilisations above 100% (``revol_util`` 1.19 in the 2007-2011 file), while no percent file has a
median rate or utilisation near 1%. The decision is made per column and per file (for
:func:`~training.data.frames.parse_frame`: per call, so a single record of 0.9 is read as 90%).

A rule takes present texts (stripped, not blank) and returns ``(values, bad)``: the parsed values, NaN or
NaT where a text does not parse, and where it does not. The batch parser (:mod:`training.data.frames`)
applies a rule to a column's distinct texts, the record parser (:mod:`training.data.records`) to the texts
of a few records; :func:`spread` puts the results back in row order. Dates and terms in their common
spellings are parsed in plain Python, any other text by pandas (one call for all of them); numbers by Arrow.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.data.schema import EMP_LENGTHS, FRACTION_MEDIAN_MAX
from training.errors import DataError

_TERM = re.compile(r"^(\d+(?:\.0*)?)\s*(?:months?)?$", re.IGNORECASE)
_MONTH_DATE = re.compile(r"([A-Za-z]{3})-([0-9]{4})")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}
_NAT = np.datetime64("NaT", "ns")
#: A rule: present texts -> (values, bad).
Rule = Callable[[Sequence[str]], "tuple[np.ndarray, np.ndarray]"]


def parse_dates(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Month dates: ``Dec-2015`` (``%b-%Y``) or ISO 8601 (``2015-12-01``)."""
    values = np.full(len(texts), _NAT, dtype="datetime64[ns]")
    odd = []
    for i, text in enumerate(texts):
        value = _plain_date(text)
        if value is None:
            odd.append(i)
        else:
            values[i] = value
    if odd:
        others = pd.Index([texts[i] for i in odd], dtype=object)
        months = np.asarray(pd.to_datetime(others, format="%b-%Y", errors="coerce"), dtype="datetime64[ns]")
        iso = np.asarray(pd.to_datetime(others, format="ISO8601", errors="coerce"), dtype="datetime64[ns]")
        values[odd] = np.where(np.isnat(months), iso, months)
    return values, np.isnat(values)


def _plain_date(text: str) -> np.datetime64 | None:
    """``Mon-YYYY`` or ``YYYY-MM-DD`` (years 1700-2200) in plain Python; None for any other text."""
    match = _MONTH_DATE.fullmatch(text)
    if match and match.group(1).lower() in _MONTHS and 1700 <= int(match.group(2)) <= 2200:
        return np.datetime64(f"{match.group(2)}-{_MONTHS[match.group(1).lower()]:02d}-01", "ns")
    match = _ISO_DATE.fullmatch(text)
    if match and 1700 <= int(match.group(1)) <= 2200:
        try:
            return np.datetime64(text, "ns")
        except ValueError:
            return None
    return None


def parse_terms(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Months as floats: ``36 months``, ``60 Month``, ``36``, ``36.0``."""
    values = np.full(len(texts), np.nan)
    odd = []
    for i, text in enumerate(texts):
        if not text.isascii():
            odd.append(i)          # Unicode digits and blanks: read by pandas, as any other odd text
        elif match := _TERM.match(text):
            values[i] = float(match.group(1))
    if odd:
        found = pd.Index([texts[i] for i in odd], dtype=object).str.extract(_TERM, expand=False)
        values[odd] = pd.to_numeric(found, errors="coerce").to_numpy(dtype=float)
    return values, np.isnan(values)


def parse_emp_lengths(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """One of :data:`EMP_LENGTHS` (``"10 years"`` -> ``"10+ years"``, ``"0"`` -> ``"< 1 year"``); ``"n/a"``: NaN."""
    parsed = [_emp_length(text) for text in texts]
    bad = np.array([p is None for p in parsed], dtype=bool)
    values = np.array([np.nan if p is None or p == "n/a" else p for p in parsed], dtype=object)
    return values, bad


def _emp_length(text: str) -> str | None:
    t = text.strip().lower()
    if t in ("n/a", "na", "none", ""):
        return "n/a"
    if re.fullmatch(r"<\s*1\s*(years?)?", t):
        return EMP_LENGTHS[0]
    m = re.fullmatch(r"(\d+)(?:\.0*)?\s*(\+)?\s*(years?)?", t)
    if not m:
        return None
    n = int(m.group(1))
    return EMP_LENGTHS[0] if n == 0 else EMP_LENGTHS[min(n, 10)]


def parse_numbers(text: pa.Array, *, fallback: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, bad, signed)`` of texts (nulls: missing): floats with a trailing ``%`` and blanks stripped.

    ``signed``: where a text ends with ``%`` (a percent column written with signs is not read as fractions).
    Infinities and NaN spellings are bad. Where Arrow cannot cast a text, every text is read by pandas
    instead; with ``fallback=False`` that case raises ``pa.ArrowInvalid``.
    """
    signed = pc.fill_null(pc.ends_with(text, "%"), False).to_numpy(zero_copy_only=False)
    stripped = pc.utf8_trim_whitespace(pc.utf8_rtrim(text, characters="%"))
    stripped = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)
    try:
        values = pc.cast(stripped, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        if not fallback:
            raise
        values = pd.to_numeric(stripped.to_pandas(), errors="coerce").to_numpy(dtype="float64")
    present = pc.is_valid(stripped).to_numpy(zero_copy_only=False)
    values = np.where(np.isfinite(values), values, np.nan)
    return values, present & np.isnan(values), signed


#: The rules applied to a column's distinct texts, by column kind, with the dtype of the parsed column.
RULES: dict[str, tuple[Rule, str]] = {
    "date": (parse_dates, "datetime64[ns]"), "term": (parse_terms, "float64"),
    "emp_length": (parse_emp_lengths, "object"),
}


def reads_as_fractions(values: np.ndarray, had_sign: bool) -> bool:
    """Whether a percent column's values are fractions (see the module docstring)."""
    if had_sign:
        return False
    finite = values[~np.isnan(values)]
    return bool(finite.size and np.median(np.abs(finite)) <= FRACTION_MEDIAN_MAX)


def as_percent(values: np.ndarray, had_sign: bool) -> np.ndarray:
    """A percent column's values, fractions scaled by 100 (see the module docstring)."""
    return np.round(values * 100.0, 8) if reads_as_fractions(values, had_sign) else values


def spread(values: np.ndarray, bad: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row values and bad flags from a rule's results for distinct texts (code -1: missing)."""
    empty = _NAT if values.dtype.kind == "M" else np.nan
    values = np.concatenate([values, np.full(1, empty, dtype=values.dtype)])[codes]
    bad = np.concatenate([bad, [False]])[codes]
    return values, bad


def unparseable_mask(column: str, bad: np.ndarray, raw: pd.Series, source: str) -> np.ndarray:
    """``bad`` as the column's drop mask; DataError when none of its present ``raw`` values parses."""
    if int(bad.sum()) == int(raw.notna().sum()):
        raise only_text_error(source, column, raw[bad].iloc[0])
    return bad


def only_text_error(source: str, column: str, example: object) -> DataError:
    """The error for a column none of whose values parses, with ``example`` one of them."""
    return DataError(f"{source}: column {column!r} holds text where numbers/dates are expected "
                     f"(e.g. {str(example)[:40]!r})")


def unparseable_share_error(source: str, column: str, count: int, rows: int, example: object) -> DataError:
    """The error for a column whose values do not parse in ``count`` of ``rows`` rows (over max_bad_rows)."""
    return DataError(f"{source}: column {column!r} has {count} of {rows} values that are not numbers/dates "
                     f"(e.g. {str(example)[:40]!r}); check that the column holds what its name says")
