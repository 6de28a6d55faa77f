"""`python -m training <command>`: a thin argparse layer over the training package.

Each command is one `add_arguments(parser)` plus one `run(args)` function registered with `@command`;
heavy modules are imported inside `run`, so `--help` stays instant. A SpotgradeError becomes one line
`error: ...` on stderr and exit status 2; argparse errors also exit 2.

Adding a command takes a few lines:

    def _status_args(p): p.add_argument("run_id")

    @command("status", "show a run's status", _status_args)
    def _status(args):
        from training.cloud.status import show   # lazy
        show(args.run_id)
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register `run(args) -> exit status (None = 0)` as the subcommand `name`."""
    def register(run: Callable[[argparse.Namespace], int | None]):
        COMMANDS[name] = Command(name, help, add_arguments, run)
        return run
    return register


# ---- argument types (argparse turns their ValueError/ArgumentTypeError into exit 2) ----

def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def units_list(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes like 100,60, got {text!r}") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return units


# ---- train ----

def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", action="append", metavar="PATH",
                   help="LendingClub CSV (.csv/.gz/.zip), glob or s3://bucket/key; repeatable. "
                        "Default: the built-in synthetic sample")
    p.add_argument("--sample", type=positive_int, metavar="N", help="stratified random sample of N rows")
    p.add_argument("--features", default="application", help="feature set: application (default) or reference")
    p.add_argument("--epochs", type=positive_int, default=30, help="maximum epochs (default 30)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="batch size (default 256)")
    p.add_argument("--patience", type=non_negative_int, default=5,
                   help="early-stopping patience in epochs on validation loss (default 5)")
    p.add_argument("--output", default="outputs", metavar="DIR", help="runs go to DIR/<run-id>/ (default outputs)")
    p.add_argument("--run-id", help="run id (default: UTC timestamp and a random suffix)")
    p.add_argument("--seed", type=int, default=42, help="seed of the sample, split and weights (default 42)")
    p.add_argument("--class-weights", action="store_true", help="weight grades inversely to their frequency")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01,
                   help="largest share of unusable rows dropped before the run fails (default 0.01)")
    p.add_argument("--hidden-units", type=units_list, default=(100, 60), metavar="N,N,...",
                   help="hidden layer sizes, i.e. width and depth (default 100,60)")
    p.add_argument("--dropout", type=fraction, default=0.2, help="dropout after each hidden layer (default 0.2)")
    p.add_argument("--learning-rate", type=positive_float, default=1e-3, help="Adam learning rate (default 0.001)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 compute (GPU runs; use a larger --batch-size there, e.g. 2048)")
    p.add_argument("--strategy", choices=["mirrored"], default=None,
                   help="mirrored: replicate the model on every visible GPU (tf.distribute.MirroredStrategy)")
    p.add_argument("--max-norm", type=positive_float, default=3.0, help="max-norm kernel constraint (default 3)")
    p.add_argument("--split", choices=["random", "time"], default="random",
                   help="random: stratified by grade (default); time: test on the newest 20%% by issue_d")
    p.add_argument("--preset", choices=["reference", "tuned"], default=None,
                   help="model settings: reference (the 2017 network) or tuned (log money columns, piecewise-"
                        "linear quantile bins, embeddings, 4 averaged 256,128 networks, LR on plateau; use with "
                        "--epochs 100 --patience 8 --batch-size 512; see docs/model-card.md); overrides "
                        "--hidden-units/--dropout")


def train_config_from_args(args: argparse.Namespace):
    """The TrainConfig of parsed `train` arguments (also used by the on-instance runner)."""
    from pathlib import Path

    from dataclasses import replace

    from training.model import MODEL_PRESETS, ModelConfig
    from training.train import TrainConfig

    model = ModelConfig(hidden_units=tuple(args.hidden_units), dropout=args.dropout, max_norm=args.max_norm,
                        learning_rate=args.learning_rate)
    if getattr(args, "preset", None):
        model = replace(MODEL_PRESETS[args.preset], max_norm=args.max_norm, learning_rate=args.learning_rate)
    return TrainConfig(data=args.data, sample=args.sample, features=args.features, epochs=args.epochs,
                       batch_size=args.batch_size, patience=args.patience, seed=args.seed,
                       output_dir=Path(args.output), run_id=args.run_id, class_weights=args.class_weights,
                       max_bad_rows=args.max_bad_rows,
                       model=model, split=getattr(args, "split", "random"),
                       mixed_precision=args.mixed_precision, strategy=args.strategy)


@command("train", "train the grade model and write outputs/<run-id>/", _train_args)
def _train(args: argparse.Namespace) -> int:
    from training.train import summary_lines, train

    result = train(train_config_from_args(args), log=lambda line: print(line, flush=True))
    for line in summary_lines(result):
        print(line)
    return 0


# ---- evaluate ----

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

    from training.assess import audit_data

    report = audit_data(args.data if len(args.data) > 1 else args.data[0],
                        [n.strip() for n in args.features.split(",") if n.strip()],
                        max_bad_rows=args.max_bad_rows, log=lambda line: print(line, flush=True))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.output}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training",
                                     description="spotgrade: train and use the Lending Club loan-grade model")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for cmd in COMMANDS.values():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    from training.cloud.cli_commands import register as register_cloud_commands

    register_cloud_commands(sub)  # status, logs, pull, stop, resume, upload-data, runs, estimate, sweep
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv and run the command; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.errors import SpotgradeError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        run = COMMANDS[args.command].run if args.command in COMMANDS else args.run
        return run(args) or 0
    except SpotgradeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
