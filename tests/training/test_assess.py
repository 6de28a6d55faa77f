"""Run-level quality steps: time split, audit refusal for `application`, assess() artifacts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathlib import Path

from training.assess import assess, audit_data, audit_features, time_split
from training.errors import ConfigError
from training.features import FeatureSet, FillValues


def test_time_split_tests_on_the_newest_fifth():
    rng = np.random.default_rng(0)
    dates = pd.Series(pd.to_datetime("2010-01-01") + pd.to_timedelta(rng.integers(0, 1000, 500), unit="D"))
    labels = rng.integers(0, 7, 500)
    train, validation, test = time_split(dates, labels, seed=1)
    assert len(test) == 100
    assert sorted([*train, *validation, *test]) == list(range(500))
    assert dates.iloc[test].min() >= dates.iloc[np.concatenate([train, validation])].max()
    again = time_split(dates, labels, seed=1)
    assert all((a == b).all() for a, b in zip((train, validation, test), again))


def test_audit_refuses_leaks_for_application_only():
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"dti": rng.uniform(0, 30, n), "last_fico_range_high": rng.normal(700, 30, n),
                          "grade": rng.choice(list("ABCDEFG"), n)})
    leaky = FeatureSet("application", ("dti", "last_fico_range_high"), (), "leaks")
    with pytest.raises(ConfigError, match="last_fico_range_high"):
        audit_features(frame, leaky, log=lambda s: None)
    lines: list[str] = []
    report = audit_features(frame, FeatureSet("reference", leaky.numeric, (), "may leak"), log=lines.append)
    assert report["flags"]["post_issuance"] == ["last_fico_range_high"]
    assert "last_fico_range_high" in lines[0]


def test_assess_adds_metrics_baselines_importance_and_plots(tmp_path):
    from training.evaluate import compute_metrics

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x": rng.integers(0, 7, n).astype(float), "noise": rng.normal(size=n),
                          "state": rng.choice(["CA", "NY"], n)})
    y = frame["x"].to_numpy(dtype=int)
    fs = FeatureSet("toy", ("x", "noise"), ("state",), "toy")
    fill = FillValues(values={"x": 3.0, "noise": 0.0}, rules={})

    def predict_proba(f):
        return np.eye(7)[f["x"].to_numpy(dtype=int)] * 0.9 + 0.1 / 7

    train, test = frame.iloc[:400], frame.iloc[400:]
    probs = predict_proba(test)
    metrics = {"test": compute_metrics(y[400:], probs.argmax(1))}
    assess(predict_proba=predict_proba, test_probs=probs, val_probs=None, metrics=metrics, train_frame=train,
           y_train=y[:400], test_frame=test, y_test=y[400:], y_val=None, feature_set=fs, fill=fill, seed=0,
           run_dir=tmp_path, log=lambda s: None)
    assert metrics["test"]["within_one_grade_accuracy"] == 1.0
    assert set(metrics["baselines"]) == {"majority", "logistic_regression", "hist_gradient_boosting"}
    assert metrics["permutation_importance"][0]["feature"] == "x"
    assert (tmp_path / "reliability.png").is_file() and (tmp_path / "importance.png").is_file()


def test_audit_data_on_a_synthetic_file_flags_the_reference_leaks(tmp_path):
    from training.synthetic import write_raw_csv

    path = tmp_path / "loans.csv"
    write_raw_csv(path, 2000, seed=3)
    out = audit_data(str(path), ["application", "reference"], log=lambda s: None)
    app, ref = out["feature_sets"]["application"], out["feature_sets"]["reference"]
    assert app["leaks"] is False
    assert {"installment", "installment_pct_inc"} <= set(ref["flags"]["rate_derived"])
    assert {"last_fico_range_high", "last_fico_range_low"} <= set(ref["flags"]["post_issuance"])
    assert ref["rate_reconstruction"]["share_within_0_1pp"] > 0.9  # synthetic installments are amortised


REAL_FILE = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lendingclub"
             / "lc_2007_2011_kuhnrl30_LoanStats3a.csv.gz")


@pytest.mark.realdata
def test_audit_on_the_real_2007_2011_file():
    if not REAL_FILE.is_file():
        pytest.skip(f"no real data at {REAL_FILE} (see ../shared/data/lendingclub/README.md)")
    out = audit_data(str(REAL_FILE), ["application", "reference"], log=lambda s: None)
    app, ref = out["feature_sets"]["application"], out["feature_sets"]["reference"]
    assert app["leaks"] is False
    rec = ref["rate_reconstruction"]
    assert rec["median_abs_error_pp"] < 0.05 and rec["share_within_0_1pp"] > 0.95
    assert "installment" in ref["flags"]["rate_derived"]
