"""The Makefile's deploy targets (`make -n`: printed, not run): each names its stacks and passes the run id."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def dry_run(*args: str) -> tuple[int, list[str]]:
    done = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True)
    return done.returncode, [line for line in done.stdout.splitlines() if "cdk " in line or "preflight" in line]


def test_deploy_names_the_shared_stack_and_the_runs_after_the_preflight() -> None:
    rc, lines = dry_run("deploy", "RUN=lc-7", "ARGS=-c trainArgs=--epochs=3")
    assert rc == 0
    assert lines == [
        ".venv/bin/python -m training preflight -c stackName=Spotgrade -c runId=lc-7 -c trainArgs=--epochs=3",
        "npx cdk deploy -c stackName=Spotgrade -c runId=lc-7 -c trainArgs=--epochs=3 Spotgrade Spotgrade-lc-7"]


def test_diff_and_synth_take_the_run_too() -> None:
    assert dry_run("diff", "RUN=b")[1] == ["npx cdk diff -c stackName=Spotgrade -c runId=b  Spotgrade Spotgrade-b"]
    assert dry_run("synth", "RUN=b", "STACK=Team")[1] == ["npx cdk synth -c stackName=Team -c runId=b "]
    assert dry_run("deploy")[1][-1].endswith(" Spotgrade Spotgrade-default")  # cdk.json's runId


def test_destroy_removes_only_the_run_named() -> None:
    assert dry_run("destroy", "RUN=lc-7")[1] == [
        "npx cdk destroy -c stackName=Spotgrade -c runId=lc-7  Spotgrade-lc-7"]
    assert dry_run("destroy-shared")[1][-1].startswith("npx cdk destroy --exclusively ")
    assert dry_run("destroy-shared")[1][-1].endswith(" Spotgrade")


def test_destroy_without_a_run_and_a_run_in_args_are_refused() -> None:
    """Run for real, with `install` taken as done (-o): the refusals come before any cdk or AWS call."""
    done = subprocess.run(["make", "--no-print-directory", "-o", "install", "destroy"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and "make destroy RUN=<run-id>" in done.stderr
    done = subprocess.run(["make", "--no-print-directory", "-o", "install", "deploy", "ARGS=-c runId=x"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and "name the run with RUN=<run-id>" in done.stderr
