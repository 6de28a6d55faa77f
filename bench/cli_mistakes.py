"""`python -m bench.cli_mistakes`: the user mistakes of issue 13, each run as a real `python -m training ...`.

Each case runs in a fresh temporary directory holding the files it needs (a data file, a model file, an existing
run, an evaluation, a prediction), with no AWS region, profile or credentials and without TF_CPP_MIN_LOG_LEVEL.
Records per case: argv, exit status, stderr lines, wall seconds, whether stderr had more than 3 lines; writes
bench/results/cli_mistakes.json (with the command that produced it) and prints a markdown table. It measures and
records; the assertions are tests/training/test_cli_mistakes.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, git_commit, library_versions, machine_info

RESULT = ROOT / "bench" / "results" / "cli_mistakes.json"
_M = ["--model", "model.keras"]
_EV = ["evaluate", *_M, "--data", "data.csv"]
_PR = ["predict", *_M, "--data", "data.csv"]
FILES = ("data.csv", "model.keras", "afile", "p.csv", "q.dropped.csv", "outputs/run1/run.json",
         "outputs/run1/model.keras", "outputs/mine/notes.txt", "ev/metrics.json", "empty/readme.txt")
CASES: list[tuple[str, list[str]]] = [
    ("no command", []),
    ("unknown command", ["trian"]),
    ("--json before a command", ["--json", "status"]),
    ("missing data file", ["train", "--data", "missing.csv"]),
    ("glob matching nothing", ["train", "--data", "loans-*.csv"]),
    ("directory without CSVs", ["train", "--data", "empty"]),
    ("misspelt feature set", ["train", "--features", "applicaton"]),
    ("epochs not a number", ["train", "--epochs", "abc"]),
    ("epochs zero", ["train", "--epochs", "0"]),
    ("max-bad-rows over 1", ["train", "--max-bad-rows", "2"]),
    ("bad hidden units", ["train", "--hidden-units", "10,,5"]),
    ("sample below the minimum", ["train", "--sample", "5"]),
    ("run id with a slash", ["train", "--run-id", "a/b"]),
    ("train --output is a file", ["train", "--output", "afile"]),
    ("train --output under a file", ["train", "--output", "afile/runs"]),
    ("existing run id", ["train", "--output", "outputs", "--run-id", "run1"]),
    ("--force on a non-run directory", ["train", "--output", "outputs", "--run-id", "mine", "--force"]),
    ("unknown train flag", ["train", "--learning_rate", "0.1"]),
    ("audit: unknown feature set", ["audit", "--data", "data.csv", "--features", "application,foo"]),
    ("audit: output directory missing", ["audit", "--data", "data.csv", "--output", "nodir/audit.json"]),
    ("evaluate: missing model", ["evaluate", "--model", "missing.keras", "--data", "data.csv", "--output", "ev2"]),
    ("evaluate: run directory as model", ["evaluate", "--model", "outputs/run1", "--data", "data.csv",
                                          "--output", "ev2"]),
    ("evaluate: --output is a file", [*_EV, "--output", "afile"]),
    ("evaluate: earlier metrics.json", [*_EV, "--output", "ev"]),
    ("evaluate: no --output", _EV),
    ("predict: --output dir/", [*_PR, "--output", "out/"]),
    ("predict: --output an existing directory", [*_PR, "--output", "ev"]),
    ("predict: output directory missing", [*_PR, "--output", "nodir/p.csv"]),
    ("predict: existing output", [*_PR, "--output", "p.csv"]),
    ("predict: existing .dropped.csv", [*_PR, "--output", "q.csv"]),
    ("predict: output is the input", [*_PR, "--output", "data.csv", "--force"]),
    ("predict: --json (not offered)", [*_PR, "--output", "new.csv", "--json"]),
    ("synthesize: existing output", ["synthesize", "--output", "p.csv"]),
    ("synthesize: zero rows", ["synthesize", "--rows", "0", "--output", "s.csv"]),
    ("status: no region", ["status", "--stack", "S"]),
    ("status: --lines not a number", ["status", "--lines", "abc"]),
    ("status: unknown flag", ["status", "--stack", "S", "--no-such-flag", "x"]),
    ("estimate: bad trainArgs", ["estimate", "-c", "trainArgs=--epochs abc"]),
    ("estimate: unknown context key", ["estimate", "-c", "instanceType=g5.xlarge"]),
    ("runs --json", ["runs", "--json"]),
    ("logs: --poll 0", ["logs", "--poll", "0"]),
    ("upload-data: missing file", ["upload-data", "missing.csv"]),
    ("profile not found", ["status", "--region", "eu-west-1", "--profile", "nope"]),
    ("preflight: unknown context key", ["preflight", "-c", "instanceType=bogus"]),
]


def _environment() -> dict[str, str]:
    """No AWS region, profile or credentials (and no instance metadata), TensorFlow's log level unset."""
    drop = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "TF_CPP_MIN_LOG_LEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PYTHONPATH=str(ROOT), AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true")
    return env


def run_case(name: str, argv: list[str], python: str) -> dict:
    """One mistake in a fresh directory: exit status, stderr lines and wall seconds."""
    with tempfile.TemporaryDirectory(prefix="spotgrade-mistake-") as work:
        for file in FILES:
            (Path(work) / file).parent.mkdir(parents=True, exist_ok=True)
            (Path(work) / file).write_text("x\n")
        started = time.perf_counter()
        done = subprocess.run([python, "-m", "training", *argv], cwd=work, env=_environment(),
                              capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - started
    lines = done.stderr.splitlines()
    return {"case": name, "argv": argv, "exit": done.returncode, "stderr": lines, "stdout_lines": len(
        done.stdout.splitlines()), "seconds": round(seconds, 2), "over_3_lines": len(lines) > 3,
            "traceback": "Traceback" in done.stderr}


def markdown(results: list[dict]) -> str:
    rows = ["| # | mistake | command | exit | stderr (last line) | lines | s |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        message = (r["stderr"][-1] if r["stderr"] else "").replace("|", "\\|")
        command = shlex.join(["python -m training", *r["argv"]]).replace("|", "\\|").replace("'python -m training'",
                                                                                              "python -m training")
        rows.append(f"| {i} | {r['case']} | `{command}` | {r['exit']} | {message} | {len(r['stderr'])} | "
                    f"{r['seconds']:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_mistakes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter to run (default: this one)")
    parser.add_argument("--output", type=Path, default=RESULT, help=f"results file (default {RESULT})")
    args = parser.parse_args(argv)
    results = [run_case(name, case, args.python) for name, case in CASES]
    summary = {"cases": len(results), "exit_2": sum(r["exit"] == 2 for r in results),
               "over_3_lines": sum(r["over_3_lines"] for r in results),
               "tracebacks": sum(r["traceback"] for r in results),
               "over_1_s": [r["case"] for r in results if r["seconds"] >= 1.0]}
    document = {"benchmark": "cli_mistakes", "command": shlex.join(["python", "-m", "bench.cli_mistakes",
                                                                    *(argv if argv is not None else sys.argv[1:])]),
                "git_commit": git_commit(), "machine": machine_info(), "versions": library_versions(),
                "summary": summary, "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(markdown(results))
    print(f"\n{json.dumps(summary)}\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
