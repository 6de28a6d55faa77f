"""report.md: headline against each baseline, side-by-side metrics, audit findings, plots."""
from __future__ import annotations

import numpy as np

from training.metrics import compute_metrics, extra_metrics
from training.report import write_evaluation_report, write_report


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
                                            "audit": audit, "synthetic": True,
                                            "config": {"preset": "sample", "preset_why": "built-in synthetic sample"}})
    text = path.read_text()
    assert "Preset `sample` (built-in synthetic sample)." in text
    assert path.name == "report.md"
    assert "Keras model beats majority on weighted f1: 1.0000 vs" in text
    assert "Keras model ties hist_gradient_boosting" in text
    assert "| hist_gradient_boosting | 1.0000 |" in text
    assert "`installment`: rate-derived (amortisation)" in text
    assert "98.0% of rows within 0.1 pp" in text
    assert "Synthetic data" in text
    assert "![confusion_matrix.png](confusion_matrix.png)" in text
    assert "reliability.png" not in text  # only plots that exist are linked


def test_report_names_the_tuned_peers_choice_and_copes_without_baselines(tmp_path):
    y = np.array([0, 1, 2, 3, 4, 5, 6, 1, 1, 2])
    metrics = {"test": block(y, y), "rows": {}, "baselines": {"hist_gradient_boosting_tuned": block(y, y)}}
    search = {"budget": {"configurations": 20, "seed": 42, "wall_seconds": 12.34},
              "chosen": {"params": {"learning_rate": 0.2, "max_depth": None}, "iterations": 57,
                         "validation_weighted_f1": 0.71234}}
    text = write_report(tmp_path, metrics, {"baseline_search": {"hist_gradient_boosting_tuned": search}}).read_text()
    assert "| hist_gradient_boosting_tuned | 1.0000 |" in text
    assert ("`hist_gradient_boosting_tuned`: chosen on the validation rows from 20 configurations (seed 42, 12.3 s): "
            "learning_rate 0.2, max_depth None; 57 iterations, validation weighted F1 0.7123") in text
    bare = write_report(tmp_path, {"test": block(y, y), "rows": {}}, {}).read_text()
    assert "- no baselines computed" in bare and "chosen on the validation rows" not in bare
    assert bare.count("| Keras model |") == 1


def test_evaluation_report_names_the_run_and_data_and_links_its_plots(tmp_path):
    rng = np.random.default_rng(0)
    probs, y = rng.dirichlet(np.ones(7), size=200), rng.integers(0, 7, 200)
    metrics = {"test": compute_metrics(y, probs.argmax(axis=1)), "rows": {"train": 0, "validation": 0, "test": 200},
               "dropped": {"grade missing": 3}, "filled_columns": ["fico_range_low"]}
    run_info = {"model": "outputs/r7/model.keras", "run_id": "r7", "data": ["/d/a.csv", "/d/b.csv.gz"]}
    paths = write_evaluation_report(tmp_path, metrics=metrics, probs=probs, y_true=y, run_info=run_info)
    assert [p.name for p in paths] == ["confusion_matrix.png", "reliability.png", "report.md"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths[:2])
    text = paths[2].read_text()
    assert text.startswith("# Evaluation of run r7")
    assert "`outputs/r7/model.keras` on 2 data file(s): a.csv, b.csv.gz; 200 labelled rows" in text
    assert "3 (grade missing)" in text and "`fico_range_low`" in text
    assert "| Keras model |" in text and "n/a" not in text   # ECE etc. computed from the probabilities
    assert "![reliability.png](reliability.png)" in text and "history.png" not in text
    no_id = write_evaluation_report(tmp_path, metrics=metrics, probs=probs, y_true=y,
                                    run_info={"model": "m.keras", "run_id": None, "data": ["x.csv"]})
    assert no_id[2].read_text().startswith("# Evaluation of a model without a run id")
