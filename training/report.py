"""`report.md` of a run (headline against the baselines, metrics side by side, per grade, per issue year, leaks,
plots) and of an evaluation (a saved model on a labelled file: metrics, per grade, per issue year, confusion
matrix and reliability plots)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.data import GRADES
from training.data.sources import describe_files, short_names
from training.metrics import FEW_ROWS, extra_metrics, versus_baselines
from training.plots import plot_confusion_matrix, plot_reliability, plot_subject

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
    config = run_info.get("config", {})
    rows = metrics.get("rows", {})
    lines += [f"Feature set `{name}`, {config.get('split', 'random')} split: {rows.get('train', '?')} train, "
              f"{rows.get('validation', '?')} validation, {rows.get('test', '?')} test rows.", ""]
    if config.get("preset"):
        lines += [f"Preset `{config['preset']}` ({config.get('preset_why') or 'given'}).", ""]
    files = [f.get("uri", "?") for f in run_info.get("data", {}).get("files", [])]
    if files and not run_info.get("synthetic"):
        lines += [f"Data: {describe_files(files)}.", ""]
    lines += ["## Headline (test rows)", ""]
    lines += [f"- {line}" for line in versus_baselines(test, baselines)] or ["- no baselines computed"]
    lines += _metric_tables(test, baselines, "test rows")
    lines += _per_year_lines(test, baselines, "test rows")
    lines += _search_lines(run_info.get("baseline_search") or {})
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
    lines += _importance(metrics.get("permutation_importance") or [])
    return "\n".join(lines + _plot_links(plots)) + "\n"


def _metric_tables(test: dict[str, Any], baselines: dict[str, dict[str, Any]], rows: str) -> list[str]:
    """The metrics side by side (the Keras model, then each baseline) and the Keras model per grade."""
    lines = ["", f"## Metrics ({rows})", "",
             "| model | " + " | ".join(label for _, label in _COLUMNS) + " |",
             "|---|" + "---:|" * len(_COLUMNS)]
    for model, values in (("Keras model", test), *baselines.items()):
        lines.append(f"| {model} | " + " | ".join(_cell(values, key) for key, _ in _COLUMNS) + " |")
    lines += ["", f"## Keras model per grade ({rows})", "", "| grade | precision | recall | F1 | support |",
              "|---|---:|---:|---:|---:|"]
    for grade in GRADES:
        g = test["per_grade"][grade]
        lines.append(f"| {grade} | {g['precision']:.3f} | {g['recall']:.3f} | {g['f1']:.3f} | {g['support']} |")
    return lines


def _per_year_lines(test: dict[str, Any], baselines: dict[str, dict[str, Any]], rows: str) -> list[str]:
    """Weighted F1 by issue year (metrics.json's ``per_year``): the Keras model's rows and accuracy, then each
    baseline's weighted F1; years with few rows flagged."""
    years = test.get("per_year") or {}
    if not years:
        return []
    others = [(name, b["per_year"]) for name, b in baselines.items() if b.get("per_year")]
    lines = ["", f"## Weighted F1 by issue year ({rows})", "",
             "| year | rows | accuracy | weighted F1 | " + "".join(f"{name} | " for name, _ in others) + "note |",
             "|---|---:|---:|---:|" + "---:|" * len(others) + "---|"]
    for year, m in years.items():
        cells = [_cell(per.get(year, {}), "weighted_f1") for _, per in others]
        note = f"n<{FEW_ROWS}" if m.get("few_rows") else ""
        lines.append(f"| {year} | {m['rows']} | {m['accuracy']:.4f} | {m['weighted_f1']:.4f} | "
                     + "".join(f"{c} | " for c in cells) + f"{note} |")
    return lines


def _search_lines(searches: dict[str, dict[str, Any]]) -> list[str]:
    """How each tuned baseline was chosen (run.json's ``baseline_search``)."""
    lines = []
    for name, search in searches.items():
        budget, chosen = search["budget"], search["chosen"]
        params = ", ".join(f"{k} {v}" for k, v in chosen["params"].items())
        lines += ["", f"`{name}`: chosen on the validation rows from {budget['configurations']} configurations "
                  f"(seed {budget['seed']}, {budget['wall_seconds']:.1f} s): {params}; {chosen['iterations']} "
                  f"iterations, validation weighted F1 {chosen['validation_weighted_f1']:.4f} (all in run.json, "
                  f"baseline_search)."]
    return lines


def _importance(importance: list[dict[str, Any]]) -> list[str]:
    """The ten most important features; features empty in every row measured are named after them."""
    ranked = [r for r in importance if not r.get("empty")]
    empty = [r["feature"] for r in importance if r.get("empty")]
    if not importance:
        return []
    lines = ["", "## Most important features (permutation, accuracy drop)", ""]
    lines += [f"{i}. `{r['feature']}` {r['importance']:.4f}" for i, r in enumerate(ranked[:10], 1)]
    if empty:
        lines += ["", f"Left out, empty in every row measured ({len(empty)}): "
                  + ", ".join(f"`{c}`" for c in empty) + "."]
    return lines


def _plot_links(plots: tuple[str, ...]) -> list[str]:
    return ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots] if plots else []


def write_report(run_dir: Path, metrics: dict[str, Any], run_info: dict[str, Any]) -> Path:
    """Write ``<run_dir>/report.md`` from the run's metrics.json and run.json contents; returns its path."""
    run_dir = Path(run_dir)
    plots = tuple(p for p in _PLOTS if (run_dir / p).is_file())
    path = run_dir / "report.md"
    path.write_text(render_report(metrics, run_info, plots))
    return path


def render_evaluation_report(metrics: dict[str, Any], run_info: dict[str, Any],
                             plots: tuple[str, ...] = ()) -> str:
    """The Markdown text of an evaluation (see ``write_evaluation_report``)."""
    run_id, data = run_info.get("run_id"), list(run_info.get("data") or [])
    lines = [f"# Evaluation of {f'run {run_id}' if run_id else 'a model without a run id'}", "",
             f"Model `{run_info.get('model', '?')}` on {len(data)} data file(s): {short_names(data) or 'none'}; "
             f"{metrics.get('rows', {}).get('test', '?')} labelled rows, all scored as test rows."]
    dropped = metrics.get("dropped") or {}
    if dropped:
        lines += ["", "Rows dropped: " + "; ".join(f"{n} ({reason})" for reason, n in dropped.items()) + "."]
    filled = metrics.get("filled_columns") or []
    if filled:
        lines += ["", f"Columns absent from the data, filled as missing in every row ({len(filled)}): "
                  + ", ".join(f"`{c}`" for c in filled) + "."]
    lines += _metric_tables(metrics["test"], {}, "all rows")
    lines += _per_year_lines(metrics["test"], {}, "all rows")
    return "\n".join(lines + _plot_links(plots)) + "\n"


def write_evaluation_report(output_dir: Path, *, metrics: dict[str, Any], probs: np.ndarray, y_true: np.ndarray,
                            run_info: dict[str, Any]) -> list[Path]:
    """Write confusion_matrix.png, reliability.png and report.md of an evaluation into ``output_dir``;
    ``run_info``: ``model`` (its path), ``run_id`` (the model's training run, or None) and ``data`` (the file
    names), named in the report and the plot titles. Returns the three paths."""
    out = Path(output_dir)
    subject = plot_subject(run_info.get("run_id"), list(run_info.get("data") or []))
    paths = [plot_confusion_matrix(metrics["test"]["confusion_matrix"], out / "confusion_matrix.png",
                                   title="All rows", subject=subject),
             plot_reliability(probs, y_true, out / "reliability.png", title="Reliability (all rows)",
                              subject=subject)]
    shown = {**metrics, "test": {**extra_metrics(y_true, probs), **metrics["test"]}}   # ECE etc. when absent
    report = out / "report.md"
    report.write_text(render_evaluation_report(shown, run_info, tuple(p.name for p in paths)))
    return [*paths, report]
