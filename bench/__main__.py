"""`python -m bench [names...] [options]`: run all (default: data train predict startup) or some benchmarks."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from bench import BENCHMARKS, DEFAULT_BENCHMARKS
from training.commands import positive_int


def _rows(text: str) -> list[int]:
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated row counts, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"row counts must be positive, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"benchmarks to run, of {', '.join(BENCHMARKS)} (default: {' '.join(DEFAULT_BENCHMARKS)})")
    p.add_argument("--results-dir", type=Path, default=None, help="where <name>.json goes (default bench/results)")
    p.add_argument("--cache-dir", type=Path, default=None, help="generated inputs (default bench/results/tmp)")
    p.add_argument("--tiny", action="store_true", help="tiny inputs (smoke test: checks the benchmark runs)")
    p.add_argument("--no-isolate", action="store_true", help="run cases in this process (memory figures shared)")
    g = p.add_argument_group("data")
    g.add_argument("--data-rows", type=_rows, help="synthetic raw rows per case (default 100000,1000000)")
    g.add_argument("--rowwise-rows", type=int, help="largest file the row-wise reference runs on (default 100000)")
    g = p.add_argument_group("train")
    g.add_argument("--train-rows", type=int, help="synthetic rows (default 200000)")
    g.add_argument("--epochs", type=int, help="epochs per configuration (default 5)")
    g.add_argument("--batch-size", type=int, help="batch size of the pipeline (default: TrainConfig's)")
    g.add_argument("--baseline-batch-size", type=int, help="batch size of the 2017 configuration (default 64)")
    g.add_argument("--skip-baseline", action="store_true", help="only the pipeline (e.g. on a GPU, 1M rows)")
    g.add_argument("--ceiling-rounds", type=positive_int,
                   help="rounds of the pipeline then the ceiling; the median share is the figure (default 3)")
    g.add_argument("--mixed-precision", action="store_true", help="keras mixed_float16 policy (GPU)")
    g.add_argument("--strategy", choices=["default", "mirrored"], help="tf.distribute strategy (default: none)")
    g = p.add_argument_group("predict")
    g.add_argument("--predict-rows", type=int, help="raw records in the batch case (default 100000)")
    g.add_argument("--single-records", type=int, help="single-record calls timed (default 300)")
    g.add_argument("--memory-rows", type=int, help="rows of the file whose streamed prediction's peak memory is "
                                                   "measured (default 1000000)")
    g = p.add_argument_group("startup")
    g.add_argument("--repeat", type=int, help="runs of each timed command; the median is kept (default 3)")
    g = p.add_argument_group("time_to_quality")
    g.add_argument("--quality-data", type=Path, help="the 2007-2011 LendingClub file (default: ../shared/...)")
    g.add_argument("--split", choices=["random", "time"], help="split of both sides (default random)")
    g.add_argument("--keras-runs", type=int, help="runs of the Keras side; the median is judged, the range kept "
                                                  "(default 3; this VM stretches single runs by 10-50%%)")
    g = p.add_argument_group("scale")
    g.add_argument("--scale-rows", type=int, help="synthetic raw rows (default 2300000)")
    g.add_argument("--scale-tuned-rows", type=int,
                   help="also one epoch of the tuned preset (the default with --data) on this many rows")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from bench.common import report, set_command

    argv = sys.argv[1:] if argv is None else list(argv)
    set_command(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(DEFAULT_BENCHMARKS)
    for name in dict.fromkeys(names):
        module = importlib.import_module(f"bench.{name}")
        report(module.run(args), args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
