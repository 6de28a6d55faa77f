"""The local commands' wiring, with their working modules replaced (nothing trains, TensorFlow is not loaded):
--force, --json (one JSON object on stdout, the rest on stderr), --fill-missing-columns and the calls of
predict_file, evaluate and synthetic.write_raw as the helpers agreed (plan of issue 13)."""
import json
import sys
import types
from pathlib import Path

import pytest

import training
from tests.training.cli_helpers import assert_one_line_error, run_cli
from training import tf_quiet, train_flags
from training.cli import version


@pytest.fixture
def calls(monkeypatch):
    """The working modules as fakes that record (function, args, kwargs) and print like the real ones."""
    recorded = []
    monkeypatch.setattr(tf_quiet, "load_tensorflow", lambda: recorded.append(("load_tensorflow",)))

    def fake_module(name, **functions):
        module = types.ModuleType(f"training.{name}")
        for attr, function in functions.items():
            setattr(module, attr, function)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setattr(training, name, module, raising=False)

    def record(name, result=None):
        def function(*args, **kwargs):
            recorded.append((name, args, kwargs))
            print(f"{name} working")  # progress a real command prints: stderr under --json
            return result(*args, **kwargs) if callable(result) else result
        return function

    fake_module("train", train=record("train", _fake_run), validate_config=lambda config: None,
                summary_lines=lambda result: [f"artifacts: {result.run_dir}/"])
    monkeypatch.setattr(train_flags, "train_config_from_args", lambda args: ("config", args.output, args.run_id))
    fake_module("evaluate", evaluate=record("evaluate", {"test": {"accuracy": float("nan")}, "rows": {"test": 3}}))
    fake_module("predict", predict_file=record("predict_file"))
    fake_module("synthetic", write_raw=record("write_raw"))
    return recorded


def _fake_run(config, log):
    _, output, run_id = config
    run_dir = Path(output) / run_id
    (run_dir / "tensorboard").mkdir(parents=True)
    (run_dir / "model.keras").write_text("x")
    log("epoch 1/1")
    metrics = {"rows": {"train": 8, "validation": 2, "test": 2},
               "test": {"accuracy": 0.5, "weighted_f1": 0.4, "macro_f1": 0.3, "log_loss": 1.0},
               "baselines": {"majority": {"accuracy": 0.25, "weighted_f1": 0.1, "macro_f1": 0.05}}}
    return types.SimpleNamespace(run_dir=run_dir, metrics=metrics, epochs_trained=1,
                                 run_info={"run_id": run_id, "synthetic": True, "wall_time_s": 1.5})


def test_train_json_is_the_only_thing_on_stdout(capsys, calls, tmp_path):
    code, out, err = run_cli(capsys, "train", "--output", str(tmp_path), "--run-id", "r1", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "run_id": "r1", "run_dir": str(tmp_path / "r1"), "artifacts": ["model.keras", "tensorboard"],
        "synthetic": True, "epochs_trained": 1, "wall_time_s": 1.5,
        "rows": {"train": 8, "validation": 2, "test": 2},
        "test": {"accuracy": 0.5, "weighted_f1": 0.4, "macro_f1": 0.3},
        "majority_baseline": {"accuracy": 0.25, "weighted_f1": 0.1, "macro_f1": 0.05}}
    assert err.splitlines() == ["train working", "epoch 1/1"]
    assert [c[0] for c in calls] == ["load_tensorflow", "train"]


def test_train_json_of_a_run_without_baselines(tmp_path):
    """train --no-baselines: metrics.json has no baselines block; --json's majority_baseline is empty."""
    from training.local_commands import train_summary

    (tmp_path / "r1").mkdir()
    result = types.SimpleNamespace(run_dir=tmp_path / "r1", epochs_trained=1,
                                   run_info={"run_id": "r1", "wall_time_s": 1.0},
                                   metrics={"rows": {"test": 2}, "test": {"accuracy": 0.5}})
    summary = train_summary(result)
    assert summary["majority_baseline"] == {} and summary["test"] == {"accuracy": 0.5}


def test_train_refuses_an_existing_run_and_force_replaces_it(capsys, calls, tmp_path):
    old = tmp_path / "r1"
    old.mkdir()
    (old / "run.json").write_text("{}")
    (old / "importance.png").write_text("old")
    code, _, err = run_cli(capsys, "train", "--output", str(tmp_path), "--run-id", "r1")
    assert code == 2 and calls == []
    assert_one_line_error(err, str(old), "--force")
    code, out, err = run_cli(capsys, "train", "--output", str(tmp_path), "--run-id", "r1", "--force")
    assert code == 0, err
    assert out.splitlines()[-1] == f"artifacts: {old}/"
    assert sorted(p.name for p in old.iterdir()) == ["model.keras", "tensorboard"]  # nothing of the old run


def test_evaluate_passes_the_flags_and_prints_the_metrics(capsys, calls, tmp_path):
    model, data = tmp_path / "model.keras", tmp_path / "data.csv"
    model.write_text("x")
    data.write_text("x")
    argv = ["evaluate", "--model", str(model), "--data", str(data), "--output", str(tmp_path / "ev"),
            "--fill-missing-columns", "--json"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert json.loads(out) == {"test": {"accuracy": None}, "rows": {"test": 3}}  # NaN is null in strict JSON
    assert err == "evaluate working\n"
    name, args, kwargs = calls[-1]
    assert args == (str(model), str(data), str(tmp_path / "ev"))
    assert kwargs["fill_missing_columns"] is True and kwargs["max_bad_rows"] == 0.01 and callable(kwargs["log"])


def test_predict_refuses_an_existing_output_or_dropped_file_without_force(capsys, calls, tmp_path):
    model, data, out = tmp_path / "model.keras", tmp_path / "data.csv", tmp_path / "p.csv"
    for path in (model, data, tmp_path / "p.dropped.csv"):
        path.write_text("x")
    argv = ["predict", "--model", str(model), "--data", str(data), "--output", str(out)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and calls == []
    assert_one_line_error(err, "p.dropped.csv: exists", "--force")
    out.write_text("x")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and calls == []
    assert_one_line_error(err, "p.csv: exists", "--force")
    code, _, err = run_cli(capsys, *argv, "--force")
    assert code == 0, err  # predict_file itself removes a stale dropped file (tests/training/test_predict.py)
    assert calls[-1] == ("predict_file", (str(model), str(data), str(out)),
                         {"max_bad_rows": 0.01, "fill_missing_columns": False, "log": calls[-1][2]["log"]})


def test_synthesize_calls_write_raw_and_refuses_an_existing_file(capsys, calls, tmp_path):
    target = tmp_path / "s.parquet"
    code, out, err = run_cli(capsys, "synthesize", "--rows", "50", "--seed", "3", "--output", str(target))
    assert code == 0, err
    assert calls == [("write_raw", (target, 50, 3), {})]
    assert out.splitlines()[-1] == f"wrote 50 synthetic rows to {target}"
    target.write_text("x")
    code, _, err = run_cli(capsys, "synthesize", "--output", str(target))
    assert code == 2
    assert_one_line_error(err, "s.parquet: exists")


def test_version(capsys):
    code, out, err = run_cli(capsys, "--version")
    assert (code, out, err) == (0, f"spotgrade {version()}\n", "")
    assert version() == training.__version__  # from the installed metadata, or the checkout's
