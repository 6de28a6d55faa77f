"""The leakage audit on data: a run's audit step refuses leaks for `application`; the `audit` command."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data_audit import audit_data, audit_features
from training.errors import ConfigError
from training.features import FeatureSet


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
