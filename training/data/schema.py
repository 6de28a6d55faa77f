"""The raw LendingClub loan files' columns, their other spellings, what kind of value each holds, and the reasons
a row is dropped."""
from __future__ import annotations

from collections.abc import Iterable

GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G")

#: The 151 columns of LendingClub's raw accepted-loan files (2012-2018 releases), in file order.
RAW_COLUMNS: tuple[str, ...] = (
    "id", "member_id", "loan_amnt", "funded_amnt", "funded_amnt_inv", "term", "int_rate", "installment",
    "grade", "sub_grade", "emp_title", "emp_length", "home_ownership", "annual_inc", "verification_status",
    "issue_d", "loan_status", "pymnt_plan", "url", "desc", "purpose", "title", "zip_code", "addr_state", "dti",
    "delinq_2yrs", "earliest_cr_line", "fico_range_low", "fico_range_high", "inq_last_6mths",
    "mths_since_last_delinq", "mths_since_last_record", "open_acc", "pub_rec", "revol_bal", "revol_util",
    "total_acc", "initial_list_status", "out_prncp", "out_prncp_inv", "total_pymnt", "total_pymnt_inv",
    "total_rec_prncp", "total_rec_int", "total_rec_late_fee", "recoveries", "collection_recovery_fee",
    "last_pymnt_d", "last_pymnt_amnt", "next_pymnt_d", "last_credit_pull_d", "last_fico_range_high",
    "last_fico_range_low", "collections_12_mths_ex_med", "mths_since_last_major_derog", "policy_code",
    "application_type", "annual_inc_joint", "dti_joint", "verification_status_joint", "acc_now_delinq",
    "tot_coll_amt", "tot_cur_bal", "open_acc_6m", "open_act_il", "open_il_12m", "open_il_24m",
    "mths_since_rcnt_il", "total_bal_il", "il_util", "open_rv_12m", "open_rv_24m", "max_bal_bc", "all_util",
    "total_rev_hi_lim", "inq_fi", "total_cu_tl", "inq_last_12m", "acc_open_past_24mths", "avg_cur_bal",
    "bc_open_to_buy", "bc_util", "chargeoff_within_12_mths", "delinq_amnt", "mo_sin_old_il_acct",
    "mo_sin_old_rev_tl_op", "mo_sin_rcnt_rev_tl_op", "mo_sin_rcnt_tl", "mort_acc", "mths_since_recent_bc",
    "mths_since_recent_bc_dlq", "mths_since_recent_inq", "mths_since_recent_revol_delinq",
    "num_accts_ever_120_pd", "num_actv_bc_tl", "num_actv_rev_tl", "num_bc_sats", "num_bc_tl", "num_il_tl",
    "num_op_rev_tl", "num_rev_accts", "num_rev_tl_bal_gt_0", "num_sats", "num_tl_120dpd_2m", "num_tl_30dpd",
    "num_tl_90g_dpd_24m", "num_tl_op_past_12m", "pct_tl_nvr_dlq", "percent_bc_gt_75", "pub_rec_bankruptcies",
    "tax_liens", "tot_hi_cred_lim", "total_bal_ex_mort", "total_bc_limit", "total_il_high_credit_limit",
    "revol_bal_joint", "sec_app_fico_range_low", "sec_app_fico_range_high", "sec_app_earliest_cr_line",
    "sec_app_inq_last_6mths", "sec_app_mort_acc", "sec_app_open_acc", "sec_app_revol_util",
    "sec_app_open_act_il", "sec_app_num_rev_accts", "sec_app_chargeoff_within_12_mths",
    "sec_app_collections_12_mths_ex_med", "sec_app_mths_since_last_major_derog", "hardship_flag",
    "hardship_type", "hardship_reason", "hardship_status", "deferral_term", "hardship_amount",
    "hardship_start_date", "hardship_end_date", "payment_plan_start_date", "hardship_length", "hardship_dpd",
    "hardship_loan_status", "orig_projected_additional_accrued_interest", "hardship_payoff_balance_amount",
    "hardship_last_payment_amount", "disbursement_method", "debt_settlement_flag", "debt_settlement_flag_date",
    "settlement_status", "settlement_date", "settlement_amount", "settlement_percentage", "settlement_term",
)

#: Text columns (kept as stripped Python strings, blank -> NaN).
TEXT_COLUMNS = frozenset({
    "id", "member_id", "url", "desc", "title", "emp_title", "sub_grade", "home_ownership",
    "verification_status", "loan_status", "pymnt_plan", "purpose", "zip_code", "addr_state",
    "initial_list_status", "application_type", "verification_status_joint", "hardship_flag", "hardship_type",
    "hardship_reason", "hardship_status", "hardship_loan_status", "disbursement_method",
    "debt_settlement_flag", "settlement_status",
})
#: Month dates ("Dec-2015" or "2015-12-01").
DATE_COLUMNS = frozenset({
    "issue_d", "earliest_cr_line", "last_pymnt_d", "next_pymnt_d", "last_credit_pull_d",
    "sec_app_earliest_cr_line", "hardship_start_date", "hardship_end_date", "payment_plan_start_date",
    "debt_settlement_flag_date", "settlement_date",
})
#: Percent columns that some releases publish as fractions (0.1155); see training.data.parsing.
FRACTION_PERCENT_COLUMNS = frozenset({"int_rate", "revol_util", "sec_app_revol_util"})
FRACTION_MEDIAN_MAX = 1.5
#: Every other column of RAW_COLUMNS is numeric (float64); "%" signs are stripped everywhere.
NUMERIC_COLUMNS = frozenset(
    c for c in RAW_COLUMNS
    if c not in TEXT_COLUMNS | DATE_COLUMNS | {"grade", "term", "emp_length"}) | {"issue_year"}

#: Other spellings of raw columns in LendingClub exports, by the name used here. A column the data lacks under
#: its own name is read under one of these (or under its own name in other letter case) and renamed; it is
#: never filled. ``is_inc_v`` and ``verified_status_joint``: older LoanStats exports and the data dictionary;
#: ``mths_since_most_recent_inq`` and ``mths_since_oldest_il_open``: the dictionary's BrowseNotes sheet and
#: listing files; ``open_il_6m``: the 2007-2015 74-column export (the dictionary's "Number of currently active
#: installment trades", ``open_act_il`` since 2016); ``emp_name``: the oldest exports' employer field.
COLUMN_SPELLINGS: dict[str, tuple[str, ...]] = {
    "verification_status": ("is_inc_v",),
    "verification_status_joint": ("verified_status_joint",),
    "mths_since_recent_inq": ("mths_since_most_recent_inq",),
    "mo_sin_old_il_acct": ("mths_since_oldest_il_open",),
    "open_act_il": ("open_il_6m",),
    "emp_title": ("emp_name",),
}

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".zip")
#: Parquet files (read by their first bytes, written by `synthesize` and `predict` for this suffix)
PARQUET_SUFFIX = ".parquet"
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "#N/A"]
EMP_LENGTHS = ("< 1 year", "1 year") + tuple(f"{i} years" for i in range(2, 10)) + ("10+ years",)
REASON_GRADE_MISSING = "grade missing"
REASON_GRADE_INVALID = "grade not in A-G"
REASON_MALFORMED = "malformed row"
#: Followed by the column's name: the drop reason of a row whose value in that column does not parse.
REASON_UNPARSEABLE_PREFIX = "unparseable "


def unparseable_reason(column: str) -> str:
    """The drop reason of a row whose value in ``column`` does not parse."""
    return f"{REASON_UNPARSEABLE_PREFIX}{column}"


def column_kind(column: str) -> str:
    """How a column is parsed: grade, text, date, term, emp_length, percent, number or other (not a raw column)."""
    if column == "grade" or column == "term" or column == "emp_length":
        return column
    if column in TEXT_COLUMNS:
        return "text"
    if column in DATE_COLUMNS:
        return "date"
    if column in FRACTION_PERCENT_COLUMNS:
        return "percent"
    if column in NUMERIC_COLUMNS:
        return "number"
    return "other"


def spelled_columns(present: Iterable[str], wanted: Iterable[str]) -> dict[str, str]:
    """``{name: spelling}`` for each wanted column absent from ``present`` under its own name but present under
    another known spelling (:data:`COLUMN_SPELLINGS`) or in other letter case; the first match wins."""
    present = list(present)
    exact = set(present)
    by_lower: dict[str, str] = {}
    for name in present:
        by_lower.setdefault(name.lower(), name)
    found: dict[str, str] = {}
    for column in wanted:
        if column in exact:
            continue
        for spelling in (column, *COLUMN_SPELLINGS.get(column, ())):
            match = spelling if spelling in exact else by_lower.get(spelling.lower())
            if match is not None and match not in found.values():
                found[column] = match
                break
    return found
