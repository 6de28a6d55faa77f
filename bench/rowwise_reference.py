"""The 2017-style cleaning, kept as the benchmark's reference: same rules, row by row.

This is how the 2017 notebook cleaned the data, and what the pipeline is measured against: read every
column of the CSV with pandas' default reader, parse text fields one value at a time with Python
functions (`Series.apply`), compute each derived column with `DataFrame.apply(axis=1)`, then fill
missing values column by column. It follows the pipeline's rules (training.data's spellings,
training.features' derived columns and fill rules, with fill statistics from all rows as the
benchmark's pipeline side does), so both produce the same frame: tests/test_bench.py checks that.
Never use it for real work.
"""
from __future__ import annotations

import math
import re
from datetime import datetime

import numpy as np
import pandas as pd

GRADES = ("A", "B", "C", "D", "E", "F", "G")
PERCENT_COLUMNS = ("int_rate", "revol_util", "sec_app_revol_util")
DATE_COLUMNS = ("issue_d", "earliest_cr_line")
EMP_LENGTHS = ("< 1 year", "1 year") + tuple(f"{i} years" for i in range(2, 10)) + ("10+ years",)
_BAD = object()  # an unparseable value: its row is dropped


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() in (
        "", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "#N/A")


def parse_number(value):
    if _blank(value):
        return np.nan
    try:
        number = float(str(value).strip().rstrip("%").strip())
    except ValueError:
        return _BAD
    return number if math.isfinite(number) else np.nan


def parse_term(value):
    if _blank(value):
        return np.nan
    match = re.fullmatch(r"(\d+)(?:\.0*)?\s*(?:months?)?", str(value).strip(), re.IGNORECASE)
    return float(match.group(1)) if match else _BAD


def parse_date(value):
    if _blank(value):
        return pd.NaT
    text = str(value).strip()
    for fmt in ("%b-%Y", "%Y-%m-%d"):
        try:
            return pd.Timestamp(datetime.strptime(text[:10] if fmt == "%Y-%m-%d" else text, fmt))
        except ValueError:
            pass
    return _BAD


def parse_emp_length(value):
    if _blank(value):
        return np.nan
    text = str(value).strip().lower()
    if text in ("n/a", "na", "none"):
        return np.nan
    if re.fullmatch(r"<\s*1\s*(years?)?", text):
        return EMP_LENGTHS[0]
    match = re.fullmatch(r"(\d+)(?:\.0*)?\s*(\+)?\s*(years?)?", text)
    if not match:
        return _BAD
    n = int(match.group(1))
    return EMP_LENGTHS[0] if n == 0 else EMP_LENGTHS[min(n, 10)]


def parse_text(value):
    return np.nan if _blank(value) else str(value).strip()


# Derived columns, one row at a time (the 2017 notebook's `df.apply(lambda row: ..., axis=1)`).

def _ratio(num, den, scale=1.0):
    if pd.isna(num) or pd.isna(den) or den <= 0:
        return np.nan
    return num / den * scale


def loan_to_income(row):
    return _ratio(row["loan_amnt"], row["annual_inc"])


def installment_pct_inc(row):
    if pd.isna(row["annual_inc"]):
        return np.nan
    return _ratio(row["installment"], row["annual_inc"] / 12.0, 100.0)


def il_util_ex_mort(row):
    if pd.isna(row["total_bal_ex_mort"]) or pd.isna(row["revol_bal"]):
        return np.nan
    return _ratio(max(row["total_bal_ex_mort"] - row["revol_bal"], 0.0), row["total_il_high_credit_limit"], 100.0)


def age_earliest_cr(row):
    if pd.isna(row["issue_d"]) or pd.isna(row["earliest_cr_line"]):
        return np.nan
    return (row["issue_d"] - row["earliest_cr_line"]).total_seconds() / 86400.0


DERIVED = {"loan_to_income": loan_to_income, "installment_pct_inc": installment_pct_inc,
           "il_util_ex_mort": il_util_ex_mort, "age_earliest_cr": age_earliest_cr}


def clean_rowwise(path: str, feature_set_name: str = "reference") -> pd.DataFrame:
    """Read, parse, derive and fill the 2017 way; the feature columns and `grade`, default index."""
    from bench.common import notice_lines
    from training.features import FALLBACK_VALUE, fill_rule, get_feature_set, raw_columns_for

    fs = get_feature_set(feature_set_name)
    df = pd.read_csv(path, skiprows=notice_lines(path), low_memory=False)   # every column, as in 2017
    df = df[df["grade"].astype(str).str.strip().str.upper().isin(GRADES)].copy()  # also drops summary lines
    df["grade"] = df["grade"].str.strip().str.upper()

    raw = [c for c in raw_columns_for(fs.columns) if c != "grade"]
    percent_signs = {c: df[c].astype(str).str.contains("%", regex=False).any() for c in PERCENT_COLUMNS if c in raw}
    bad = pd.Series(False, index=df.index)
    for column in raw:
        if column in DATE_COLUMNS:
            parse = parse_date
        elif column == "term":
            parse = parse_term
        elif column == "emp_length":
            parse = parse_emp_length
        elif column in fs.categorical:
            parse = parse_text
        else:
            parse = parse_number
        values = df[column].apply(parse)
        is_bad = values.apply(lambda v: v is _BAD)
        bad |= is_bad
        df[column] = values.where(~is_bad)
        if column in DATE_COLUMNS:
            df[column] = pd.to_datetime(df[column])
        elif parse in (parse_number, parse_term):
            df[column] = df[column].astype("float64")
    df = df[~bad]
    for column, had_sign in percent_signs.items():  # a file that publishes fractions (no "%"): to percent
        if not had_sign and df[column].notna().any() and df[column].abs().median() <= 1.5:
            df[column] = (df[column] * 100.0).round(8)

    for column, function in DERIVED.items():
        if column in fs.columns:
            df[column] = df.apply(function, axis=1).astype("float64")   # the 2017 way: row by row

    for column in fs.numeric:
        series = df[column].astype("float64")
        if series.notna().sum() == 0:
            value = FALLBACK_VALUE
        else:
            rule = fill_rule(column)
            value = 0.0 if rule == "zero" else float(series.mean() if rule == "mean" else series.max())
        df[column] = series.fillna(value)
    for column in fs.categorical:
        df[column] = df[column].apply(_category)
    return df[[*fs.columns, "grade"]].reset_index(drop=True)


def _category(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "missing"
        if value == round(value):
            return str(int(value))
    return str(value)
