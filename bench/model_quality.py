"""Model quality on real LendingClub files: each case is a `python -m training train` command, run as a user runs it.

    python -m bench.model_quality [--cases NAME,...] [--data-dir DIR]

Cases (:data:`CASES`): the default model on the 2007-2011 file with a random and a time split, the 2017
network (`--preset reference`) and the 2017 inputs (`--features reference`) on both splits, and the 2007-2011
file together with the 2012-2018 raw samples (more than one era) on both splits. Each is parsed by train's own
flag parser (``training.train_flags``: the preset's settings, explicit flags over them) and trained with
``training.train.train``; the test metrics of the Keras model and of each baseline, per-year weighted F1, the
tuned peer's search, the audit summary and the wall time go to ``bench/results/model_quality.json``, each case
with its command. Takes minutes per case on 2 cores.
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
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "lendingclub"
RESULT = ROOT / "bench" / "results" / "model_quality.json"
_KEYS = ("accuracy", "weighted_f1", "macro_f1", "mean_abs_grade_error", "within_one_grade_accuracy",
         "expected_calibration_error")


def _short(metrics: dict) -> dict:
    return {k: round(metrics[k], 4) for k in _KEYS if k in metrics}


DATA_2007_2011 = "lc_2007_2011_kuhnrl30_LoanStats3a.csv.gz"
RAW_SAMPLES = "raw/*.csv.gz"
#: name -> train's arguments after --data (the data files are named relative to --data-dir)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "default-random": ([DATA_2007_2011], []),
    "default-time": ([DATA_2007_2011], ["--split", "time"]),
    "2017-network-random": ([DATA_2007_2011], ["--preset", "reference"]),
    "2017-network-time": ([DATA_2007_2011], ["--preset", "reference", "--split", "time"]),
    "2017-inputs-random": ([DATA_2007_2011], ["--features", "reference", "--preset", "reference"]),
    "2017-inputs-time": ([DATA_2007_2011], ["--features", "reference", "--preset", "reference", "--split", "time"]),
    "eras-random": ([DATA_2007_2011, RAW_SAMPLES], []),
    "eras-time": ([DATA_2007_2011, RAW_SAMPLES], ["--split", "time"]),
}


def case_command(name: str) -> list[str]:
    """The case's `train` arguments, data named relative to the shared data folder."""
    files, flags = CASES[name]
    return [arg for f in files for arg in ("--data", f"{DATA_PREFIX}/{f}")] + flags


DATA_PREFIX = "../shared/data/lendingclub"   # how the commands name the data (from the project root)


def run_case(name: str, data_dir: Path, output_dir: Path) -> dict:
    from training.train import train
    from training.train_flags import parse_train_flags, train_config_from_args

    argv = [a.replace(DATA_PREFIX, str(data_dir)) for a in case_command(name)]
    args = parse_train_flags([*argv, "--output", str(output_dir), "--run-id", name])
    config = train_config_from_args(args)
    started = time.monotonic()
    result = train(config, log=lambda line: None)
    metrics, info = result.metrics, result.run_info
    baselines = metrics.get("baselines", {})
    return {
        "case": name, "command": shlex.join(["python", "-m", "training", "train", *case_command(name)]),
        "preset": config.preset, "features": config.features, "split": config.split, "rows": metrics["rows"],
        "epochs_trained": result.epochs_trained, "best_epoch": info.get("best_epoch"),
        "wall_time_s": round(time.monotonic() - started, 1),
        "keras": {**_short(metrics["test"]), "validation_weighted_f1": round(metrics["validation"]["weighted_f1"], 4),
                  "per_grade_f1": {g: round(v["f1"], 4) for g, v in metrics["test"]["per_grade"].items()},
                  "per_year": metrics["test"].get("per_year")},
        "baselines": {n: {**_short(m), "fit_seconds": m.get("fit_seconds"), "per_year": m.get("per_year")}
                      for n, m in baselines.items()},
        "tuned_peer_search": (info.get("baseline_search") or {}).get("hist_gradient_boosting_tuned"),
        "audit": (info.get("audit") or {}).get("summary"),
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(prog="python -m bench.model_quality", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"the shared LendingClub folder (default {DATA_PREFIX} beside the project)")
    p.add_argument("--output", type=Path, default=RESULT, help=f"result JSON (default {RESULT})")
    args = p.parse_args(argv)
    names = args.cases.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if not (args.data_dir / DATA_2007_2011).is_file():
        p.error(f"{args.data_dir / DATA_2007_2011}: not found; pass --data-dir with the shared LendingClub folder")
    earlier = json.loads(args.output.read_text()).get("cases", []) if args.output.is_file() else []
    cases = [c for c in earlier if c.get("case") in CASES and c.get("case") not in names]   # kept: cases not rerun
    with tempfile.TemporaryDirectory(prefix="spotgrade-quality-") as tmp:
        for name in names:
            case = run_case(name, args.data_dir, Path(tmp))
            case["git_commit"] = git_commit()
            cases.append(case)
            cases.sort(key=lambda c: list(CASES).index(c["case"]))
            args.output.parent.mkdir(parents=True, exist_ok=True)  # after every case: partial results survive
            args.output.write_text(json.dumps({
                "command": shlex.join(["python", "-m", "bench.model_quality", *(argv or sys.argv[1:])]),
                "machine": machine_info(), "versions": library_versions(), "cases": cases}, indent=2) + "\n")
            peers = " | ".join(f"{n} {m['weighted_f1']:.4f}" for n, m in case["baselines"].items()
                               if n.startswith("hist"))
            print(f"{name:20s} keras weighted F1 {case['keras']['weighted_f1']:.4f} | {peers} | "
                  f"{case['wall_time_s']}s", flush=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
