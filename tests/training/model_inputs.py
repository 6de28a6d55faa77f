"""Small feature sets, frames and models shared by the model tests (layers, preprocessing, datasets, model,
fitting)."""
import keras
import numpy as np
import pandas as pd

from training.features import FeatureSet, FillValues
from training.model import BuiltModel, build_model

TINY = FeatureSet(name="tiny", numeric=("fico", "dti"), categorical=("home", "term"), description="test set")
TINY_FILL = FillValues(values={"fico": 700.0, "dti": -5.0}, rules={"fico": "mean", "dti": "mean"})

MONEY = FeatureSet("money", ("annual_inc", "fico"), ("addr_state", "term"), "test set")
MONEY_FILL = FillValues(values={"annual_inc": 50000.0, "fico": 700.0}, rules={})
STATES = [f"S{i:02d}" for i in range(30)]

DERIVED = FeatureSet("derived", ("loan_to_income", "age_earliest_cr", "il_util_ex_mort", "annual_inc"),
                     ("home",), "derived columns")


def tiny_frame() -> pd.DataFrame:
    """400 rows of TINY's columns, some missing."""
    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame({"fico": rng.normal(700, 30, n), "dti": rng.uniform(0, 40, n),
                       "home": rng.choice(["RENT", "OWN", "MORTGAGE"], n).astype(object),
                       "term": rng.choice([36.0, 60.0], n)})
    df.loc[::10, "fico"] = np.nan
    df.loc[::9, "home"] = np.nan
    return df


def money_frame() -> pd.DataFrame:
    """600 rows of MONEY's columns: skewed incomes (some missing), FICO bands, 30 states."""
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"annual_inc": rng.lognormal(11, 0.7, n), "fico": rng.choice(np.arange(660, 850, 5), n),
                       "addr_state": rng.choice(STATES, n).astype(object), "term": rng.choice([36.0, 60.0], n)})
    df.loc[::7, "annual_inc"] = np.nan
    return df


def record_frame(rows: int = 300, seed: int = 2) -> pd.DataFrame:
    """Parsed records with the raw inputs of DERIVED's columns (dates, zero and missing incomes)."""
    rng = np.random.default_rng(seed)
    issue = pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
    df = pd.DataFrame({
        "loan_amnt": rng.uniform(1000, 35000, rows).round(2), "annual_inc": rng.lognormal(11, 0.6, rows).round(2),
        "issue_d": issue, "earliest_cr_line": issue - pd.to_timedelta(rng.integers(100, 9000, rows), unit="D"),
        "total_bal_ex_mort": rng.uniform(0, 80000, rows), "revol_bal": rng.uniform(0, 30000, rows),
        "total_il_high_credit_limit": rng.uniform(0, 90000, rows),
        "home": rng.choice(["RENT", "OWN"], rows).astype(object)})
    df.loc[::11, "annual_inc"] = 0.0
    df.loc[::13, "annual_inc"] = np.nan
    df.loc[::7, "earliest_cr_line"] = pd.NaT
    df.loc[::5, "total_il_high_credit_limit"] = np.nan
    df.loc[::6, "home"] = np.nan
    return df



def build_tiny(tiny: pd.DataFrame) -> BuiltModel:
    """The default network on TINY (seed 0; the head steps on batches of 32 rows). A test module shares it
    as a fixture: ``tiny_built = pytest.fixture(build_tiny, scope="module", name="tiny_built")``."""
    keras.utils.set_random_seed(0)
    return build_model(TINY, tiny, TINY_FILL, batch_size=32)
