"""Leakage audit: which input features would let a model "predict" the grade from information an applicant
cannot have.

Three checks, for every feature of a feature set:

(a) post-issuance: the field is only known after the loan was listed/issued (documented patterns below);
(b) rate-derived: the interest rate (which LendingClub sets from the sub-grade) can be reconstructed from it:
    documented names (``int_rate``, ``installment``, ``sub_grade``, ...), any numeric column that behaves as the
    monthly payment of ``loan_amnt`` over ``term`` at ``int_rate`` (amortisation formula), and any near-monotone
    proxy of ``int_rate`` (|Spearman| >= 0.95);
(c) dominant: a one-feature decision tree predicts the grade far better than the median feature does.

``run_audit`` returns a JSON-serialisable dict; ``assert_no_leaks`` refuses the ``application`` feature set when
any (a) or (b) flag fires (``reference`` is allowed to leak, as the 2017 model did, but the report says so).
"""
from __future__ import annotations

import fnmatch
from typing import Any, Protocol, Sequence

import numpy as np
import pandas as pd

from training.data import GRADES
from training.errors import ConfigError
from training.features import as_float
from training.splits import stratified_split

# (a) Fields LendingClub fills in after the loan is listed or issued (payments, status, hardship, settlement,
# bureau pulls after issuance, investor funding).
POST_ISSUANCE_PATTERNS: dict[str, str] = {
    "last_*": "last payment / last credit pull / last FICO: recorded after issuance",
    "total_pymnt*": "payments received so far",
    "total_rec_*": "principal, interest and late fees received so far",
    "recoveries": "recovered after charge-off",
    "collection_recovery_fee": "fee on recoveries after charge-off",
    "out_prncp*": "outstanding principal after payments",
    "next_pymnt_d": "next payment date of a running loan",
    "loan_status": "outcome of the loan",
    "pymnt_plan": "payment plan put in place after issuance",
    "debt_settlement_*": "debt settlement after default",
    "settlement_*": "debt settlement after default",
    "hardship_*": "hardship plan after issuance",
    "deferral_term": "hardship deferral",
    "payment_plan_start_date": "hardship payment plan",
    "orig_projected_additional_accrued_interest": "hardship plan interest",
    "funded_amnt_inv": "amount investors funded after the (graded) listing",
}

# (b) Fields that are the rate or are computed from it (the rate is set from the sub-grade).
RATE_DERIVED: dict[str, str] = {
    "grade": "the label itself",
    "sub_grade": "the grade plus one digit",
    "int_rate": "set by LendingClub from the sub-grade",
    "installment": "amortisation of loan_amnt over term at int_rate",
    "installment_pct_inc": "derived from installment",
    "total_rec_int": "interest received: rate times balance",
}

# Columns the rate-reconstruction check reads when the frame has them (load them besides the features).
AUDIT_EXTRA_COLUMNS: tuple[str, ...] = ("int_rate", "installment", "loan_amnt", "term")

SPEARMAN_LIMIT = 0.95        # |rank correlation| with int_rate at or above which a numeric feature is a rate proxy
PAYMENT_MATCH_PP = 0.5       # median |implied rate - int_rate| (pp) at or below which a column is a payment
DOMINANCE_MARGIN = 0.25      # one-feature accuracy this far above the median feature's accuracy -> flagged (c)


class _FeatureSetLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def numeric(self) -> tuple[str, ...]: ...
    @property
    def categorical(self) -> tuple[str, ...]: ...


def post_issuance_reason(column: str) -> str | None:
    """Why ``column`` is only known after issuance, or None."""
    for pattern, reason in POST_ISSUANCE_PATTERNS.items():
        if fnmatch.fnmatchcase(column, pattern):
            return f"{pattern}: {reason}"
    return None


def implied_annual_rate(payment: Any, principal: Any, months: Any, *, iterations: int = 60) -> np.ndarray:
    """Annual rate in percent that makes ``payment`` the monthly instalment of ``principal`` over ``months``.

    Solves ``payment = principal * r / (1 - (1 + r) ** -months)`` for the monthly rate ``r`` by vectorised
    bisection on [0, 10%/month]. NaN where the inputs are missing, non-positive, or the payment is below the
    zero-rate instalment (``principal / months``) or above the 10%/month one.
    """
    pay = np.asarray(payment, dtype=float)
    amt = np.asarray(principal, dtype=float)
    n = np.asarray(months, dtype=float)
    pay, amt, n = np.broadcast_arrays(pay, amt, n)
    ok = np.isfinite(pay) & np.isfinite(amt) & np.isfinite(n) & (pay > 0) & (amt > 0) & (n > 0)
    pay, amt, n = np.where(ok, pay, 1.0), np.where(ok, amt, 1.0), np.where(ok, n, 1.0)

    def instalment(r: np.ndarray | float, amt: np.ndarray, n: np.ndarray) -> np.ndarray:
        return amt * r / -np.expm1(-n * np.log1p(r))

    ok &= (pay >= amt / n * (1 - 1e-9)) & (pay <= instalment(0.1, amt, n))
    pay, amt, n = pay[ok], amt[ok], n[ok]    # only the rows with a solution: few where a column is no payment
    lo = np.full(pay.shape, 1e-12)
    hi = np.full(pay.shape, 0.1)
    for _ in range(iterations):  # instalment is increasing in r
        mid = (lo + hi) / 2
        above = instalment(mid, amt, n) > pay
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    rate = np.full(ok.shape, np.nan)
    rate[ok] = (lo + hi) / 2 * 12 * 100
    return rate


def rate_match(implied: np.ndarray, int_rate: Any) -> dict[str, Any]:
    """How closely an implied rate (percent) matches ``int_rate`` (percent): median abs error and shares."""
    actual = np.asarray(int_rate, dtype=float)
    err = np.abs(implied - actual)
    err = err[np.isfinite(err)]
    if err.size == 0:
        return {"rows": 0, "median_abs_error_pp": None, "share_within_0_1pp": None, "share_within_0_5pp": None}
    return {
        "rows": int(err.size),
        "median_abs_error_pp": round(float(np.median(err)), 4),
        "share_within_0_1pp": round(float(np.mean(err <= 0.1)), 4),
        "share_within_0_5pp": round(float(np.mean(err <= 0.5)), 4),
    }


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    return as_float(frame[column])


def rate_reconstruction(frame: pd.DataFrame) -> dict[str, Any]:
    """The rate implied by ``installment``, ``loan_amnt`` and ``term`` versus ``int_rate`` (where present)."""
    needed = ("installment", "loan_amnt", "term")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        return {"available": False, "reason": f"columns not loaded: {', '.join(missing)}"}
    implied = implied_annual_rate(_numeric(frame, "installment"), _numeric(frame, "loan_amnt"), _numeric(frame, "term"))
    out: dict[str, Any] = {"available": True, "columns": list(needed),
                           "rows_solved": int(np.isfinite(implied).sum())}
    if "int_rate" in frame.columns:
        out.update(rate_match(implied, _numeric(frame, "int_rate")))
        out["compared_with"] = "int_rate"
    else:
        out["compared_with"] = None
    return out


def _rate_proxy_reason(frame: pd.DataFrame, column: str) -> str | None:
    """Data-driven (b): the column acts as the monthly payment, or is a near-monotone copy of int_rate."""
    if "int_rate" not in frame.columns or column == "int_rate":
        return None
    rate = _numeric(frame, "int_rate")
    values = _numeric(frame, column)
    both = values.notna() & rate.notna()
    if both.sum() < 30 or values[both].nunique() < 3:
        return None
    rho = values[both].corr(rate[both], method="spearman")
    if np.isfinite(rho) and abs(rho) >= SPEARMAN_LIMIT:
        return f"rank correlation {rho:.3f} with int_rate"
    if {"loan_amnt", "term"} <= set(frame.columns) and column not in ("loan_amnt", "term"):
        implied = implied_annual_rate(values, _numeric(frame, "loan_amnt"), _numeric(frame, "term"))
        match = rate_match(implied, rate)
        if match["rows"] >= max(30, 0.5 * both.sum()) and match["median_abs_error_pp"] <= PAYMENT_MATCH_PP:
            return (f"as a monthly payment of loan_amnt over term it implies int_rate within "
                    f"{match['median_abs_error_pp']} pp (median)")
    return None


def _grade_codes(labels: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(labels):
        return labels.to_numpy(dtype=int)
    return labels.map({g: i for i, g in enumerate(GRADES)}).to_numpy(dtype=float).astype(int)


def single_feature_accuracies(frame: pd.DataFrame, y: np.ndarray, numeric: Sequence[str],
                              categorical: Sequence[str], *, sample: int = 20000,
                              seed: int = 0) -> dict[str, float]:
    """Held-out accuracy of a small decision tree on each feature alone (categories: mean-grade encoded)."""
    from sklearn.tree import DecisionTreeClassifier

    idx = np.arange(len(frame))
    if len(idx) > sample:
        idx = np.random.default_rng(seed).choice(idx, size=sample, replace=False)
    fit_idx, test_idx = stratified_split(idx, y[idx], seed, test_size=0.3)
    out: dict[str, float] = {}
    for column in [*numeric, *categorical]:
        if column in categorical:
            cats = frame[column].astype("string").fillna("missing")
            means = pd.Series(y[fit_idx], index=cats.iloc[fit_idx].to_numpy()).groupby(level=0).mean()
            x = cats.map(means).astype(float).fillna(float(y[fit_idx].mean())).to_numpy()
        else:
            x = _numeric(frame, column).to_numpy()
        tree = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=seed)
        tree.fit(x[fit_idx, None], y[fit_idx])
        out[column] = round(float(np.mean(tree.predict(x[test_idx, None]) == y[test_idx])), 4)
    return out


def run_audit(frame: pd.DataFrame, feature_set: _FeatureSetLike, *, label: str = "grade",
              sample: int = 20000, seed: int = 0) -> dict[str, Any]:
    """Audit every feature of ``feature_set`` on ``frame`` (parsed, derived columns, with ``label``).

    Returns a JSON-serialisable dict: ``features`` (per feature: flags, reasons, one-feature accuracy),
    ``flags`` (lists per check), ``rate_reconstruction``, ``single_feature`` (model, rows, median accuracy,
    margin), ``leaks`` (any (a)/(b) flag) and a one-line ``summary``.
    """
    numeric, categorical = list(feature_set.numeric), list(feature_set.categorical)
    missing = [c for c in [*numeric, *categorical, label] if c not in frame.columns]
    if missing:
        raise ConfigError(f"audit: columns missing from the data: {', '.join(missing)}; load them or pick "
                          f"another feature set")
    features: dict[str, dict[str, Any]] = {}
    for column in [*numeric, *categorical]:
        reasons: list[str] = []
        post = post_issuance_reason(column)
        if post:
            reasons.append(f"post-issuance ({post})")
        rate = RATE_DERIVED.get(column)
        if rate is None and column in numeric:
            rate = _rate_proxy_reason(frame, column)
        if rate:
            reasons.append(f"rate-derived ({rate})")
        features[column] = {"kind": "numeric" if column in numeric else "categorical",
                            "post_issuance": post is not None, "rate_derived": rate is not None,
                            "dominant": False, "single_feature_accuracy": None, "reasons": reasons}

    y = _grade_codes(frame[label])
    single: dict[str, Any] = {"model": "DecisionTreeClassifier(max_depth=6, min_samples_leaf=20) per feature",
                              "margin": DOMINANCE_MARGIN}
    if len(frame) >= 50 and features:
        accs = single_feature_accuracies(frame, y, numeric, categorical, sample=sample, seed=seed)
        median = float(np.median(list(accs.values())))
        counts = np.bincount(y, minlength=len(GRADES))
        single.update(rows=int(min(len(frame), sample)), median_accuracy=round(median, 4),
                      majority_accuracy=round(float(counts.max() / counts.sum()), 4))
        for column, acc in accs.items():
            features[column]["single_feature_accuracy"] = acc
            if acc - median >= DOMINANCE_MARGIN:
                features[column]["dominant"] = True
                features[column]["reasons"].append(
                    f"dominant (one-feature accuracy {acc:.3f} vs median {median:.3f})")
    else:
        single["skipped"] = f"{len(frame)} rows: too few for one-feature models"

    flags = {key: [c for c, f in features.items() if f[key]]
             for key in ("post_issuance", "rate_derived", "dominant")}
    leaks = bool(flags["post_issuance"] or flags["rate_derived"])
    parts = [f"{key.replace('_', '-')}: {', '.join(cols)}" for key, cols in flags.items() if cols]
    summary = (f"feature set '{feature_set.name}': " + ("; ".join(parts) if parts else "no leaks found"))
    return {"feature_set": feature_set.name, "rows": int(len(frame)), "features": features, "flags": flags,
            "rate_reconstruction": rate_reconstruction(frame), "single_feature": single, "leaks": leaks,
            "summary": summary}


def leaking_features(report: dict[str, Any]) -> list[str]:
    """Features flagged (a) post-issuance or (b) rate-derived, in report order."""
    return [c for c, f in report["features"].items() if f["post_issuance"] or f["rate_derived"]]


def assert_no_leaks(report: dict[str, Any], feature_set: _FeatureSetLike | str) -> None:
    """Raise ConfigError when ``application`` would train on a feature flagged (a) or (b)."""
    name = feature_set if isinstance(feature_set, str) else feature_set.name
    if name != "application":
        return
    leaks = leaking_features(report)
    if leaks:
        detail = "; ".join(f"{c} ({report['features'][c]['reasons'][0]})" for c in leaks)
        raise ConfigError(f"feature set 'application' must not use leaking features: {detail}; remove them, "
                          f"or train the 'reference' set (--features reference) to reproduce the 2017 model")
