"""`startup` benchmark: `python -m training --help`, `make train` on the default sample, and `cdk synth`.

`make train` is timed whole (warm: the virtualenv is installed; where make would reinstall it, the
command it runs after the install, `.venv/bin/python -m training train`, is timed instead), and once
more in a child process that times its stages by wrapping the functions train() calls:
import (training + TensorFlow/Keras), data (synthetic sample, load, derived columns, fill),
training (model build, tf.data, fit), evaluation (predict, metrics), artifacts (model, plots, JSON).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Goal, Result

DEFAULTS = {"repeat": 3, "train_args": [], "make": True, "cdk": True}
TINY = {"repeat": 1, "train_args": ["--sample", "300", "--epochs", "1"], "make": False, "cdk": False}
GOAL_TRAIN_S = 60.0
GOAL_HELP_S = 1.0
GOAL_SYNTH_S = None  # measured and recorded; the issue sets no target
_MARK = "BENCH-STAGES "


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CDK_DISABLE_CLI_TELEMETRY="1",
               JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", PYTHONPATH=str(ROOT))
    return env


def _timed(cmd: list[str], *, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, proc


def _fail(what: str, proc: subprocess.CompletedProcess) -> RuntimeError:
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return RuntimeError(f"{what} exited {proc.returncode}: {' | '.join(tail)}")


# ------------------------------------------------------------------ the instrumented child

def _child(train_args: list[str]) -> None:
    """Run `python -m training train ...` in this process, timing its stages; prints one JSON line."""
    stages: dict[str, float] = {}
    active = [False]

    def wrap(owner, name: str, stage: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if active[0]:  # count only the outermost timed call
                return original(*args, **kwargs)
            active[0] = True
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                stages[stage] = stages.get(stage, 0.0) + time.perf_counter() - t0
                active[0] = False

        setattr(owner, name, timed)

    t_start = time.perf_counter()
    import keras  # noqa: F401  (the heavy part of the import)

    import training.cli as cli
    import training.data as data
    import training.features as features
    import training.fitting as fitting
    import training.plots as plots
    import training.run_record as run_record
    import training.scoring as scoring
    import training.synthetic as synthetic
    import training.train as tr

    stages["import"] = time.perf_counter() - t_start
    for owner, name in ((synthetic, "write_raw_csv"), (data, "load_loans"), (features, "add_derived_features"),
                        (features, "fit_fill_values"), (tr, "split_rows"), (tr, "_values_filled")):
        wrap(owner, name, "data")
    for owner, name in ((tr, "build_model"), (fitting, "make_dataset"), (keras.Model, "fit")):
        wrap(owner, name, "training")
    for owner, name in ((tr, "predict_proba"), (scoring, "compute_metrics")):
        wrap(owner, name, "evaluation")
    for owner, name in ((keras.Model, "save"), (plots, "plot_confusion_matrix"), (plots, "plot_history"),
                        (run_record, "write_json")):
        wrap(owner, name, "artifacts")
    t_main = time.perf_counter()
    status = cli.main(["train", *train_args])
    total = time.perf_counter() - t_start
    stages["other"] = (time.perf_counter() - t_main) - sum(v for k, v in stages.items() if k != "import")
    print(_MARK + json.dumps({"status": status, "total_s": total, "stages": stages}), flush=True)
    sys.exit(status)


def staged_train(train_args: list[str]) -> dict:
    """Stage times of one `python -m training train` run (in a fresh process, so imports count)."""
    wall, proc = _timed([sys.executable, "-m", "bench.startup", "--child", *train_args])
    line = next((out for out in proc.stdout.splitlines() if out.startswith(_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise _fail("python -m training train (instrumented)", proc)
    payload = json.loads(line[len(_MARK):])
    payload["process_wall_s"] = wall
    return payload


# ------------------------------------------------------------------ the timed commands

def time_help(repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        wall, proc = _timed([sys.executable, "-m", "training", "--help"], timeout=120)
        if proc.returncode != 0:
            raise _fail("python -m training --help", proc)
        times.append(wall)
    return times


def _make_is_warm() -> bool:
    """True where `make install` has nothing to do (so `make train` will not reinstall the venv)."""
    if not shutil.which("make"):
        return False
    return subprocess.run(["make", "-q", "install"], cwd=ROOT, capture_output=True).returncode == 0


def time_make_train(train_args: list[str], out_dir: Path) -> tuple[float, str]:
    args = [*train_args, "--output", str(out_dir)]
    if _make_is_warm():
        cmd = ["make", "train", f"ARGS={subprocess.list2cmdline(args)}"]
    else:
        cmd = [sys.executable, "-m", "training", "train", *args]
    wall, proc = _timed(cmd)
    if proc.returncode != 0:
        raise _fail(" ".join(cmd), proc)
    return wall, " ".join(cmd)


def time_cdk_synth(out_dir: Path) -> tuple[float | None, str]:
    """`npx cdk synth` wall time, or (None, why) where the CDK app or its CLI is not there."""
    if not (ROOT / "cdk.json").is_file():
        return None, "skipped: no cdk.json (the CDK app does not exist yet)"
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        return None, "skipped: node_modules/.bin/cdk missing (run npm ci first)"
    if not shutil.which("npx"):
        return None, "skipped: npx not found"
    cmd = ["npx", "cdk", "synth", "--quiet", "--output", str(out_dir)]
    wall, proc = _timed(cmd)
    if proc.returncode != 0:
        return None, f"failed: {_fail(' '.join(cmd), proc)}"
    return wall, " ".join(cmd)


def run(opts: argparse.Namespace) -> Result:
    base = TINY if opts.tiny else DEFAULTS
    repeat = opts.repeat or base["repeat"]
    result = Result("startup", {"repeat": repeat, "train_args": base["train_args"]})
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        staged = staged_train([*base["train_args"], "--output", str(Path(tmp) / "staged")])
        row = {"command": "python -m training train (stages)", "seconds": round(staged["total_s"], 2)}
        row.update({f"{k}_s": round(v, 2) for k, v in staged["stages"].items()})
        result.rows.append(row)

        helps = time_help(repeat)
        help_s = statistics.median(helps)
        result.rows.append({"command": "python -m training --help", "seconds": round(help_s, 3),
                            "min_s": round(min(helps), 3), "runs": repeat})
        result.goals.append(Goal("python -m training --help", f"< {GOAL_HELP_S:.0f} s", f"{help_s:.2f} s",
                                 help_s < GOAL_HELP_S))
        if base["make"]:
            wall, cmd = time_make_train(base["train_args"], Path(tmp) / "make")
            result.rows.append({"command": cmd.replace(f"{ROOT}/", ""), "seconds": round(wall, 2)})  # no machine paths
            if cmd.startswith("make"):
                result.notes.append("make train was warm (make -q install: nothing to do)")
            else:
                result.notes.append("make would reinstall the venv here (no .venv/.installed stamp), so the "
                                    "command make train runs after the install was timed instead")
            result.goals.append(Goal("make train on the default sample (warm)", f"< {GOAL_TRAIN_S:.0f} s",
                                     f"{wall:.1f} s", wall < GOAL_TRAIN_S))
        if base["cdk"]:
            wall, what = time_cdk_synth(Path(tmp) / "cdk.out")
            if wall is None:
                result.notes.append(f"cdk synth {what}")
            else:
                result.rows.append({"command": what, "seconds": round(wall, 2)})
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
