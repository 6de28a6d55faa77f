"""The `evaluate` command: a saved model on a labelled data file, every row a test row.

Writes metrics.json (the ``test`` block as in a training run: training.metrics' classification, ordinal and
calibration metrics, and ``per_year`` where the data has ``issue_d``), and the run's report.md,
confusion_matrix.png and reliability.png (training.report.write_evaluation_report). metrics.json also records
the model, its training run, the data files, the rows dropped by reason, ``filled_columns`` (absent from the
data, treated as missing in every row: ``fill_missing_columns``) and ``renamed_columns``
(read under another LendingClub spelling).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from training.metrics import compute_metrics, extra_metrics, grade_labels, per_year_block
from training.run_record import write_json


def evaluate(model_path: str | Path, data: str | Path | Sequence[str | Path], output_dir: str | Path, *,
             max_bad_rows: float = 0.01, fill_missing_columns: bool = False, batch_size: int = 1024,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """A saved model on labelled data (all rows are test rows); returns the metrics written to metrics.json."""
    from training.predict import PROBABILITY_COLUMNS, score_data
    from training.report import write_evaluation_report

    scored = score_data(model_path, data, require_grade=True, max_bad_rows=max_bad_rows,
                        fill_missing_columns=fill_missing_columns, batch_size=batch_size,
                        dropped_where=f"{Path(output_dir) / 'metrics.json'} (dropped)", log=log)
    loaded = scored.loaded
    probs = scored.predictions[list(PROBABILITY_COLUMNS)].to_numpy()
    y_true = grade_labels(loaded.frame)
    y_pred = probs.argmax(axis=1)
    metrics: dict[str, Any] = {
        "test": {**compute_metrics(y_true, y_pred), **extra_metrics(y_true, probs),
                 **per_year_block(loaded.frame, y_true, y_pred)},
        "rows": {"train": 0, "validation": 0, "test": int(len(y_true))},
        "model": str(model_path),
        "run_id": training_run_id(model_path),
        "data": [{"uri": f.uri, "sha256": f.sha256, "rows": f.rows} for f in loaded.files],
        "dropped": dict(loaded.dropped),
        "filled_columns": list(loaded.filled),
        "renamed_columns": loaded.renamed,
    }
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(metrics, out / "metrics.json")
    run_info = {"model": str(model_path), "run_id": metrics["run_id"],
                "data": [f.uri for f in loaded.files], "filled_columns": metrics["filled_columns"]}
    write_evaluation_report(out, metrics=metrics, probs=probs, y_true=y_true, run_info=run_info)
    test = metrics["test"]
    log(f"evaluated {len(y_true)} rows: accuracy {test['accuracy']:.4f}, weighted F1 "
        f"{test['weighted_f1']:.4f}, macro F1 {test['macro_f1']:.4f}; wrote {out}")
    return metrics


def training_run_id(model_path: str | Path) -> str | None:
    """The run id in the run.json beside the model (a training run's directory), or None."""
    path = Path(model_path).with_name("run.json")
    try:
        run_id = json.loads(path.read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return run_id if isinstance(run_id, str) else None
