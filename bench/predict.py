"""`predict` benchmark: a saved model on raw records, in batch and one record at a time.

A model is trained briefly (training.train.train, default settings) and loaded with
training.predict.load_model; then:
- `batch (parsed frame)`: predict_frame on N parsed raw records (derived features, inputs, model)
- `batch (file -> csv)` / `batch (file -> parquet)`: predict_file, gzip CSV in -> predictions out, streamed in
  chunks (model load, read, parse and write included), :data:`FILE_RUNS` times, the median run the figure (every
  run's seconds kept): `file_rows_per_s`; with the process's CPU seconds
  (every thread) and the rate were every core busy for them (`file_rows_per_s_all_cores_busy`: the bound
  the work per row sets on this machine, however well the stages overlap); `batch (file -> csv, in memory)`: the
  same through the in-memory path (load_loans, pandas' writer), for reference
- `file -> csv stage: S`: the stages of file -> CSV one at a time, not overlapped (inflate, read + parse,
  model load, model, write; :func:`file_stages`), each the median of :data:`FILE_RUNS`, with its CPU seconds:
  where the file case's CPU seconds go (`file_stage_cpu_s_per_100k_rows`)
- `peak memory (file -> csv, N rows)`: predict_file in a fresh process on a 100k-row and a 1M-row file: peak RSS
  (imports included) and the base before it; streaming keeps the peak flat as the file grows
- `single record`: one raw record (a dict of text values as in the CSV / a JSON line) through
  predict_records (parse + derived features + model, probabilities out), timed per call after a
  warm-up; p50 and p99
- `single record (parse_frame + predict_frame)`: the same records through the batch path, for reference
"""
from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Goal, Result, notice_lines, percentile, run_isolated, synthetic_file

DEFAULTS = {"rows": 100_000, "single": 300, "model_rows": 20_000, "model_epochs": 2, "memory_rows": 1_000_000}
TINY = {"rows": 1_000, "single": 20, "model_rows": 1_000, "model_epochs": 1, "memory_rows": 2_000}
GOAL_BATCH_ROWS_S = 100_000
GOAL_FILE_ROWS_S = 250_000
GOAL_P50_MS = 20.0
WARMUP = 5
# runs of each file case and stage: one run of 100k rows takes 0.7 s and drifts by a fifth here (docs/performance.md)
FILE_RUNS = 3


def train_model(rows: int, epochs: int, out_dir: Path, cache_dir: Path | None) -> Path:
    from training.train import TrainConfig, train

    path = str(synthetic_file(rows, seed=11, cache_dir=cache_dir))
    result = train(TrainConfig(data=[path], epochs=epochs, output_dir=out_dir, run_id="bench-predict-model",
                               baselines=False), log=lambda line: None)   # a model to predict with: no baselines
    return result.run_dir / "model.keras"


def predict_to_csv(model_path: str, data: str, output: str) -> dict:
    """predict_file (streamed) from ``data`` to ``output``: rows and seconds (run in a fresh process for its
    peak memory)."""
    from training.tf_quiet import load_tensorflow

    load_tensorflow()
    from training.predict import predict_file

    t0 = time.perf_counter()
    written = predict_file(model_path, data, output, log=lambda line: None)
    return {"rows": written.rows, "seconds": round(time.perf_counter() - t0, 3)}


def _median_run(work: Callable[[], int]) -> dict:
    """``work`` (returning its rows) run :data:`FILE_RUNS` times: the median run's rows, seconds and CPU seconds
    (every thread), each run's kept."""
    runs = []
    for _ in range(FILE_RUNS):
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        rows = work()
        runs.append((time.perf_counter() - t0, _cpu_seconds() - cpu0))
    seconds, cpu_seconds = sorted(runs)[len(runs) // 2]
    return {"rows": rows, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "seconds_runs": [round(s, 3) for s, _ in runs], "cpu_seconds_runs": [round(c, 3) for _, c in runs]}


def file_stages(model_path: Path, path: str, columns: list[str], output: Path) -> list[dict]:
    """What file -> CSV does, one stage at a time (alone, not overlapped): where its CPU seconds go.

    ``inflate``: the gzip file to text (the floor of any read); ``read + parse``: the file's chunks
    (training.data.streaming.FileChunks: Arrow's CSV reader, parse_columns, row keys); ``model load``;
    ``model``: predict_frame on each parsed chunk, eagerly, a chunk per call, as predict_file calls it (the
    chunks keep their row numbers); ``write``: the predictions to CSV (training.prediction_writer.ChunkWriter)."""
    import pyarrow as pa

    from training.data.streaming import FileChunks
    from training.predict import STREAM_BATCH_ROWS, load_model, predict_frame
    from training.prediction_writer import ChunkWriter

    def parsed_chunks() -> list:
        f = FileChunks(Path(path), path, columns, max_bad_rows=0.01, fill_missing=False, several=False)
        frames = [chunk.frame for chunk in f]
        f.finish()
        return frames

    def predictions_of(model, frames: list) -> list:
        return [predict_frame(model, frame, batch_size=STREAM_BATCH_ROWS, traced=False) for frame in frames]

    parsed = parsed_chunks()
    rows = sum(len(frame) for frame in parsed)
    model = load_model(model_path)
    predictions = predictions_of(model, parsed)

    def inflate() -> int:
        with pa.input_stream(path, compression="gzip") as stream:
            while stream.read(1 << 20):
                pass
        return rows

    def load() -> int:
        load_model(model_path)
        return rows

    def write() -> int:
        writer = ChunkWriter(output)
        for frame in predictions:
            writer.write(frame)
        writer.commit()
        return rows

    stages = {
        "inflate": inflate,
        "read + parse": lambda: sum(len(frame) for frame in parsed_chunks()),
        "model load": load,
        "model": lambda: sum(len(frame) for frame in predictions_of(model, parsed)),
        "write": write,
    }
    return [{"case": f"file -> csv stage: {name}", "stage": name, **_median_run(work)}
            for name, work in stages.items()]


def _cpu_seconds() -> float:
    """This process's CPU time (all its threads: the reader's, the model's, the writer's)."""
    return time.process_time()    # os.times() counts in 10 ms ticks


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def raw_records(path: str, columns: list[str], n: int) -> list[dict]:
    """The first n data rows as raw text records (what a JSON-lines client would send)."""
    import pandas as pd

    wanted = set(columns)
    frame = pd.read_csv(path, skiprows=notice_lines(path), usecols=lambda c: c in wanted, dtype=str, nrows=n,
                        keep_default_na=False)
    return frame.to_dict(orient="records")


def run(opts: argparse.Namespace) -> Result:
    import pandas as pd

    from training.data import load_loans, parse_frame
    from training.predict import (
        STREAM_BATCH_ROWS,
        _predict_in_memory,
        load_model,
        predict_file,
        predict_frame,
        predict_records,
        required_raw_columns,
    )

    base = TINY if opts.tiny else DEFAULTS
    rows = opts.predict_rows or base["rows"]
    single = opts.single_records or base["single"]
    result = Result("predict", {"rows": rows, "single_records": single, "model_rows": base["model_rows"],
                                "model_epochs": base["model_epochs"], "warmup_calls": WARMUP})
    path = str(synthetic_file(rows, cache_dir=opts.cache_dir))
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        model_path = train_model(base["model_rows"], base["model_epochs"], Path(tmp), opts.cache_dir)
        t0 = time.perf_counter()
        model = load_model(model_path)
        load_s = time.perf_counter() - t0
        columns = required_raw_columns(model)
        frame = load_loans(path, columns, require_grade=False).frame

        predict_frame(model, frame.head(1000))  # warm-up (tracing)
        t0 = time.perf_counter()
        out = predict_frame(model, frame)
        batch_s = time.perf_counter() - t0
        result.rows.append({"case": "batch (parsed frame)", "rows": len(out), "seconds": round(batch_s, 3),
                            "rows_per_s": round(len(out) / batch_s)})

        def to_file(output: Path) -> int:
            return predict_file(model_path, path, output, log=lambda line: None).rows

        for case, name in (("batch (file -> csv)", "predictions.csv"), ("batch (file -> parquet)", "p.parquet")):
            row = _median_run(functools.partial(to_file, Path(tmp) / name))
            result.rows.append({"case": case, **row, "rows_per_s": round(row["rows"] / row["seconds"]),
                                "cores_busy": round(row["cpu_seconds"] / row["seconds"], 2),
                                "rows_per_s_all_cores_busy": round(row["rows"] / row["cpu_seconds"] * _cores())})
        stages = file_stages(model_path, path, columns, Path(tmp) / "stages.csv")
        result.rows += stages
        result.params["file_stage_cpu_s_per_100k_rows"] = {
            r["stage"]: round(r["cpu_seconds"] / r["rows"] * 1e5, 3) for r in stages}
        t0 = time.perf_counter()
        written = _predict_in_memory(model_path, path, Path(tmp) / "memory.csv", batch_size=STREAM_BATCH_ROWS,
                                     max_bad_rows=0.01, fill_missing_columns=False, log=lambda line: None)
        file_s = time.perf_counter() - t0
        result.rows.append({"case": "batch (file -> csv, in memory)", "rows": written.rows,
                            "seconds": round(file_s, 3), "rows_per_s": round(written.rows / file_s)})
        memory_rows = opts.memory_rows or base["memory_rows"]
        for n in dict.fromkeys((rows, memory_rows)):
            big = str(synthetic_file(n, cache_dir=opts.cache_dir))
            out = run_isolated(predict_to_csv, str(model_path), big, str(Path(tmp) / "big.csv"),
                               isolate=not opts.no_isolate)
            result.rows.append({"case": f"peak memory (file -> csv, {n:,} rows)", "rows": out["rows"],
                                "seconds": out["seconds"], "rows_per_s": round(out["rows"] / out["seconds"]),
                                "peak_rss_mib": out["peak_rss_mib"], "base_rss_mib": out["base_rss_mib"]})
            result.params.setdefault("peak_rss_mib_by_rows", {})[str(n)] = out["peak_rss_mib"]

        records = raw_records(path, columns, single + WARMUP)

        def record_path(record: dict) -> None:
            predict_records(model, [record], source="record")

        def batch_path(record: dict) -> None:
            parsed, _ = parse_frame(pd.DataFrame([record]), source="record")
            predict_frame(model, parsed)

        for case, call in (("single record", record_path),
                           ("single record (parse_frame + predict_frame)", batch_path)):
            times = []
            for i, record in enumerate(records):
                t0 = time.perf_counter()
                call(record)
                if i >= WARMUP:
                    times.append((time.perf_counter() - t0) * 1000)
            result.rows.append({"case": case, "rows": len(times), "p50_ms": round(percentile(times, 50), 2),
                                "p99_ms": round(percentile(times, 99), 2),
                                "mean_ms": round(sum(times) / len(times), 2)})
        single_row = next(r for r in result.rows if r["case"] == "single record")
        p50, p99 = single_row["p50_ms"], single_row["p99_ms"]
    result.params["model_load_s"] = round(load_s, 2)
    file_rate = result.rows[1]["rows_per_s"]
    result.params["file_rows_per_s"] = file_rate
    result.params["file_parquet_rows_per_s"] = result.rows[2]["rows_per_s"]
    # the CPU work per row bounds the rate on this machine: rows / (CPU seconds / cores), were every core busy
    result.params["file_cpu_s_per_100k_rows"] = round(result.rows[1]["cpu_seconds"] / result.rows[1]["rows"] * 1e5, 3)
    result.params["file_rows_per_s_all_cores_busy"] = result.rows[1]["rows_per_s_all_cores_busy"]
    batch_rate = result.rows[0]["rows_per_s"]
    result.goals.append(Goal("batch prediction on raw records", f">= {GOAL_BATCH_ROWS_S:,} rows/s",
                             f"{batch_rate:,} rows/s", batch_rate >= GOAL_BATCH_ROWS_S))
    result.goals.append(Goal("file to predictions CSV (streamed, model load included)",
                             f">= {GOAL_FILE_ROWS_S:,} rows/s", f"{file_rate:,} rows/s", file_rate >= GOAL_FILE_ROWS_S))
    result.goals.append(Goal("single-record latency p50", f"< {GOAL_P50_MS:.0f} ms", f"{p50:.1f} ms (p99 {p99:.1f} ms)",
                             p50 < GOAL_P50_MS))
    return result
