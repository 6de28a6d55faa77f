"""The commands that run on this machine: train, audit, evaluate, predict, synthesize.

Registered in training.commands' registry; each imports its working module only when it runs.
"""
from __future__ import annotations

import argparse

from training.commands import command, fraction, positive_int
from training.train_flags import add_train_arguments


def _print_line(line: str) -> None:
    print(line, flush=True)


# ---- train ----

@command("train", "train the grade model and write outputs/<run-id>/", add_train_arguments)
def _train(args: argparse.Namespace) -> int:
    from training.train import summary_lines, train
    from training.train_flags import train_config_from_args

    result = train(train_config_from_args(args), log=_print_line)
    for line in summary_lines(result):
        print(line)
    return 0


# ---- audit ----

def _audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="labelled LendingClub CSV (.csv/.gz/.zip), glob or s3://bucket/key; repeatable")
    p.add_argument("--features", default="application,reference",
                   help="comma-separated feature sets to audit (default application,reference)")
    p.add_argument("--output", metavar="FILE", help="also write the audit report as JSON to FILE")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01, help="largest share of unusable rows (default 0.01)")


@command("audit", "leakage audit of the feature sets on a labelled data file", _audit_args)
def _audit(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from training.data_audit import audit_data

    report = audit_data(args.data if len(args.data) > 1 else args.data[0],
                        [n.strip() for n in args.features.split(",") if n.strip()],
                        max_bad_rows=args.max_bad_rows, log=_print_line)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.output}")
    return 0


# ---- evaluate ----

def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="FILE", help="model.keras of a training run")
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="labelled LendingClub CSV (all rows are test rows); repeatable")
    p.add_argument("--output", required=True, metavar="DIR", help="writes metrics.json and confusion_matrix.png")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01, help="largest share of unusable rows (default 0.01)")


@command("evaluate", "evaluate a saved model on a labelled data file", _evaluate_args)
def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate

    evaluate(args.model, args.data if len(args.data) > 1 else args.data[0], args.output,
             max_bad_rows=args.max_bad_rows)
    return 0


# ---- predict ----

def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="FILE", help="model.keras of a training run")
    p.add_argument("--data", required=True, metavar="PATH",
                   help="raw loan records: CSV (.csv/.gz/.zip, s3://) or JSON lines (.jsonl/.json)")
    p.add_argument("--output", required=True, metavar="FILE", help="CSV with grade and prob_A..prob_G per row")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01, help="largest share of unusable rows (default 0.01)")


@command("predict", "grade raw loan records with a saved model", _predict_args)
def _predict(args: argparse.Namespace) -> int:
    from training.predict import predict_file

    predict_file(args.model, args.data, args.output, max_bad_rows=args.max_bad_rows)
    return 0


# ---- synthesize ----

def _synthesize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=positive_int, default=30_000, help="rows to generate (default 30000)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--output", required=True, metavar="FILE", help="CSV to write (.csv or .csv.gz)")


@command("synthesize", "write a synthetic Lending-Club-shaped CSV (not real loans)", _synthesize_args)
def _synthesize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training import synthetic

    output = Path(args.output)
    synthetic.write_raw_csv(output, args.rows, args.seed)
    print(f"wrote {args.rows} synthetic rows to {output}")
    return 0
