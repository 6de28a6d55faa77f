"""training.features: feature-set contents, derived columns, fill rules fitted on training rows only."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.errors import ConfigError, DataError
from training.features import (
    APPLICATION,
    DEFAULT_FEATURE_SET,
    FALLBACK_RULE,
    FALLBACK_VALUE,
    FEATURE_SETS,
    LEAKING_COLUMNS,
    MISSING_CATEGORY,
    REFERENCE,
    FeatureSet,
    FillValues,
    add_derived_features,
    apply_fill,
    category_strings,
    fill_rule,
    fit_fill_values,
    get_feature_set,
    raw_columns_for,
)

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lendingclub"
REFERENCE_49 = (
    "annual_inc dti age_earliest_cr loan_amnt installment "
    "acc_now_delinq acc_open_past_24mths avg_cur_bal bc_open_to_buy bc_util delinq_2yrs delinq_amnt "
    "fico_range_high fico_range_low last_fico_range_high last_fico_range_low open_acc pub_rec revol_util "
    "revol_bal tot_coll_amt tot_cur_bal total_acc total_rev_hi_lim num_accts_ever_120_pd num_actv_bc_tl "
    "num_actv_rev_tl num_bc_sats num_bc_tl num_il_tl num_rev_tl_bal_gt_0 pct_tl_nvr_dlq percent_bc_gt_75 "
    "tot_hi_cred_lim total_bal_ex_mort total_bc_limit total_il_high_credit_limit all_util loan_to_income "
    "installment_pct_inc il_util il_util_ex_mort total_bal_il total_cu_tl "
    "application_type emp_length home_ownership addr_state term").split()


# --------------------------------------------------------------------------------------- feature sets

def test_reference_is_exactly_the_49_inputs() -> None:
    assert len(REFERENCE.columns) == 49 and len(set(REFERENCE.columns)) == 49
    assert REFERENCE.columns == tuple(REFERENCE_49)
    assert REFERENCE.categorical == ("application_type", "emp_length", "home_ownership", "addr_state", "term")


def test_application_has_no_leaking_column() -> None:
    assert not set(APPLICATION.columns) & LEAKING_COLUMNS
    assert {"installment", "installment_pct_inc", "last_fico_range_high", "last_fico_range_low",
            "int_rate", "sub_grade"}.isdisjoint(APPLICATION.columns)
    added = {"purpose", "verification_status", "inq_last_6mths", "issue_date"}
    assert set(APPLICATION.columns) - added < set(REFERENCE.columns)
    assert len(APPLICATION.columns) == 49 - 4 + len(added)
    assert all(column in APPLICATION.description for column in added)
    # nothing the set needs from the raw file is leaking either
    assert not set(raw_columns_for(APPLICATION.columns)) & LEAKING_COLUMNS


def test_feature_set_lookup() -> None:
    assert DEFAULT_FEATURE_SET == "application" and set(FEATURE_SETS) == {"application", "reference"}
    assert get_feature_set("reference") is REFERENCE
    with pytest.raises(ConfigError, match="'nope'.*application, reference"):
        get_feature_set("nope")
    assert all(s.description for s in FEATURE_SETS.values())


def test_raw_columns_for_replaces_derived_columns() -> None:
    assert raw_columns_for(["loan_to_income", "annual_inc", "age_earliest_cr", "il_util_ex_mort"]) == [
        "loan_amnt", "annual_inc", "issue_d", "earliest_cr_line", "total_bal_ex_mort", "revol_bal",
        "total_il_high_credit_limit"]
    raw = raw_columns_for(REFERENCE.columns)
    assert "installment" in raw and "loan_to_income" not in raw and len(raw) == len(set(raw))


# ----------------------------------------------------------------------------------------- derived

def hand_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "loan_amnt": [10000.0, 5000.0, 8000.0, 2000.0],
        "annual_inc": [50000.0, 0.0, np.nan, 24000.0],
        "installment": [300.0, 150.0, 200.0, 100.0],
        "total_bal_ex_mort": [30000.0, 1000.0, np.nan, 500.0],
        "revol_bal": [10000.0, 2000.0, 100.0, 0.0],
        "total_il_high_credit_limit": [40000.0, 5000.0, 1000.0, 0.0],
        "issue_d": pd.to_datetime(["2015-12-01", "2016-01-01", "2016-01-01", "2016-03-01"]),
        "earliest_cr_line": pd.to_datetime(["2015-11-01", "2000-01-01", pd.NaT, "2016-02-01"]),
        "dti": [10.0, 20.0, 30.0, 40.0],
        "annual_inc_joint": [np.nan, 90000.0, np.nan, np.nan],
        "dti_joint": [np.nan, 15.0, np.nan, np.nan],
    })


def test_derived_features_known_answers() -> None:
    raw = hand_frame()
    f = add_derived_features(raw)
    np.testing.assert_allclose(f["loan_to_income"], [0.2, np.nan, np.nan, 2000 / 24000])
    np.testing.assert_allclose(f["installment_pct_inc"], [300 / (50000 / 12) * 100, np.nan, np.nan, 5.0])
    np.testing.assert_allclose(f["il_util_ex_mort"], [50.0, 0.0, np.nan, np.nan])   # 20000/40000; max(-1000,0)
    np.testing.assert_allclose(f["age_earliest_cr"], [30.0, 5844.0, np.nan, 29.0])
    np.testing.assert_allclose(f["issue_date"], [16770.0, 16801.0, 16801.0, 16861.0])   # days since 1970-01-01
    np.testing.assert_allclose(f["annual_inc_joint"], [50000.0, 90000.0, np.nan, 24000.0])
    np.testing.assert_allclose(f["dti_joint"], [10.0, 15.0, 30.0, 40.0])
    assert not np.isinf(f.select_dtypes("number").to_numpy()).any()
    pd.testing.assert_frame_equal(raw, hand_frame())  # input untouched (joint columns still NaN)


def test_zero_income_never_gives_inf() -> None:
    f = add_derived_features(pd.DataFrame({"loan_amnt": [1000.0, 0.0, 5.0], "annual_inc": [0.0, 0.0, -1.0],
                                           "installment": [30.0, 0.0, 1.0]}))
    assert f["loan_to_income"].isna().all() and f["installment_pct_inc"].isna().all()


# -------------------------------------------------------------------------------------------- fills

SMALL = FeatureSet(name="small", numeric=("num_bc_tl", "bc_util", "mths_since_last_delinq", "tot_cur_bal"),
                   categorical=("emp_length", "term"), description="test set")


def small_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "num_bc_tl": [1.0, np.nan, 3.0, np.nan],
        "bc_util": [10.0, 20.0, np.nan, 60.0],
        "mths_since_last_delinq": [5.0, np.nan, 50.0, 7.0],
        "tot_cur_bal": [np.nan] * 4,
        "emp_length": ["1 year", np.nan, "10+ years", np.nan],
        "term": [36.0, 60.0, np.nan, 36.0],
    })


def test_fill_rules_known_answers() -> None:
    assert [fill_rule(c) for c in ("num_bc_tl", "open_acc", "bc_util", "revol_util", "mths_since_last_delinq",
                                   "mo_sin_rcnt_tl", "annual_inc", "issue_date")] == [
        "zero", "zero", "mean", "mean", "max", "max", "mean", "max"]   # a missing issue date: the newest policy
    frame = small_frame()
    fill = fit_fill_values(frame, SMALL)
    assert fill.values == {"num_bc_tl": 0.0, "bc_util": 30.0, "mths_since_last_delinq": 50.0,
                           "tot_cur_bal": FALLBACK_VALUE}
    assert fill.rules["tot_cur_bal"] == FALLBACK_RULE and fill.rules["bc_util"] == "mean"
    assert len(fill.warnings) == 1 and "tot_cur_bal" in fill.warnings[0]
    out, counts = apply_fill(frame, fill, SMALL)
    assert counts == {"num_bc_tl": 2, "bc_util": 1, "mths_since_last_delinq": 1, "tot_cur_bal": 4,
                      "emp_length": 2, "term": 1}
    assert out["num_bc_tl"].tolist() == [1.0, 0.0, 3.0, 0.0]
    assert out["bc_util"].tolist() == [10.0, 20.0, 30.0, 60.0]
    assert out["mths_since_last_delinq"].tolist() == [5.0, 50.0, 50.0, 7.0]
    assert out["tot_cur_bal"].tolist() == [0.0] * 4
    assert out["emp_length"].tolist() == ["1 year", "missing", "10+ years", "missing"]
    assert out["term"].tolist() == ["36", "60", "missing", "36"]
    assert not out[list(SMALL.numeric)].isna().any().any()
    assert frame["bc_util"].isna().sum() == 1         # input untouched


def test_fill_of_complete_text_and_empty_columns() -> None:
    """Columns with nothing to fill keep their values (text numbers become floats); a text column of None and
    pd.NA is entirely empty; every count comes from one pass."""
    frame = small_frame().assign(num_bc_tl=["1", "2", "x", "4"], bc_util=[1.0, 2.0, 3.0, 4.0],
                                 emp_length=[None, pd.NA, np.nan, None])
    fill = fit_fill_values(frame, SMALL)
    assert fill.values["num_bc_tl"] == 0.0 and fill.values["bc_util"] == 2.5
    assert fill.empty == ["tot_cur_bal", "emp_length"]
    out, counts = apply_fill(frame, fill, SMALL)
    assert counts == {"num_bc_tl": 1, "tot_cur_bal": 4, "mths_since_last_delinq": 1, "emp_length": 4, "term": 1}
    assert out["num_bc_tl"].tolist() == [1.0, 2.0, 0.0, 4.0] and out["num_bc_tl"].dtype == "float64"
    assert out["bc_util"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert out["emp_length"].tolist() == ["missing"] * 4
    assert frame["num_bc_tl"].tolist() == ["1", "2", "x", "4"]   # input untouched


def test_fill_values_fit_on_training_rows_only() -> None:
    train = small_frame()
    test_a = small_frame().assign(bc_util=[1000.0, np.nan, np.nan, 5000.0], tot_cur_bal=1.0)
    test_b = test_a.assign(mths_since_last_delinq=999.0)
    fill = fit_fill_values(train, SMALL)
    before = fill.to_dict()
    out_a, _ = apply_fill(test_a, fill, SMALL)
    out_b, _ = apply_fill(test_b, fill, SMALL)
    assert fill.to_dict() == before                   # applying never refits
    assert out_a["bc_util"].tolist() == [1000.0, 30.0, 30.0, 5000.0]   # the training mean, not the test one
    assert fit_fill_values(train, SMALL).to_dict() == before


def test_fill_values_round_trip_and_errors() -> None:
    fill = fit_fill_values(small_frame(), SMALL)
    import json
    again = FillValues.from_dict(json.loads(json.dumps(fill.to_dict())))
    assert again == fill
    with pytest.raises(DataError, match="tot_cur_bal"):
        fit_fill_values(small_frame().drop(columns="tot_cur_bal"), SMALL)
    with pytest.raises(DataError, match="no fill value for column 'num_bc_tl'"):
        apply_fill(small_frame(), FillValues(values={}, rules={}), SMALL)


# ---------------------------------------------------------------------------------------- real data

@pytest.mark.realdata
@pytest.mark.skipif(not (REAL / "lc_2007_2011_kuhnrl30_LoanStats3a.csv.gz").exists(),
                    reason=f"real LendingClub 2007-2011 file not found under {REAL}")
def test_real_2007_2011_bureau_columns_get_fallback_fills() -> None:
    from training.data import load_loans
    d = load_loans(REAL / "lc_2007_2011_kuhnrl30_LoanStats3a.csv.gz", raw_columns_for(REFERENCE.columns))
    assert d.rows_read == 42_535 and len(d.frame) == 42_535 - sum(d.dropped.values())
    frame = add_derived_features(d.frame)
    empty = {"acc_open_past_24mths", "bc_util", "tot_cur_bal", "num_bc_tl", "total_bc_limit", "all_util",
             "il_util_ex_mort"}
    assert all(frame[c].isna().all() for c in empty)
    fill = fit_fill_values(frame, REFERENCE)
    assert all(fill.rules[c] == FALLBACK_RULE for c in empty)
    assert {w.split(":")[0] for w in fill.warnings} >= empty
    out, counts = apply_fill(frame, fill, REFERENCE)
    assert counts["bc_util"] == len(frame)
    assert not out[list(REFERENCE.numeric)].isna().any().any()
    assert np.isfinite(out[list(REFERENCE.numeric)].to_numpy()).all()
    assert out["age_earliest_cr"].median() > 3000       # about ten years of credit history, in days


def test_category_strings_format_each_value_like_its_text() -> None:
    numbers = pd.Series([36.0, 60.0, np.nan, 36.0, 2.5, np.inf], index=[5, 4, 3, 2, 1, 0])
    out = category_strings(numbers)
    assert out.tolist() == ["36", "60", MISSING_CATEGORY, "36", "2.5", "inf"]
    assert out.dtype == object and out.index.tolist() == [5, 4, 3, 2, 1, 0]
    text = pd.Series(["RENT", None, "OWN", np.nan, "RENT"], dtype="str")
    assert category_strings(text).tolist() == ["RENT", MISSING_CATEGORY, "OWN", MISSING_CATEGORY, "RENT"]
    assert category_strings(pd.Series([None, None], dtype=object)).tolist() == [MISSING_CATEGORY] * 2
    assert all(type(v) is str for v in category_strings(numbers))
