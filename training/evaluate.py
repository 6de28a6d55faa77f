"""Metrics (scikit-learn) and plots (matplotlib, Agg backend) of a grade model.

`compute_metrics` gives the stable metrics.json block (`accuracy`, `weighted_f1`, `macro_f1`,
`per_grade`, `confusion_matrix`); `evaluate` runs a saved model on a labelled file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from training.data import GRADES

_CORRECT_CMAP = "Blues"
_WRONG_CMAP = "Oranges"


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict:
    """Accuracy, weighted/macro F1, per-grade precision/recall/f1/support and the 7x7 confusion matrix.

    Labels are grade indices 0..6; macro F1 averages over the grades present in y_true or y_pred.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if len(y_true) == 0:
        raise ValueError("no rows to evaluate")
    labels = list(range(len(GRADES)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "per_grade": {
            grade: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, grade in enumerate(GRADES)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def majority_baseline(y_train: Sequence[int], y_test: Sequence[int]) -> dict:
    """Metrics of always predicting the training split's most frequent grade."""
    majority = int(np.bincount(np.asarray(y_train, dtype=int), minlength=len(GRADES)).argmax())
    return compute_metrics(y_test, np.full(len(y_test), majority))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], path: Path, *, title: str = "Confusion matrix") -> Path:
    """Row-normalised percentages; correct cells in blue, incorrect cells in orange/red."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    percent = np.divide(counts * 100, totals, out=np.zeros_like(counts), where=totals > 0)
    diagonal = np.eye(len(counts), dtype=bool)

    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(np.ma.masked_where(diagonal, percent), cmap=_WRONG_CMAP, vmin=0, vmax=100)
    ax.imshow(np.ma.masked_where(~diagonal, percent), cmap=_CORRECT_CMAP, vmin=0, vmax=100)
    for i in range(len(counts)):
        for j in range(len(counts)):
            color = "white" if percent[i, j] > 60 else "black"
            ax.text(j, i, f"{percent[i, j]:.1f}%", ha="center", va="center", fontsize=8, color=color)
    ticks = range(len(counts))
    ax.set_xticks(ticks, GRADES[: len(counts)])
    ax.set_yticks(ticks, [f"{g} (n={int(t)})" for g, t in zip(GRADES, totals[:, 0])])
    ax.set_xlabel("predicted grade")
    ax.set_ylabel("true grade")
    ax.set_title(f"{title} (row-normalised %)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_history(history: Mapping[str, Sequence[float]], path: Path, *, best_epoch: int | None = None) -> Path:
    """Loss and accuracy per epoch, training and validation; a dashed line at the (1-based) best epoch."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = list(history.get(key, []))
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_json(data: dict, path: Path) -> Path:
    """Write JSON (indented, keys in insertion order) through a temporary file, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


@dataclass
class EvaluationResult:
    output_dir: Path
    metrics: dict
    dropped: dict[str, int]


def evaluate(model_path: str | Path, data: str | Path | Sequence[str | Path], output_dir: str | Path, *,
             batch_size: int = 1024, max_bad_rows: float = 0.01,
             log: Callable[[str], None] = print) -> EvaluationResult:
    """A saved model on a labelled data file (all rows are test rows): metrics.json + confusion_matrix.png."""
    from training.data import load_loans
    from training.predict import load_model, predict_frame, required_raw_columns

    model = load_model(model_path)
    loaded = load_loans(data, required_raw_columns(model), require_grade=True, max_bad_rows=max_bad_rows)
    for reason, count in loaded.dropped.items():
        log(f"dropped {count} rows: {reason}")
    predictions = predict_frame(model, loaded.frame, batch_size=batch_size)
    y_true = loaded.frame["grade"].map({g: i for i, g in enumerate(GRADES)}).to_numpy(dtype=int)
    y_pred = predictions["grade"].map({g: i for i, g in enumerate(GRADES)}).to_numpy(dtype=int)
    metrics = {"test": compute_metrics(y_true, y_pred),
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
