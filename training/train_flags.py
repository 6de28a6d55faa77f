"""`train`'s command-line flags and the TrainConfig they make: shared by `python -m training train` and the
on-instance runner (which reads the same flags from its env file)."""
from __future__ import annotations

import argparse
import contextlib
import io
from typing import Sequence

from training.cloud.core.layout import RUN_ID_PATTERN, RUN_ID_RULE
from training.commands import fraction, non_negative_int, positive_float, positive_int, units_list
from training.data.cache_dir import add_cache_arguments, chosen_cache_dir
from training.errors import ConfigError
from training.precision import CHOICES as PRECISIONS
from training.presets import PRESETS, choose_preset, preset_help

PROG = "python -m training train"
# training.features.FEATURE_SETS' names (a test checks it), the choices of --features; listed here so parsing
# the flags imports no pandas.
FEATURE_SET_NAMES = ("application", "reference")
# training.train.MIN_ROWS (a test checks it): the CLI refuses a smaller --sample before loading TensorFlow. Only the
# CLI: the runner and synth leave it to train(), as a setting of a deployed run that training refuses.
MIN_SAMPLE_ROWS = 20


def run_id(text: str) -> str:
    """An argparse type: a run id (it names the run's directory and stack)."""
    if not RUN_ID_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be {RUN_ID_RULE}, got {text!r}")
    return text


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """`train`'s flags."""
    p.add_argument("--data", action="append", metavar="PATH",
                   help="LendingClub CSV (.csv/.gz/.zip), glob or s3://bucket/key; repeatable. "
                        "Default: the built-in synthetic sample")
    p.add_argument("--sample", type=positive_int, metavar="N", help="stratified random sample of N rows")
    p.add_argument("--features", default="application", choices=FEATURE_SET_NAMES,
                   help="feature set: application (default) or reference")
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (default: the preset's, 100 for tuned, "
                                                        "30 for sample and reference)")
    p.add_argument("--batch-size", type=positive_int, help="batch size (default: the preset's, 512 or 256)")
    p.add_argument("--patience", type=non_negative_int,
                   help="early-stopping patience in epochs on validation loss (default: the preset's, 8 or 5)")
    p.add_argument("--output", default="outputs", metavar="DIR", help="runs go to DIR/<run-id>/ (default outputs)")
    p.add_argument("--run-id", type=run_id, help="run id (default: UTC timestamp and a random suffix)")
    p.add_argument("--seed", type=int, default=42, help="seed of the sample, split and weights (default 42)")
    p.add_argument("--class-weights", action="store_true", help="weight grades inversely to their frequency")
    p.add_argument("--max-bad-rows", type=fraction, default=0.01,
                   help="largest share of unusable rows dropped before the run fails (default 0.01)")
    p.add_argument("--hidden-units", type=units_list, metavar="N,N,...",
                   help="hidden layer sizes, i.e. width and depth (default: the preset's, 256,128 or 100,60)")
    p.add_argument("--dropout", type=fraction,
                   help="dropout after each hidden layer (default: the preset's, 0.3 or 0.2)")
    p.add_argument("--learning-rate", type=positive_float, help="Adam learning rate (default 0.001)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="the Keras dtype policy of training (default float32). auto: mixed_float16 on GPUs with "
                        "tensor cores, mixed_bfloat16 on CPUs with bfloat16 instructions, else float32. The saved "
                        "model computes in float32")
    p.add_argument("--mixed-precision", action="store_true",
                   help="the same as --precision mixed_float16 (GPU runs; use a larger --batch-size there, "
                        "e.g. 2048)")
    p.add_argument("--strategy", choices=["mirrored"], default=None,
                   help="mirrored: replicate the model on every visible GPU (tf.distribute.MirroredStrategy)")
    p.add_argument("--max-norm", type=positive_float, help="max-norm kernel constraint (default 3)")
    p.add_argument("--split", choices=["random", "time"], default="random",
                   help="random: stratified by grade (default); time: test on the newest 20%% by issue_d")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the baselines (majority, logistic regression, gradient boosting default and tuned "
                        "on the validation rows; the sample preset leaves out the tuned one): faster; metrics.json "
                        "then has no baselines block")
    p.add_argument("--preset", choices=list(PRESETS), default=None, help=preset_help())
    add_cache_arguments(p)


def parse_train_flags(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed `train` flags; a bad flag raises ConfigError holding argparse's one-line message.

    Also what checks trainArgs at synth (training/cloud/preflight.py). Without `--help` (an unknown flag here),
    so nothing ever prints help and exits. Imports nothing heavy (a test checks it).
    """
    parser = argparse.ArgumentParser(prog=PROG, add_help=False)
    add_train_arguments(parser)
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = parser.parse_args(list(argv))
    except SystemExit:
        message = errors.getvalue().strip().splitlines()[-1:] or ["invalid flags"]
        raise ConfigError(message[0]) from None
    return args


def chosen_preset(args: argparse.Namespace) -> tuple[str, str]:
    """(preset name, why): --preset, else by the data (``training.presets.choose_preset``)."""
    return choose_preset(getattr(args, "preset", None), synthetic=args.data is None)


def run_setting(args: argparse.Namespace, name: str) -> int:
    """``epochs``, ``patience`` or ``batch_size``: the flag's value where given, else the chosen preset's."""
    given = getattr(args, name)
    return given if given is not None else getattr(PRESETS[chosen_preset(args)[0]], name)


def chosen_precision(args: argparse.Namespace) -> str:
    """--precision, else mixed_float16 for --mixed-precision, else float32; ConfigError for both flags."""
    given = getattr(args, "precision", None)
    if getattr(args, "mixed_precision", False):
        if given not in (None, "mixed_float16"):
            raise ConfigError(f"--mixed-precision means --precision mixed_float16, not {given}: give one of them")
        return "mixed_float16"
    return given or "float32"


def train_config_from_args(args: argparse.Namespace):
    """The TrainConfig of parsed `train` flags: the chosen preset's settings, explicit flags over them."""
    from dataclasses import replace
    from pathlib import Path

    from training.model import MODEL_PRESETS
    from training.train import TrainConfig

    name, why = chosen_preset(args)
    preset = PRESETS[name]
    given = {"hidden_units": None if args.hidden_units is None else tuple(args.hidden_units),
             "dropout": args.dropout, "max_norm": args.max_norm, "learning_rate": args.learning_rate}
    model = replace(MODEL_PRESETS[preset.model], **{k: v for k, v in given.items() if v is not None})
    return TrainConfig(data=args.data, sample=args.sample, features=args.features,
                       epochs=run_setting(args, "epochs"), batch_size=run_setting(args, "batch_size"),
                       patience=run_setting(args, "patience"), seed=args.seed,
                       output_dir=Path(args.output), run_id=args.run_id, class_weights=args.class_weights,
                       max_bad_rows=args.max_bad_rows,
                       model=model, split=getattr(args, "split", "random"),
                       precision=chosen_precision(args), strategy=args.strategy,
                       baselines=getattr(args, "baselines", True), tuned_peer=preset.tuned_peer,
                       preset=name, preset_why=why, cache_dir=chosen_cache_dir(args))
