"""Model quality on the whole 2007-2011 LendingClub file: both feature sets x both split modes.

    python -m bench.model_quality [--data FILE] [--features application,reference] [--splits random,time]

Trains each combination with ``training.train.train`` (fixed seed 42; model preset ``tuned`` for the
``application`` set and the 2017 ``reference`` network for the ``reference`` set unless ``--preset`` is
given; up to 100 epochs, patience 8, batch 512, as the model card's reproduce command), which also fits
the baselines on the same rows, and writes the test metrics of the Keras model and of each baseline, the
audit summary and the wall times to ``bench/results/model_quality.json``. Takes minutes per combination on a laptop CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from bench.common import git_commit, library_versions, machine_info

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "lendingclub" / "lc_2007_2011_kuhnrl30_LoanStats3a.csv.gz"
RESULT = ROOT / "bench" / "results" / "model_quality.json"
_KEYS = ("accuracy", "weighted_f1", "macro_f1", "mean_abs_grade_error", "within_one_grade_accuracy",
         "expected_calibration_error")


def _short(metrics: dict) -> dict:
    return {k: round(metrics[k], 4) for k in _KEYS if k in metrics}


DEFAULT_PRESETS = {"application": "tuned", "reference": "reference"}


def run_case(data: Path, features: str, split: str, epochs: int, preset: str, output_dir: Path) -> dict:
    from training.model import MODEL_PRESETS
    from training.train import TrainConfig, train

    config = TrainConfig(data=[str(data)], features=features, split=split, output_dir=output_dir,
                         run_id=f"{features}-{split}-{preset}", seed=42, epochs=epochs, patience=8, batch_size=512,
                         model=MODEL_PRESETS[preset])
    started = time.monotonic()
    result = train(config, log=lambda line: None)
    metrics, info = result.metrics, result.run_info
    return {
        "features": features, "split": split, "preset": preset, "rows": metrics["rows"],
        "epochs_trained": result.epochs_trained,
        "wall_time_s": round(time.monotonic() - started, 1),
        "keras": {**_short(metrics["test"]),
                  "per_grade_f1": {g: round(v["f1"], 4) for g, v in metrics["test"]["per_grade"].items()}},
        "baselines": {name: _short(m) for name, m in metrics.get("baselines", {}).items()},
        "audit": (info.get("audit") or {}).get("summary"),
        "rate_reconstruction": (info.get("audit") or {}).get("rate_reconstruction"),
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(prog="python -m bench.model_quality", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled LendingClub file (default: 2007-2011)")
    p.add_argument("--features", default="application,reference", help="comma-separated feature sets")
    p.add_argument("--splits", default="random,time", help="comma-separated split modes")
    p.add_argument("--epochs", type=int, default=100, help="maximum epochs (default 100, patience 8)")
    p.add_argument("--preset", default=None, help="model preset for every case (default: tuned for "
                                                  "application, reference for reference)")
    p.add_argument("--output", type=Path, default=RESULT, help=f"result JSON (default {RESULT})")
    args = p.parse_args(argv)
    if not args.data.is_file():
        p.error(f"{args.data}: not found; pass --data with a labelled LendingClub file")
    cases = []
    with tempfile.TemporaryDirectory(prefix="spotgrade-quality-") as tmp:
        for features in args.features.split(","):
            for split in args.splits.split(","):
                preset = args.preset or DEFAULT_PRESETS.get(features, "tuned")
                case = run_case(args.data, features, split, args.epochs, preset, Path(tmp))
                cases.append(case)
                args.output.parent.mkdir(parents=True, exist_ok=True)  # after every case: partial results survive
                args.output.write_text(json.dumps({
                    "command": shlex.join(["python", "-m", "bench.model_quality", *(argv or sys.argv[1:])]),
                    "data": os.path.relpath(args.data, ROOT), "machine": machine_info(),
                    "versions": library_versions(), "git_commit": git_commit(), "cases": cases}, indent=2) + "\n")
                hgb = case["baselines"].get("hist_gradient_boosting", {}).get("weighted_f1")
                print(f"{features:12s} {split:7s} {preset:9s} keras weighted F1 {case['keras']['weighted_f1']:.4f} | "
                      f"HGB {hgb} | {case['wall_time_s']}s", flush=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
