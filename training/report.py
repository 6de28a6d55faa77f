"""`report.md` of a run: headline against the baselines, metrics side by side, per grade, leaks, plots."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from training.data import GRADES
from training.metrics import versus_baselines

_COLUMNS = (("accuracy", "accuracy"), ("weighted_f1", "weighted F1"), ("macro_f1", "macro F1"),
            ("mean_abs_grade_error", "mean abs grade error"), ("within_one_grade_accuracy", "within one grade"),
            ("expected_calibration_error", "ECE"))
_PLOTS = ("confusion_matrix.png", "history.png", "reliability.png", "importance.png")


def _cell(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"


def render_report(metrics: dict[str, Any], run_info: dict[str, Any], plots: tuple[str, ...] = ()) -> str:
    """The Markdown text (see ``write_report``)."""
    test, baselines = metrics["test"], metrics.get("baselines", {})
    features = run_info.get("feature_set", {})
    name = features.get("name", "?") if isinstance(features, dict) else str(features)
    lines = [f"# Run {run_info.get('run_id', '?')}", ""]
    if run_info.get("synthetic"):
        lines += ["> **Synthetic data**: the built-in sample, not real loans; these numbers say nothing about "
                  "real Lending Club data.", ""]
    split = run_info.get("config", {}).get("split", "random")
    rows = metrics.get("rows", {})
    lines += [f"Feature set `{name}`, {split} split: {rows.get('train', '?')} train, "
              f"{rows.get('validation', '?')} validation, {rows.get('test', '?')} test rows.", "",
              "## Headline (test rows)", ""]
    lines += [f"- {line}" for line in versus_baselines(test, baselines)] or ["- no baselines computed"]
    lines += ["", "## Metrics (test rows)", "",
              "| model | " + " | ".join(label for _, label in _COLUMNS) + " |",
              "|---|" + "---:|" * len(_COLUMNS)]
    for model, values in (("Keras model", test), *baselines.items()):
        lines.append(f"| {model} | " + " | ".join(_cell(values, key) for key, _ in _COLUMNS) + " |")
    lines += ["", "## Keras model per grade (test rows)", "", "| grade | precision | recall | F1 | support |",
              "|---|---:|---:|---:|---:|"]
    for grade in GRADES:
        g = test["per_grade"][grade]
        lines.append(f"| {grade} | {g['precision']:.3f} | {g['recall']:.3f} | {g['f1']:.3f} | {g['support']} |")
    audit = run_info.get("audit")
    lines += ["", "## Leakage audit", ""]
    if audit:
        lines.append(f"{audit['summary']}.")
        rec = audit.get("rate_reconstruction", {})
        if rec.get("available") and rec.get("median_abs_error_pp") is not None:
            lines.append(f"Rate implied by installment, loan_amnt and term vs int_rate: median abs error "
                         f"{rec['median_abs_error_pp']} pp, {rec['share_within_0_1pp']:.1%} of rows within 0.1 pp.")
        for column, info in audit["features"].items():
            if info["reasons"]:
                lines.append(f"- `{column}`: " + "; ".join(info["reasons"]))
    else:
        lines.append("Not run.")
    importance = metrics.get("permutation_importance")
    if importance:
        lines += ["", "## Most important features (permutation, accuracy drop)", ""]
        lines += [f"{i}. `{r['feature']}` {r['importance']:.4f}" for i, r in enumerate(importance[:10], 1)]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(run_dir: Path, metrics: dict[str, Any], run_info: dict[str, Any]) -> Path:
    """Write ``<run_dir>/report.md`` from the run's metrics.json and run.json contents; returns its path."""
    run_dir = Path(run_dir)
    plots = tuple(p for p in _PLOTS if (run_dir / p).is_file())
    path = run_dir / "report.md"
    path.write_text(render_report(metrics, run_info, plots))
    return path
