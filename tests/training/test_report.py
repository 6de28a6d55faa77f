"""report.md: headline against each baseline, side-by-side metrics, audit findings, plots."""
from __future__ import annotations

import numpy as np

from training.metrics import compute_metrics, extra_metrics
from training.report import write_report


def block(y_true, y_pred):
    return {**compute_metrics(y_true, y_pred), **extra_metrics(y_true, np.eye(7)[y_pred])}


def test_report_headline_metrics_and_leaks(tmp_path):
    y = np.array([0, 1, 2, 3, 4, 5, 6, 1, 1, 2])
    good, bad = y.copy(), np.ones_like(y)
    metrics = {"test": block(y, good), "rows": {"train": 70, "validation": 15, "test": 10},
               "baselines": {"majority": block(y, bad), "hist_gradient_boosting": block(y, good)}}
    audit = {"summary": "feature set 'reference': rate-derived: installment", "rate_reconstruction":
             {"available": True, "median_abs_error_pp": 0.001, "share_within_0_1pp": 0.98},
             "features": {"installment": {"reasons": ["rate-derived (amortisation)"]}, "dti": {"reasons": []}}}
    (tmp_path / "confusion_matrix.png").write_bytes(b"\x89PNG")
    path = write_report(tmp_path, metrics, {"run_id": "r1", "feature_set": {"name": "reference"},
                                            "audit": audit, "synthetic": True})
    text = path.read_text()
    assert path.name == "report.md"
    assert "Keras model beats majority on weighted f1: 1.0000 vs" in text
    assert "Keras model ties hist_gradient_boosting" in text
    assert "| hist_gradient_boosting | 1.0000 |" in text
    assert "`installment`: rate-derived (amortisation)" in text
    assert "98.0% of rows within 0.1 pp" in text
    assert "Synthetic data" in text
    assert "![confusion_matrix.png](confusion_matrix.png)" in text
    assert "reliability.png" not in text  # only plots that exist are linked
