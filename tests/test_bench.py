"""Smoke tests of the benchmarks (bench/): each runs on tiny inputs so it cannot rot.

They check that every benchmark runs end to end and records what it promises (machine, versions,
command line, its figures and goals); they never assert a speed. Plus: the row-wise reference really
implements the same cleaning as the pipeline (the speed-up it measures is like for like).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import BENCHMARKS, DEFAULT_BENCHMARKS  # noqa: E402
from bench.__main__ import main  # noqa: E402
from bench.common import Goal, Result, format_table, percentile, report, synthetic_file  # noqa: E402
from bench.data import WARM_READS  # noqa: E402


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-cache")


def _run(name: str, results: Path, cache: Path, *extra: str) -> dict:
    assert main([name, "--tiny", "--no-isolate", "--results-dir", str(results), "--cache-dir", str(cache),
                 *extra]) == 0
    payload = json.loads((results / f"{name}.json").read_text())
    assert payload["benchmark"] == name
    assert payload["machine"]["cpu_cores"] >= 1 and payload["machine"]["memory_gib"] > 0
    assert payload["versions"]["numpy"] and payload["versions"]["pandas"]
    assert name in payload["command"] and payload["results"]
    return payload


# ------------------------------------------------------------------ plumbing

def test_percentile_interpolates():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0], 100) == 3.0
    assert percentile([5.0], 99) == 5.0


def test_report_writes_json_and_prints_table(tmp_path, capsys):
    result = Result("demo", {"rows": 10}, rows=[{"case": "a", "rows_per_s": 12345.6}, {"case": "bb", "extra": 1}],
                    goals=[Goal("speed", ">= 1x", "2x", True)])
    path = report(result, tmp_path)
    payload = json.loads(path.read_text())
    assert path == tmp_path / "demo.json"
    assert payload["params"] == {"rows": 10} and payload["results"][1] == {"case": "bb", "extra": 1}
    assert payload["goals"] == [{"name": "speed", "target": ">= 1x", "measured": "2x", "met": True}]
    out = capsys.readouterr().out
    assert "12,346" in out and "goal [MET] speed" in out


def test_format_table_aligns_union_of_columns():
    lines = format_table([{"a": 1}, {"b": "x"}]).splitlines()
    assert lines[0].split() == ["a", "b"] and len(lines) == 4


def test_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    assert "unknown benchmark nope" in capsys.readouterr().err
    assert set(DEFAULT_BENCHMARKS) <= set(BENCHMARKS)


# ------------------------------------------------------------------ the row-wise reference

def test_rowwise_reference_cleans_like_the_pipeline(cache_dir):
    from bench.data import clean_pipeline
    from bench.rowwise_reference import clean_rowwise
    from training.features import get_feature_set

    path = str(synthetic_file(500, cache_dir=cache_dir))
    fast, _ = clean_pipeline(path)
    slow = clean_rowwise(path)
    fs = get_feature_set("reference")
    assert list(fast.columns) == list(slow.columns) == [*fs.columns, "grade"]
    assert len(fast) == len(slow) > 400
    for column in fs.numeric:
        np.testing.assert_allclose(slow[column].to_numpy(float), fast[column].to_numpy(float), rtol=1e-9,
                                   err_msg=column)
    for column in (*fs.categorical, "grade"):
        assert slow[column].tolist() == fast[column].tolist(), column
    assert not fast[list(fs.numeric)].isna().any().any()


# ------------------------------------------------------------------ one smoke test per benchmark

def test_data_benchmark(tmp_path, cache_dir):
    payload = _run("data", tmp_path, cache_dir)
    cases = {r["case"]: r for r in payload["results"]}
    assert set(cases) == {"pipeline", "pipeline-warm", "rowwise-2017", "read-needed", "read-all-151", "pandas-all-151"}
    assert cases["pipeline-warm"]["rows_out"] == cases["pipeline"]["rows_out"]
    warm_runs = cases["pipeline-warm"]["seconds_runs"]      # the median of the warm reads is the figure
    assert len(warm_runs) == WARM_READS and cases["pipeline-warm"]["seconds"] == sorted(warm_runs)[WARM_READS // 2]
    assert cases["pipeline"]["warm_speedup_vs_rowwise"] == cases["pipeline-warm"]["warm_speedup_vs_rowwise"] > 0
    assert cases["read-all-151"]["columns"] == 151 > cases["read-needed"]["columns"]
    assert cases["pipeline"]["rows_out"] == cases["rowwise-2017"]["rows_out"] > 0
    assert cases["pipeline"]["speedup_vs_rowwise"] > 0
    assert any("row-wise" in g["name"] for g in payload["goals"])
    assert any("second read (cached)" in g["name"] for g in payload["goals"])


def test_train_benchmark(tmp_path, cache_dir):
    payload = _run("train", tmp_path, cache_dir)
    rows = {r["config"]: r for r in payload["results"]}
    assert rows["pipeline"]["batch_size"] == 256 and rows["2017"]["batch_size"] == 64
    assert rows["pipeline"]["train_rows"] == rows["2017"]["train_rows"] > 0
    for row in rows.values():
        assert row["epochs"] == 2 and row["rows_per_s"] > 0 and 0 <= row["val_weighted_f1"] <= 1
    for name in ("pipeline", "2017"):   # both reach the worse of the two best losses
        assert rows[name]["time_to_val_loss_s"] is not None
    assert rows["ceiling"]["batch_size"] == rows["pipeline"]["batch_size"]
    assert rows["ceiling"]["speedup_vs_2017"] > 0
    for key in ("share_of_ceiling", "share_of_ceiling_median"):   # the median of the rounds' shares
        rate = "rows_per_s" + key.removeprefix("share_of_ceiling")
        runs = payload["params"][f"{key}_runs"]
        assert len(runs) == payload["params"]["ceiling_rounds"] == 2
        assert runs[0] == round(rows["pipeline"][rate] / rows["ceiling"][rate], 3)   # the rows: the first round
        assert payload["params"][key] == rows["pipeline"][key] == round((runs[0] + runs[1]) / 2, 3)
    assert [g["target"] for g in payload["goals"]] == [">= 85%", ">= 10x", "pipeline >= 2017"]


def test_predict_benchmark(tmp_path, cache_dir):
    payload = _run("predict", tmp_path, cache_dir)
    cases = {r["case"]: r for r in payload["results"]}
    assert cases["batch (parsed frame)"]["rows"] == cases["batch (file -> csv)"]["rows"] > 900
    assert cases["batch (file -> parquet)"]["rows"] == cases["batch (file -> csv, in memory)"]["rows"] > 900
    assert payload["params"]["file_rows_per_s"] == cases["batch (file -> csv)"]["rows_per_s"] > 0
    to_csv = cases["batch (file -> csv)"]
    assert to_csv["cpu_seconds"] > 0     # rounded figures: their ratio within the rounding
    assert to_csv["cores_busy"] == pytest.approx(to_csv["cpu_seconds"] / to_csv["seconds"], rel=0.05)
    assert payload["params"]["file_rows_per_s_all_cores_busy"] == to_csv["rows_per_s_all_cores_busy"] > 0
    assert len(to_csv["seconds_runs"]) == len(to_csv["cpu_seconds_runs"]) == 3
    assert to_csv["seconds"] == sorted(to_csv["seconds_runs"])[1]          # the median run
    assert payload["params"]["file_cpu_s_per_100k_rows"] == pytest.approx(
        to_csv["cpu_seconds"] / to_csv["rows"] * 1e5, rel=0.01)
    stages = [r for r in payload["results"] if r["case"].startswith("file -> csv stage: ")]
    assert [r["stage"] for r in stages] == ["inflate", "read + parse", "model load", "model", "write"]
    assert all(r["rows"] == to_csv["rows"] and len(r["seconds_runs"]) == 3 and r["cpu_seconds"] >= 0 for r in stages)
    assert sum(r["cpu_seconds"] for r in stages) > 0
    assert payload["params"]["file_stage_cpu_s_per_100k_rows"] == {
        r["stage"]: round(r["cpu_seconds"] / r["rows"] * 1e5, 3) for r in stages}
    peaks = [r for r in payload["results"] if r["case"].startswith("peak memory")]
    assert len(peaks) == 2 and all(r["peak_rss_mib"] >= r["base_rss_mib"] > 0 for r in peaks)
    assert cases["single record"]["rows"] == 20
    assert 0 < cases["single record"]["p50_ms"] <= cases["single record"]["p99_ms"]


@pytest.mark.slow
def test_startup_benchmark(tmp_path, cache_dir):
    payload = _run("startup", tmp_path, cache_dir)
    staged, helped = payload["results"][0], payload["results"][1]
    for stage in ("import_s", "data_s", "training_s", "evaluation_s", "artifacts_s"):
        assert staged[stage] > 0, stage
    assert staged["seconds"] >= staged["import_s"] + staged["training_s"]
    assert helped["command"] == "python -m training --help" and helped["seconds"] > 0


def test_time_to_quality_benchmark(tmp_path, cache_dir):
    data = synthetic_file(800, cache_dir=cache_dir)
    payload = _run("time_to_quality", tmp_path, cache_dir, "--quality-data", str(data), "--keras-runs", "2")
    params = payload["params"]
    runs = params["keras_seconds_runs"]
    assert len(runs) == 2 and params["keras_seconds"] == pytest.approx(np.median(runs), abs=0.05)   # rounded
    assert payload["results"][0]["runs"] == 2 and not any("different test F1" in n for n in payload["notes"])
    for side in ("keras", "peer"):
        assert params[f"{side}_seconds"] > 0 and 0 < params[f"{side}_weighted_f1"] <= 1
    assert params["peer_configurations"] >= 20 and isinstance(params["peer_chosen"], dict)
    assert [r["model"] for r in payload["results"]] == ["keras (preset tuned)", "hist_gradient_boosting_tuned"]
    assert payload["goals"][0]["met"] is None   # tiny inputs: no verdict


def test_scale_benchmark(tmp_path, cache_dir):
    payload = _run("scale", tmp_path, cache_dir, "--scale-tuned-rows", "600")
    row, tuned = payload["results"]
    assert row["model"].startswith("reference") and tuned["model"].startswith("tuned")
    assert tuned["rows"] == 600 and tuned["batch_size"] == 512 and np.isfinite(tuned["val_loss"])
    assert row["rows"] == 800 and row["train_rows"] > 0 and row["peak_rss_mib"] > 0
    assert row["epoch_s"] > 0 and np.isfinite(row["val_loss"])
    stages = ["load_s", "derive_s", "split_fill_s", "build_input_s", "epoch_s"]
    assert list(payload["params"]["peak_in_stage_mib"]) == stages
    assert all(payload["params"]["peak_in_stage_mib"][s] >= payload["params"]["rss_after_stage_mib"][s] - 1
               for s in stages)
    assert [g["target"] for g in payload["goals"]] == ["<= 4 GiB", "<= 40 s"]


def test_gpu_script_is_clean_shell_and_validates_its_arguments():
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "bench" / "gpu.sh"
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if shellcheck.exists():
        lint = subprocess.run([str(shellcheck), str(script)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
    bad = subprocess.run(["bash", str(script), "1e6"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "positive integers" in bad.stderr


def test_apply_fill_fast_path_leaves_its_input_unchanged(cache_dir):
    """The shallow-copy apply_fill (a bench-guided speed-up) must not write through to the caller's frame."""
    from training.data import load_loans
    from training.features import add_derived_features, apply_fill, fit_fill_values, get_feature_set, raw_columns_for

    fs = get_feature_set("reference")
    path = synthetic_file(500, cache_dir=cache_dir)
    frame = add_derived_features(load_loans(path, ["grade", *raw_columns_for(fs.columns)]).frame)
    before = frame.copy(deep=True)
    out, counts = apply_fill(frame, fit_fill_values(frame, fs), fs)
    assert counts and not out[list(fs.numeric)].isna().any().any()
    assert (out[list(fs.categorical)] != "missing").any().all()
    import pandas as pd
    pd.testing.assert_frame_equal(frame, before)


def test_predict_frame_batches_match_keras_predict(cache_dir):
    """predict_frame's batched compiled path (a bench-guided speed-up) gives model.predict's probabilities."""
    from training.data import load_loans
    from training.datasets import make_dataset
    from training.features import add_derived_features, fit_fill_values, get_feature_set, raw_columns_for
    from training.model import build_model
    from training.predict import PROBABILITY_COLUMNS, predict_frame

    fs = get_feature_set("application")
    frame = load_loans(synthetic_file(500, cache_dir=cache_dir), ["grade", *raw_columns_for(fs.columns)]).frame
    derived = add_derived_features(frame)
    built = build_model(fs, derived, fit_fill_values(derived, fs))
    expected = built.feature_model.predict(make_dataset(derived, built.feature_model, batch_size=64), verbose=0)
    for batch_size in (64, 7, 1024):
        got = predict_frame(built.inference, frame, batch_size=batch_size)[list(PROBABILITY_COLUMNS)].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert len(predict_frame(built.inference, frame.head(1))) == 1


def test_make_dataset_epochs_are_permutations_with_inputs_kept_together(cache_dir):
    """make_dataset (a whole epoch gathered at once is a bench-guided speed-up) yields every row once per
    epoch, each row's inputs and label together, in a new order every epoch."""
    import tensorflow as tf

    from training.data import load_loans
    from training.datasets import frame_to_inputs, input_kinds, make_dataset
    from training.features import add_derived_features, fit_fill_values, get_feature_set, raw_columns_for
    from training.model import build_model

    fs = get_feature_set("application")
    frame = add_derived_features(load_loans(synthetic_file(500, cache_dir=cache_dir),
                                            ["grade", *raw_columns_for(fs.columns)]).frame)
    model = build_model(fs, frame, fit_fill_values(frame, fs)).feature_model
    cols, cat = list(fs.columns), input_kinds(model)[1]
    row_ids = np.arange(len(frame))
    inputs = frame_to_inputs(frame, model)
    dataset = make_dataset(frame, model, row_ids, batch_size=64, shuffle=True, seed=3)
    orders = []
    for _ in range(2):
        batches = list(dataset)
        assert [len(y) for _, y in batches] == [64] * (len(frame) // 64) + [len(frame) % 64]
        for x, y in batches:
            for col in cols:
                got, expected = x[col].numpy(), inputs[col][y.numpy()]
                if col in cat:   # strings come back from TensorFlow as bytes
                    got, expected = got.astype(bytes), expected.astype(str).astype(bytes)
                np.testing.assert_array_equal(got, expected)
        orders.append(np.concatenate([y.numpy() for _, y in batches]))
        assert sorted(orders[-1]) == list(row_ids)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[0], row_ids)
    plain = next(iter(make_dataset(frame, model, batch_size=1000)))
    assert plain["loan_amnt"].shape == (len(frame), 1) and plain["term"].dtype == tf.float64
