"""The PNG plots of a run (matplotlib, Agg backend): confusion matrix, history, reliability, importance.

Every plot's title names its subject (``plot_subject``: the run id and the data) on a second line.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from training.data import GRADES
from training.data.sources import short_names
from training.metrics import expected_calibration_error, reliability_bins

_CORRECT_CMAP = "Blues"
_WRONG_CMAP = "Oranges"


def plot_subject(run_id: str | None, data: Sequence[str] | None) -> str:
    """"run <id> · <data>": ``data`` the data files (base names, shortened when many), None for the built-in
    synthetic sample; a model without a run id is "model without a run id"."""
    who = f"run {run_id}" if run_id else "model without a run id"
    return f"{who} · {'synthetic sample' if data is None else short_names(data, limit=3)}"


def _titled(title: str, subject: str) -> str:
    return f"{title}\n{subject}" if subject else title


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion_matrix(matrix: ArrayLike, path: Path, *, title: str = "Confusion matrix",
                          subject: str = "") -> Path:
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
    ax.set_title(_titled(f"{title} (row-normalised %)", subject))
    return _save(fig, path)


def plot_history(history: Mapping[str, Sequence[float]], path: Path, *, best_epoch: int | None = None,
                 subject: str = "") -> Path:
    """Loss and accuracy per epoch (integer ticks), training and validation; a dashed line at the (1-based)
    best epoch."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    if subject:
        fig.suptitle(subject, fontsize=10)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = list(history.get(key, []))
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_reliability(probs: np.ndarray, y_true: ArrayLike, path: Path, *, n_bins: int = 15,
                     title: str = "Reliability (test rows)", subject: str = "") -> Path:
    """Accuracy per confidence bin against the diagonal, with the ECE in the title; rows per bin below."""
    plt = _pyplot()
    bins = reliability_bins(probs, y_true, n_bins)
    ece = expected_calibration_error(probs, y_true, n_bins)
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    width = 1.0 / n_bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.bar(centres, [b["accuracy"] for b in bins], width=width * 0.9, color="tab:blue", alpha=0.8,
            label="accuracy")
    top.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="tab:orange",
             label="(mean confidence, accuracy)")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(_titled(f"{title}: ECE {ece:.3f}", subject))
    top.legend(loc="upper left")
    bottom.bar(centres, [b["rows"] for b in bins], width=width * 0.9, color="tab:grey")
    bottom.set_xlabel("confidence (probability of the predicted grade)")
    bottom.set_ylabel("rows")
    bottom.set_xlim(0, 1)
    return _save(fig, path)


def plot_importance(importances: Sequence[dict[str, Any]], path: Path, *, top: int = 20,
                    title: str = "Permutation importance (test rows)", subject: str = "") -> Path:
    """Horizontal bars of the ``top`` most important features, most important at the top; features
    marked ``empty`` (no value in the rows measured) are left out and named in a note below."""
    plt = _pyplot()
    shown = [r for r in importances if not r.get("empty")][:top][::-1]
    empty = [r["feature"] for r in importances if r.get("empty")]
    note = textwrap.wrap(f"Left out, empty in every row measured ({len(empty)}): {', '.join(empty)}", 110) \
        if empty else []
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(shown) + 1 + 0.15 * len(note))))
    ax.barh([r["feature"] for r in shown], [r["importance"] for r in shown],
            xerr=[r["std"] for r in shown], color="tab:blue")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("accuracy drop when the feature is shuffled")
    ax.set_title(_titled(title, subject))
    if note:   # below the x label; tight_layout makes room for it
        ax.annotate("\n".join(note), xy=(0, 0), xycoords="axes fraction", xytext=(-100, -40),
                    textcoords="offset points", va="top", ha="left", fontsize=7, color="dimgrey")
    return _save(fig, path)


def write_run_plots(run_dir: Path, *, metrics: dict[str, Any], history: Mapping[str, Sequence[float]],
                    best_epoch: int | None, test_probs: np.ndarray, y_test: ArrayLike,
                    subject: str = "") -> list[Path]:
    """A training run's plots in ``run_dir``: confusion matrix and reliability of the test rows, history,
    permutation importance (metrics.json's ``permutation_importance``); ``subject`` (``plot_subject``)
    in every title."""
    return [plot_confusion_matrix(metrics["test"]["confusion_matrix"], run_dir / "confusion_matrix.png",
                                  title="Test rows", subject=subject),
            plot_history(history, run_dir / "history.png", best_epoch=best_epoch, subject=subject),
            plot_reliability(test_probs, y_test, run_dir / "reliability.png", subject=subject),
            plot_importance(metrics["permutation_importance"], run_dir / "importance.png", subject=subject)]
