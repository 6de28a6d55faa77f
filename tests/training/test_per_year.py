"""Test metrics by issue year (metrics.json ``per_year``): by hand, in a training run and in report.md."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from training.metrics import FEW_ROWS, compute_metrics, per_year_block, per_year_metrics
from training.report import render_evaluation_report, render_report


def test_per_year_metrics_by_hand() -> None:
    issued = pd.Series(pd.to_datetime(["2011-03-01"] * 40 + ["2015-01-01"] * 5 + [None] * 3))
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 7, 48), rng.integers(0, 7, 48)
    y_pred[40:45] = y_true[40:45]                 # 2015 all right
    out = per_year_metrics(y_true, y_pred, issued)
    assert list(out) == ["2011", "2015"]          # rows without a date left out
    assert out["2011"]["rows"] == 40 and out["2011"]["few_rows"] is False
    assert out["2011"]["weighted_f1"] == compute_metrics(y_true[:40], y_pred[:40])["weighted_f1"]
    assert out["2015"] == {"rows": 5, "accuracy": 1.0, "weighted_f1": 1.0, "macro_f1": 1.0, "few_rows": True}
    assert 5 < FEW_ROWS <= 40


def test_per_year_block_only_with_dates() -> None:
    y = np.array([0, 1])
    assert per_year_block(pd.DataFrame({"grade": ["A", "B"]}), y, y) == {}
    assert per_year_block(pd.DataFrame({"issue_d": pd.to_datetime([None, None])}), y, y) == {}
    block = per_year_block(pd.DataFrame({"issue_d": pd.to_datetime(["2012-01-01", "2013-01-01"])}), y, y)
    assert list(block["per_year"]) == ["2012", "2013"]


def _block(weighted_f1: float, years: dict[str, tuple[int, float]]) -> dict:
    per_year = {y: {"rows": n, "accuracy": f, "weighted_f1": f, "macro_f1": f, "few_rows": n < FEW_ROWS}
                for y, (n, f) in years.items()}
    return {"weighted_f1": weighted_f1, "per_grade": {g: {"precision": 0, "recall": 0, "f1": 0, "support": 0}
                                                      for g in "ABCDEFG"}, "per_year": per_year}


def test_report_table_by_year_flags_few_rows() -> None:
    test = _block(0.7, {"2011": (900, 0.71), "2017": (12, 0.4)})
    baselines = {"hist_gradient_boosting": _block(0.69, {"2011": (900, 0.70), "2017": (12, 0.5)})}
    text = render_report({"test": test, "baselines": baselines, "rows": {}}, {})
    assert "## Weighted F1 by issue year (test rows)" in text
    assert "| year | rows | accuracy | weighted F1 | hist_gradient_boosting | note |" in text
    assert "| 2011 | 900 | 0.7100 | 0.7100 | 0.7000 |  |" in text
    assert f"| 2017 | 12 | 0.4000 | 0.4000 | 0.5000 | n<{FEW_ROWS} |" in text
    assert "by issue year (all rows)" in render_evaluation_report({"test": test, "rows": {}}, {})
    test.pop("per_year")
    assert "by issue year" not in render_report({"test": test, "rows": {}}, {})


def test_a_training_run_reports_its_test_rows_by_year(trained_run) -> None:
    result, _ = trained_run
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    per_year = metrics["test"]["per_year"]
    assert sum(y["rows"] for y in per_year.values()) == metrics["rows"]["test"]
    assert list(per_year) == sorted(per_year) and len(per_year) >= 2
    for name, baseline in metrics["baselines"].items():
        assert set(baseline["per_year"]) == set(per_year), name
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["data"]["repeated_ids"] == 0 and run["data"]["absent_columns"] == {}
    assert "## Weighted F1 by issue year (test rows)" in (result.run_dir / "report.md").read_text()
