"""Named feature sets, derived columns and the fill rules for missing values.

Derived columns (:data:`DERIVATIONS`: each formula written once, run on numpy arrays by
:func:`add_derived_features` and on tensors inside the saved model by ``training.layers.DerivedColumn``;
never ``inf``: a zero, negative or missing denominator gives NaN, which the fill rules then handle):

===================== ===================================================================================
``loan_to_income``    ``loan_amnt / annual_inc``
``installment_pct_inc`` ``installment / (annual_inc / 12) * 100``: the monthly payment in % of monthly income
``il_util_ex_mort``   ``max(total_bal_ex_mort - revol_bal, 0) / total_il_high_credit_limit * 100``: the
                      non-mortgage balance that is not revolving (installment loans) in % of the installment
                      credit limit; LendingClub publishes no mortgage balance, so this is its closest form
``age_earliest_cr``   days from ``earliest_cr_line`` to the loan's ``issue_d`` (not to today: reproducible)
``issue_date``        ``issue_d`` as days since 1970-01-01: when the loan was graded (LendingClub re-priced its
                      grades over the years); for a new application, the day it is graded
``annual_inc_joint``, ``dti_joint``  where present, filled from ``annual_inc`` / ``dti`` for individual loans
===================== ===================================================================================

Fill rules (:func:`fill_rule`), learned on the training split only (:func:`fit_fill_values`):

============ =========================================================================================
``zero``     counts ("number of ...": ``num_*``, ``open_acc``, ``pub_rec``, ``delinq_2yrs``, ...) and
             amounts of adverse events (``delinq_amnt``, ``tot_coll_amt``): missing means none
``max``      "months since ..." (``mths_since_*``, ``mo_sin_*``): missing means longer than any seen;
             ``issue_date``: missing means the newest grading policy seen
``mean``     everything else numeric: ratios and utilisations (``*_util``, ``pct_*``, ``percent_*``,
             ``dti``, ...), balances, limits, income, FICO, ages
``fallback`` a column entirely empty in the training split (bureau fields before 2012): filled with
             :data:`FALLBACK_VALUE` (0.0), rule ``"fallback:empty in training split"`` and a warning
============ =========================================================================================

Categorical NaN becomes the string ``"missing"``; categorical columns are returned as Python strings
(a numeric ``term`` of 36.0 becomes ``"36"``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.errors import ConfigError, DataError


@dataclass(frozen=True)
class FeatureSet:
    name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


# The 49 inputs of the 2017 model, in its order: applicant numeric, applicant categorical, credit numeric.
_REF_APPLICANT_NUMERIC = ("annual_inc", "dti", "age_earliest_cr", "loan_amnt", "installment")
_REF_APPLICANT_CATEGORICAL = ("application_type", "emp_length", "home_ownership", "addr_state", "term")
_REF_CREDIT_NUMERIC = (
    "acc_now_delinq", "acc_open_past_24mths", "avg_cur_bal", "bc_open_to_buy", "bc_util", "delinq_2yrs",
    "delinq_amnt", "fico_range_high", "fico_range_low", "last_fico_range_high", "last_fico_range_low",
    "open_acc", "pub_rec", "revol_util", "revol_bal", "tot_coll_amt", "tot_cur_bal", "total_acc",
    "total_rev_hi_lim", "num_accts_ever_120_pd", "num_actv_bc_tl", "num_actv_rev_tl", "num_bc_sats",
    "num_bc_tl", "num_il_tl", "num_rev_tl_bal_gt_0", "pct_tl_nvr_dlq", "percent_bc_gt_75", "tot_hi_cred_lim",
    "total_bal_ex_mort", "total_bc_limit", "total_il_high_credit_limit", "all_util", "loan_to_income",
    "installment_pct_inc", "il_util", "il_util_ex_mort", "total_bal_il", "total_cu_tl",
)
#: Columns a lender does not have when an application arrives: computed from the interest rate (which the
#: grade sets) or observed after issuance.
LEAKING_COLUMNS = frozenset({
    "installment", "installment_pct_inc", "int_rate", "sub_grade", "grade", "last_fico_range_high",
    "last_fico_range_low", "funded_amnt", "funded_amnt_inv", "loan_status", "last_pymnt_d", "last_pymnt_amnt",
    "next_pymnt_d", "last_credit_pull_d", "total_pymnt", "total_pymnt_inv", "total_rec_prncp",
    "total_rec_int", "total_rec_late_fee", "recoveries", "collection_recovery_fee", "out_prncp",
    "out_prncp_inv", "pymnt_plan", "initial_list_status", "debt_settlement_flag", "hardship_flag",
})

REFERENCE = FeatureSet(
    name="reference",
    numeric=_REF_APPLICANT_NUMERIC + _REF_CREDIT_NUMERIC,
    categorical=_REF_APPLICANT_CATEGORICAL,
    description=(
        "The 49 inputs of the 2017 model, for comparison only: it includes installment and "
        "installment_pct_inc (computed from the interest rate, which the grade sets) and last_fico_range_* "
        "(pulled after issuance), so it leaks the label and cannot grade a new application."),
)
APPLICATION = FeatureSet(
    name="application",
    numeric=tuple(c for c in REFERENCE.numeric if c not in LEAKING_COLUMNS) + ("inq_last_6mths", "issue_date"),
    categorical=_REF_APPLICANT_CATEGORICAL + ("purpose", "verification_status"),
    description=(
        "What is known when an application arrives: the reference inputs without installment, "
        "installment_pct_inc and last_fico_range_* (44 of the 49), plus purpose (stated by the applicant), "
        "verification_status (LendingClub's income check during the review, before issuance), "
        "inq_last_6mths (credit inquiries on the bureau report pulled for the application) and issue_date "
        "(when it is graded: LendingClub re-priced its grades over the years)."),
)
FEATURE_SETS: dict[str, FeatureSet] = {s.name: s for s in (APPLICATION, REFERENCE)}
DEFAULT_FEATURE_SET = "application"

FALLBACK_VALUE = 0.0
FALLBACK_RULE = "fallback:empty in training split"
MISSING_CATEGORY = "missing"

_ZERO_COLUMNS = frozenset({
    "acc_now_delinq", "acc_open_past_24mths", "delinq_2yrs", "delinq_amnt", "open_acc", "pub_rec", "total_acc",
    "tot_coll_amt", "total_cu_tl", "inq_last_6mths", "inq_last_12m", "inq_fi", "mort_acc",
    "pub_rec_bankruptcies", "tax_liens", "collections_12_mths_ex_med", "chargeoff_within_12_mths",
    "open_acc_6m", "open_act_il", "open_il_12m", "open_il_24m", "open_rv_12m", "open_rv_24m",
})


_LATEST_COLUMNS = frozenset({"issue_date"})   # missing means the newest seen ("max")


def get_feature_set(name: str) -> FeatureSet:
    """The named feature set; ConfigError for an unknown name."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise ConfigError(f"unknown feature set {name!r}; choose one of: {', '.join(FEATURE_SETS)}") from None


def raw_columns_for(columns: Iterable[str]) -> list[str]:
    """The raw columns needed to compute these inputs (derived ones replaced by their inputs), in order."""
    out: dict[str, None] = {}
    for column in columns:
        for raw in DERIVED_INPUTS.get(column, (column,)):
            out[raw] = None
    return list(out)


def fill_rule(column: str) -> str:
    """``"zero"``, ``"max"`` or ``"mean"`` for a numeric column (see the module docstring)."""
    if column.startswith(("mths_since_", "mo_sin_")) or column in _LATEST_COLUMNS:
        return "max"
    if column in _ZERO_COLUMNS or column.startswith("num_"):
        return "zero"
    return "mean"


NAN = float("nan")
NS_PER_DAY = 86_400 * 10 ** 9


def _ratio(xp, numerator, denominator, scale: float = 1.0):
    """``numerator / denominator * scale``; NaN where either is missing or not finite or the denominator is
    not positive."""
    ok = xp.isfinite(numerator) & xp.isfinite(denominator) & (denominator > 0)
    return xp.where(ok, numerator / xp.where(ok, denominator, 1.0) * scale, NAN)


def _non_mortgage_utilisation(xp, total_bal_ex_mort, revol_bal, total_il_high_credit_limit):
    balance = total_bal_ex_mort - revol_bal
    return _ratio(xp, xp.where(balance < 0, 0.0, balance), total_il_high_credit_limit, 100.0)


def _fill_from(xp, joint, single):
    return xp.where(xp.isnan(joint), single, joint)


@dataclass(frozen=True)
class Derivation:
    """A derived column: its raw inputs (float64 arrays; dates as days since 1970-01-01) and its formula
    ``formula(xp, *inputs)``, written once for numpy (``xp=numpy``: :func:`add_derived_features`) and for
    ``keras.ops`` (``xp=keras.ops``: the model's ``training.layers.DerivedColumn``)."""

    inputs: tuple[str, ...]
    formula: Callable
    dates: bool = False


#: Derived column -> how it is computed, in the order :func:`add_derived_features` adds them.
DERIVATIONS: dict[str, Derivation] = {
    "loan_to_income": Derivation(("loan_amnt", "annual_inc"), lambda xp, loan, income: _ratio(xp, loan, income)),
    "installment_pct_inc": Derivation(("installment", "annual_inc"),
                                      lambda xp, payment, income: _ratio(xp, payment, income / 12.0, 100.0)),
    "il_util_ex_mort": Derivation(("total_bal_ex_mort", "revol_bal", "total_il_high_credit_limit"),
                                  _non_mortgage_utilisation),
    "age_earliest_cr": Derivation(("issue_d", "earliest_cr_line"), lambda xp, issued, earliest: issued - earliest,
                                  dates=True),
    "issue_date": Derivation(("issue_d",), lambda xp, issued: issued + 0.0, dates=True),
    "annual_inc_joint": Derivation(("annual_inc_joint", "annual_inc"), _fill_from),
    "dti_joint": Derivation(("dti_joint", "dti"), _fill_from),
}
#: Derived column -> the raw columns it is computed from.
DERIVED_INPUTS: dict[str, tuple[str, ...]] = {column: d.inputs for column, d in DERIVATIONS.items()}


def days_since_epoch(values: pd.Series) -> np.ndarray:
    """Dates (or date text pandas reads) as float64 days since 1970-01-01, NaN where missing: the form the
    model takes dates in."""
    dates = pd.to_datetime(values).astype("datetime64[ns]")
    days = dates.to_numpy().view("int64") / NS_PER_DAY
    days[dates.isna().to_numpy()] = np.nan
    return days


def add_derived_features(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the derived columns added (those whose inputs are present); never ``inf``."""
    out = frame.copy(deep=False)   # copy-on-write: new columns never reach ``frame``
    present = set(frame.columns)
    for column, derivation in DERIVATIONS.items():
        if set(derivation.inputs) <= present:
            inputs = [days_since_epoch(frame[c]) if derivation.dates
                      else frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in derivation.inputs]
            out[column] = derivation.formula(np, *inputs)
    return out


@dataclass
class FillValues:
    values: dict[str, float]                            # numeric column -> value used for NaN
    rules: dict[str, str]                               # column -> "zero" | "mean" | "max" | "fallback:<why>"
    warnings: list[str] = field(default_factory=list)   # e.g. columns entirely empty in the training split
    empty: list[str] = field(default_factory=list)      # the feature columns entirely empty in the training split

    def to_dict(self) -> dict:
        return {"values": dict(self.values), "rules": dict(self.rules), "warnings": list(self.warnings),
                "empty_columns": list(self.empty)}

    @classmethod
    def from_dict(cls, d: dict) -> FillValues:
        return cls(values={k: float(v) for k, v in d["values"].items()}, rules=dict(d["rules"]),
                   warnings=list(d.get("warnings", [])), empty=list(d.get("empty_columns", [])))


def _require(frame: pd.DataFrame, feature_set: FeatureSet, what: str) -> None:
    missing = [c for c in feature_set.columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks feature columns of set {feature_set.name!r}: {', '.join(missing)} "
                        f"(derived ones come from add_derived_features)")


def as_float(series: pd.Series) -> pd.Series:
    """The column as float64, NaN where not a number; the column itself when it is float64 already
    (``pd.to_numeric`` copies every column it is given)."""
    if series.dtype == "float64":
        return series
    return pd.to_numeric(series, errors="coerce").astype("float64")


def fit_fill_values(train: pd.DataFrame, feature_set: FeatureSet) -> FillValues:
    """Fill values from the training split only (pass nothing but training rows)."""
    _require(train, feature_set, "training frame")
    values: dict[str, float] = {}
    rules: dict[str, str] = {}
    notes: list[str] = []
    empty: list[str] = []
    for column in feature_set.numeric:
        series = as_float(train[column])
        rule = fill_rule(column)
        if not _has_values(series):
            values[column], rules[column] = FALLBACK_VALUE, FALLBACK_RULE
            notes.append(f"{column}: entirely empty in the training split; filled with {FALLBACK_VALUE} "
                         f"(rule would be {rule})")
            empty.append(column)
            continue
        value = 0.0 if rule == "zero" else float(series.mean() if rule == "mean" else series.max())
        values[column], rules[column] = value, rule
    for column in feature_set.categorical:
        rules[column] = MISSING_CATEGORY
        if not _has_values(train[column]):
            notes.append(f"{column}: entirely empty in the training split; every value is {MISSING_CATEGORY!r}")
            empty.append(column)
    return FillValues(values=values, rules=rules, warnings=notes, empty=empty)


def category_strings(series: pd.Series, missing: str = MISSING_CATEGORY) -> pd.Series:
    """Categorical values as Python strings (36.0 -> "36"), NaN -> ``missing``.

    Each distinct value is formatted once (a column has a few dozen), then spread to the rows by its
    factorize code.
    """
    return _category_strings_counted(series, missing)[0]


def _category_strings_counted(series: pd.Series, missing: str = MISSING_CATEGORY) -> tuple[pd.Series, int]:
    """category_strings, and how many values were missing (counted from the codes: no second pass)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    numeric = is_number_column(series)
    text = [_number_text(v) if numeric else str(v) for v in uniques]
    labels = np.array([*text, missing], dtype=object)     # code -1 (missing) picks the last
    return pd.Series(labels[codes], index=series.index, dtype=object), int(np.count_nonzero(codes < 0))


def _has_values(series: pd.Series) -> bool:
    """Whether the column holds any value: a float column at array speed, others stop at the first value
    (a whole-column ``notna`` of text costs as much as filling it)."""
    if series.dtype == "float64":
        return not np.isnan(series.to_numpy()).all()
    return any(not pd.isna(value) for value in series.to_numpy(dtype=object))


def is_number_column(series: pd.Series) -> bool:
    """Numbers (not booleans): a categorical column of numbers is formatted as text (36.0 -> "36")."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _number_text(value: float) -> str:
    """36.0 -> "36"; other numbers as pandas writes them."""
    value = float(value)
    return str(int(value)) if np.isfinite(value) and value == round(value) else str(value)


def apply_fill(frame: pd.DataFrame, fill: FillValues,
               feature_set: FeatureSet) -> tuple[pd.DataFrame, dict[str, int]]:
    """A copy with numeric NaN -> fill value and categorical NaN -> "missing"; counts filled per column."""
    _require(frame, feature_set, "frame")
    counts: dict[str, int] = {}
    filled: dict[str, pd.Series] = {}
    for column in feature_set.numeric:
        if column not in fill.values:
            raise DataError(f"no fill value for column {column!r}; the fill values belong to another feature set")
        original = frame[column]
        values = as_float(original)
        n = int(np.count_nonzero(np.isnan(values.to_numpy())))
        if n:
            counts[column] = n
            values = values.fillna(fill.values[column])
        if values is not original:   # a float column with nothing to fill stays the frame's own
            filled[column] = values
    for column in feature_set.categorical:
        filled[column], n = _category_strings_counted(frame[column])
        if n:
            counts[column] = n
    # one shallow copy with the filled columns swapped in, not a deep copy of the
    # frame and a block copy per column; copy-on-write keeps `frame` itself unchanged
    out = frame.copy(deep=False)
    for column, values in filled.items():
        out[column] = values
    return out, counts
