"""Every usage mistake: exit 2, one `error:` line (a usage error: a hint line too, at most 3 lines in all), and the
answer comes before TensorFlow is imported. All cases run in ONE fresh interpreter (tensorflow absent at its start)
through `training.cli.main(argv)`, in a directory holding the files the cases need."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREDICT = ["predict", "--model", "model.keras", "--data", "data.csv"]
EVALUATE = ["evaluate", "--model", "model.keras", "--data", "data.csv"]

# (argv, a fragment of the error line)
MISTAKES = [
    ([], "required: <command>"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["--json"], "required: <command>"),
    (["train", "--data", "missing.csv"], "missing.csv: file not found"),
    (["train", "--data", "nomatch-*.csv"], "no files match"),
    (["train", "--features", "applicaton"], "applicaton"),
    (["train", "--epochs", "0"], "--epochs: must be a positive integer"),
    (["train", "--epochs", "abc"], "got 'abc'"),
    (["train", "--max-bad-rows", "2"], "between 0 and 1"),
    (["train", "--hidden-units", "10,,5"], "layer sizes"),
    (["train", "--run-id", "a/b"], "--run-id: must be"),
    (["train", "--sample", "5"], "--sample must be at least 20 rows, got 5"),
    (["train", "--output", "afile"], "afile: is a file"),
    (["train", "--output", "afile/runs"], "lies under the file afile"),
    (["train", "--output", "outputs", "--run-id", "run1"], "--force"),
    (["train", "--output", "outputs", "--run-id", "foreign", "--force"], "holds no run"),
    (["train", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["audit", "--data", "data.csv", "--features", "application,foo"], "unknown feature set 'foo'"),
    (["audit", "--data", "missing.csv"], "missing.csv: file not found"),
    (["audit", "--data", "data.csv", "--output", "nodir/audit.json"], "nodir does not exist"),
    ([*EVALUATE[:2], "missing.keras", *EVALUATE[3:], "--output", "ev2"], "missing.keras: model file not found"),
    (["evaluate", "--model", "outputs/run1", "--data", "data.csv", "--output", "ev2"], "is a run directory"),
    ([*EVALUATE[:4], "missing.csv", "--output", "ev2"], "missing.csv: file not found"),
    ([*EVALUATE, "--output", "afile"], "afile: is a file"),
    ([*EVALUATE, "--output", "ev"], "metrics.json: exists"),
    (EVALUATE, "required: --output"),
    ([*PREDICT, "--output", "outdir/"], "is a directory"),
    ([*PREDICT, "--output", "outdir"], "is a directory"),
    ([*PREDICT, "--output", "nodir/p.csv"], "nodir does not exist"),
    ([*PREDICT, "--output", "p.csv"], "p.csv: exists"),
    ([*PREDICT, "--output", "q.csv"], "q.dropped.csv: exists"),
    ([*PREDICT, "--output", "data.csv", "--force"], "is an input file"),
    ([*PREDICT, "--output", "x.csv", "--json"], "unrecognized arguments: --json"),
    (["synthesize", "--output", "p.csv"], "p.csv: exists"),
    (["synthesize", "--rows", "0", "--output", "s.csv"], "--rows: must be a positive integer"),
    (["synthesize", "--output", "nodir/s.csv"], "nodir does not exist"),
    (["status", "--stack", "S", "--no-such-flag", "x"], "unrecognized arguments: --no-such-flag x"),
]

_SCRIPT = r"""
import contextlib, io, json, os, sys
from pathlib import Path

os.chdir(sys.argv[1])
for name in ("data.csv", "model.keras", "afile", "p.csv", "q.dropped.csv", "outputs/run1/run.json",
             "outputs/run1/model.keras", "outputs/foreign/notes.txt", "ev/metrics.json"):
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    Path(name).write_text("x\n")
Path("outdir").mkdir()
from training.cli import main

results = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    results.append({"argv": argv, "code": code, "lines": err.getvalue().splitlines(),
                    "heavy": [m for m in ("tensorflow", "keras") if m in sys.modules]})

# shell completion through main(): argcomplete answers (here into a buffer, not fd 8) and exits
import argcomplete
words = io.StringIO()
complete = argcomplete.autocomplete
argcomplete.autocomplete = lambda parser: complete(parser, output_stream=words, exit_method=sys.exit)
os.environ.update({"_ARGCOMPLETE": "1", "COMP_LINE": "spotgrade ev", "COMP_POINT": "12"})
with contextlib.suppress(SystemExit):
    main([])
results.append({"completions": words.getvalue().split("\v"),
                "heavy": [m for m in ("tensorflow", "keras", "pandas") if m in sys.modules]})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    work = tmp_path_factory.mktemp("mistakes")
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(work), json.dumps([argv for argv, _ in MISTAKES])],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_completion_answers_without_heavy_imports(answers):
    assert answers[-1] == {"completions": ["evaluate "], "heavy": []}  # the space: the word is complete


def test_at_least_thirty_mistakes_are_tried():
    assert len({tuple(argv) for argv, _ in MISTAKES}) == len(MISTAKES) >= 30


@pytest.mark.parametrize("index", range(len(MISTAKES)), ids=[" ".join(argv) or "(none)" for argv, _ in MISTAKES])
def test_each_mistake_is_one_line_exit_2_before_tensorflow(answers, index):
    answer, (_, fragment) = answers[index], MISTAKES[index]
    lines = answer["lines"]
    errors = [line for line in lines if line.startswith("error: ") or ": error: " in line]
    assert answer["code"] == 2, answer
    assert len(errors) == 1 and fragment in errors[0], answer
    assert not answer["heavy"], answer
    if errors[0].startswith("error: "):  # the command's own check: that line alone
        assert lines == errors
    else:  # argparse: a usage hint, then the error, last
        assert len(lines) <= 3 and lines[-1] == errors[0] and lines[0].startswith("usage: ")
