"""Leakage audit: each flag fires on data built to leak, and stays quiet on clean data."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from training.audit import assert_no_leaks, implied_annual_rate, leaking_features, post_issuance_reason, run_audit
from training.errors import ConfigError

GRADES = "ABCDEFG"


@dataclass(frozen=True)
class FS:
    """Stands in for training.features.FeatureSet (the audit only reads these attributes)."""
    name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()


CLEAN = ("annual_inc", "dti", "fico_range_high", "loan_amnt")


def loans(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """Lending-Club-shaped parsed rows: grade follows FICO with noise; rate from grade; installment amortised."""
    rng = np.random.default_rng(seed)
    fico = rng.normal(700, 35, n)
    code = np.clip(np.round((760 - fico) / 22 + rng.normal(0, 1.0, n)), 0, 6).astype(int)
    rate = 6.0 + 3.2 * code + rng.uniform(0, 2.5, n)                      # percent
    amount = rng.choice(np.arange(1000, 35001, 25), n).astype(float)
    term = rng.choice([36.0, 60.0], n)
    r = rate / 1200
    installment = np.round(amount * r / (1 - (1 + r) ** -term), 2)
    return pd.DataFrame({
        "annual_inc": rng.lognormal(11, 0.5, n), "dti": rng.uniform(0, 30, n), "fico_range_high": fico,
        "loan_amnt": amount, "term": term, "int_rate": rate, "installment": installment,
        "monthly_payment": installment,                                      # the installment under another name
        "last_fico_range_high": fico - 40 * code + rng.normal(0, 10, n),    # pulled after issuance
        "secret_score": code + rng.normal(0, 0.2, n),                       # an innocent name, the label inside
        "addr_state": rng.choice(["CA", "NY", "TX", "FL"], n),
        "grade": np.array(list(GRADES))[code],
    })


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return loans()


def test_implied_rate_matches_the_amortisation_formula():
    # 10,000 over 36 months at 12% a year is 332.14 a month; 60 months at 6% on 20,000 is 386.66
    got = implied_annual_rate([332.14, 386.66], [10000, 20000], [36, 60])
    assert got == pytest.approx([12.0, 6.0], abs=0.01)


def test_implied_rate_is_nan_for_impossible_inputs():
    got = implied_annual_rate([0.0, np.nan, 100.0, 5000.0], [1000, 1000, 36000, 1000], [36, 36, 36, 36])
    assert np.isnan(got).all()  # zero payment, missing, below the zero-rate instalment, absurd rate


def test_clean_features_raise_no_flag(frame):
    report = run_audit(frame, FS("application", CLEAN, ("addr_state",)))
    assert report["flags"] == {"post_issuance": [], "rate_derived": [], "dominant": []}
    assert report["leaks"] is False
    assert "no leaks" in report["summary"]
    assert all(f["single_feature_accuracy"] is not None for f in report["features"].values())
    json.dumps(report)  # JSON-serialisable, as run.json needs
    assert_no_leaks(report, "application")  # nothing to refuse


def test_post_issuance_flag_fires(frame):
    report = run_audit(frame, FS("application", (*CLEAN, "last_fico_range_high")))
    assert report["flags"]["post_issuance"] == ["last_fico_range_high"]
    assert report["leaks"] is True


@pytest.mark.parametrize("column", ["total_pymnt_inv", "total_rec_prncp", "recoveries", "out_prncp",
                                   "loan_status", "hardship_flag", "debt_settlement_flag", "last_pymnt_d"])
def test_documented_post_issuance_fields(column):
    assert post_issuance_reason(column) is not None


@pytest.mark.parametrize("column", ["mths_since_last_delinq", "inq_last_6mths", "fico_range_low", "total_acc"])
def test_application_fields_are_not_post_issuance(column):
    assert post_issuance_reason(column) is None


def test_rate_flags_fire_by_name_and_by_reconstruction(frame):
    report = run_audit(frame, FS("application", (*CLEAN, "installment", "monthly_payment", "int_rate")))
    assert set(report["flags"]["rate_derived"]) == {"installment", "monthly_payment", "int_rate"}
    reasons = report["features"]["monthly_payment"]["reasons"][0]
    assert "monthly payment" in reasons  # found from the data, not the name
    rec = report["rate_reconstruction"]
    assert rec["available"] and rec["compared_with"] == "int_rate"
    assert rec["median_abs_error_pp"] < 0.05
    assert rec["share_within_0_1pp"] > 0.95


def test_rate_reconstruction_reports_noise_honestly(frame):
    noisy = frame.assign(installment=frame["installment"] * np.random.default_rng(0).uniform(0.8, 1.2, len(frame)))
    rec = run_audit(noisy, FS("reference", CLEAN))["rate_reconstruction"]
    assert rec["median_abs_error_pp"] > 1.0
    assert rec["share_within_0_1pp"] < 0.2


def test_dominant_feature_flag_fires(frame):
    # without int_rate in the data the rate checks cannot see it: only the one-feature models can
    report = run_audit(frame.drop(columns=["int_rate"]), FS("reference", (*CLEAN, "secret_score")))
    assert report["flags"]["dominant"] == ["secret_score"]
    feat = report["features"]["secret_score"]
    assert feat["single_feature_accuracy"] > report["single_feature"]["median_accuracy"] + 0.25
    assert report["leaks"] is False  # (c) is reported, not refused


def test_application_refuses_leaks_and_reference_does_not(frame):
    report = run_audit(frame, FS("application", (*CLEAN, "installment", "last_fico_range_high")))
    assert leaking_features(report) == ["installment", "last_fico_range_high"]
    with pytest.raises(ConfigError, match="installment.*last_fico_range_high"):
        assert_no_leaks(report, FS("application", ()))
    assert_no_leaks(report, "reference")  # the 2017 set may leak; the report says so


def test_missing_columns_are_a_config_error(frame):
    with pytest.raises(ConfigError, match="not_a_column"):
        run_audit(frame, FS("application", ("not_a_column",)))
