"""The commands that run on this machine: train, audit, evaluate, predict, synthesize.

Registered in training.commands' registry. Each one first checks its arguments and paths (training.path_checks,
standard library only), so a mistake is answered before anything heavy is imported; then it loads TensorFlow
quietly (training.tf_quiet) when it needs it, and only then imports its working module.
"""
from __future__ import annotations

import argparse
from typing import Any

from training.commands import add_json_flag, command, fraction, json_stdout, positive_int, print_json
from training.data.cache_dir import add_cache_arguments, chosen_cache_dir, using_cache
from training.errors import ConfigError
from training.path_checks import (
    check_data,
    check_model,
    check_output_dir,
    check_output_file,
    check_run_dir,
    replace_run_dir,
)
from training.prediction_files import dropped_path
from training.train_flags import FEATURE_SET_NAMES, MIN_SAMPLE_ROWS, add_train_arguments


def _print_line(line: str) -> None:
    print(line, flush=True)


def _one_or_many(data: list[str]) -> str | list[str]:
    return data if len(data) > 1 else data[0]


def _add_force(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--force", action="store_true", help=f"overwrite {what}")


def _add_fill_missing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fill-missing-columns", action="store_true",
                   help="treat feature columns absent from the data (another Lending Club schema) as missing in "
                        "every row and fill them with the model's rules (listed in one warning)")


# ---- train ----

def _train_args(p: argparse.ArgumentParser) -> None:
    add_train_arguments(p)
    p.add_argument("--force", action="store_true",
                   help="replace an existing run of the same --run-id (its directory is deleted first)")
    add_json_flag(p, "the run's summary")


@command("train", "train the grade model and write outputs/<run-id>/", _train_args)
def _train(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < MIN_SAMPLE_ROWS:
        raise ConfigError(f"--sample must be at least {MIN_SAMPLE_ROWS} rows, got {args.sample}")
    check_data(args.data or ())
    replaced = check_run_dir(args.output, args.run_id, force=args.force)
    from training.tf_quiet import load_tensorflow

    load_tensorflow()
    from training.train import summary_lines, train, validate_config
    from training.train_flags import train_config_from_args

    config = train_config_from_args(args)
    validate_config(config)
    replace_run_dir(replaced)
    with json_stdout(args.json):
        result = train(config, log=_print_line)
    if args.json:
        print_json(train_summary(result))
    else:
        for line in summary_lines(result):
            print(line)
    return 0


def train_summary(result: Any) -> dict[str, Any]:
    """`train --json`'s object: the run, its artifacts and headline test metrics against the majority baseline."""
    from training.cloud.core.headline import headline

    metrics, info = result.metrics, result.run_info
    return {"run_id": info["run_id"], "run_dir": str(result.run_dir),
            "artifacts": sorted(p.name for p in result.run_dir.iterdir()),
            "synthetic": bool(info.get("synthetic")), "epochs_trained": result.epochs_trained,
            "wall_time_s": info.get("wall_time_s"), "rows": metrics["rows"], "test": headline(metrics["test"]),
            "majority_baseline": headline(metrics.get("baselines", {}).get("majority"))}


# ---- audit ----

def feature_set_list(text: str) -> list[str]:
    """An argparse type: comma-separated feature set names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FEATURE_SET_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown feature set {', '.join(map(repr, unknown)) or repr(text)} "
                                         f"(choose from {', '.join(FEATURE_SET_NAMES)})")
    return names


def _audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="labelled LendingClub CSV (.csv/.gz/.zip), glob or s3://bucket/key; repeatable")
    p.add_argument("--features", type=feature_set_list, default=list(FEATURE_SET_NAMES), metavar="NAMES",
                   help=f"comma-separated feature sets to audit (default {','.join(FEATURE_SET_NAMES)})")
    p.add_argument("--output", metavar="FILE", help="also write the audit report as JSON to FILE")
    _add_force(p, "an existing --output file")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01, help="largest share of unusable rows (default 0.01)")
    add_cache_arguments(p)


@command("audit", "leakage audit of the feature sets on a labelled data file", _audit_args)
def _audit(args: argparse.Namespace) -> int:
    check_data(args.data)
    if args.output:
        check_output_file(args.output, force=args.force, inputs=args.data)
    import json
    from pathlib import Path

    from training.data_audit import audit_data

    with using_cache(chosen_cache_dir(args), log=_print_line):
        report = audit_data(_one_or_many(args.data), args.features, max_bad_rows=args.max_bad_rows, log=_print_line)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.output}")
    return 0


# ---- evaluate ----

def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="FILE", help="model.keras of a training run")
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="labelled LendingClub CSV (all rows are test rows); repeatable")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="writes metrics.json, report.md and the plots there (created if missing)")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01, help="largest share of unusable rows (default 0.01)")
    _add_fill_missing(p)
    _add_force(p, "the metrics.json (and plots) of an earlier evaluation in --output")
    add_cache_arguments(p)
    add_json_flag(p, "the metrics (metrics.json's contents)")


@command("evaluate", "evaluate a saved model on a labelled data file", _evaluate_args)
def _evaluate(args: argparse.Namespace) -> int:
    check_model(args.model)
    check_data(args.data)
    check_output_dir(args.output, force=args.force)
    from training.tf_quiet import load_tensorflow

    load_tensorflow()
    from training.evaluate import evaluate

    with json_stdout(args.json), using_cache(chosen_cache_dir(args), log=_print_line):
        metrics = evaluate(args.model, _one_or_many(args.data), args.output, max_bad_rows=args.max_bad_rows,
                           fill_missing_columns=args.fill_missing_columns, log=_print_line)
    if args.json:
        print_json(metrics)
    return 0


# ---- predict ----

def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="FILE", help="model.keras of a training run")
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="raw loan records: CSV (.csv/.gz/.zip, s3://), Parquet or JSON lines (.jsonl/.json); "
                        "repeatable (each output row then names its source file)")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="CSV (Parquet if it ends .parquet): id (or row number), grade and prob_A..prob_G per input "
                        "row, in input order; rows that cannot be graded go to <FILE without suffix>.dropped.csv")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01, help="largest share of unusable rows (default 0.01)")
    _add_fill_missing(p)
    _add_force(p, "an existing --output file (and its .dropped.csv)")


@command("predict", "grade raw loan records with a saved model", _predict_args)
def _predict(args: argparse.Namespace) -> int:
    check_model(args.model)
    check_data(args.data)
    check_output_file(args.output, force=args.force, also=[dropped_path(args.output)], inputs=[*args.data, args.model])
    from training.tf_quiet import load_tensorflow

    load_tensorflow()
    from training.predict import predict_file

    # streamed in chunks (training.predict_stream): one pass over each file, no parsed-data cache to gain from
    predict_file(args.model, _one_or_many(args.data), args.output, max_bad_rows=args.max_bad_rows,
                 fill_missing_columns=args.fill_missing_columns, log=_print_line)
    return 0


# ---- synthesize ----

def _synthesize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=positive_int, default=30_000, help="rows to generate (default 30000)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="file to write: CSV (.csv, .csv.gz) or Parquet (.parquet), by its suffix")
    _add_force(p, "an existing --output file")


@command("synthesize", "write a synthetic Lending-Club-shaped data file (not real loans)", _synthesize_args)
def _synthesize(args: argparse.Namespace) -> int:
    check_output_file(args.output, force=args.force)
    from pathlib import Path

    from training import synthetic

    output = Path(args.output)
    synthetic.write_raw(output, args.rows, args.seed)
    print(f"wrote {args.rows} synthetic rows to {output}")
    return 0
