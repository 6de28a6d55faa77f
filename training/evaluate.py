"""The `evaluate` command: a saved model on a labelled data file, every row a test row.

Writes metrics.json (the `test` block of training.metrics.compute_metrics) and confusion_matrix.png.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from training.data import load_loans
from training.metrics import compute_metrics, grade_labels
from training.plots import plot_confusion_matrix
from training.run_record import write_json


@dataclass
class EvaluationResult:
    output_dir: Path
    metrics: dict
    dropped: dict[str, int]


def evaluate(model_path: str | Path, data: str | Path | Sequence[str | Path], output_dir: str | Path, *,
             batch_size: int = 1024, max_bad_rows: float = 0.01,
             log: Callable[[str], None] = print) -> EvaluationResult:
    """A saved model on a labelled data file (all rows are test rows): metrics.json + confusion_matrix.png."""
    from training.predict import load_model, predict_frame, required_raw_columns

    model = load_model(model_path)
    loaded = load_loans(data, required_raw_columns(model), require_grade=True, max_bad_rows=max_bad_rows)
    for reason, count in loaded.dropped.items():
        log(f"dropped {count} rows: {reason}")
    predictions = predict_frame(model, loaded.frame, batch_size=batch_size)
    y_true, y_pred = grade_labels(loaded.frame), grade_labels(predictions)
    metrics: dict[str, Any] = {"test": compute_metrics(y_true, y_pred),
               "rows": {"train": 0, "validation": 0, "test": int(len(y_true))},
               "model": str(model_path),
               "data": [{"uri": f.uri, "sha256": f.sha256, "rows": f.rows} for f in loaded.files],
               "dropped": dict(loaded.dropped)}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(metrics, out / "metrics.json")
    plot_confusion_matrix(metrics["test"]["confusion_matrix"], out / "confusion_matrix.png",
                          title="Test rows")
    test = metrics["test"]
    log(f"evaluated {len(y_true)} rows: accuracy {test['accuracy']:.4f}, weighted F1 "
        f"{test['weighted_f1']:.4f}, macro F1 {test['macro_f1']:.4f}; wrote {out}")
    return EvaluationResult(output_dir=out, metrics=metrics, dropped=dict(loaded.dropped))
