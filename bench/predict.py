"""`predict` benchmark: a saved model on raw records, in batch and one record at a time.

A model is trained briefly (training.train.train, default settings) and loaded with
training.predict.load_model; then:
- `batch (parsed frame)`: predict_frame on N parsed raw records (derived features, inputs, model)
- `batch (file -> csv)`: predict_file, gzip CSV in -> predictions CSV out (read + parse included)
- `single record`: one raw record (a dict of text values as in the CSV / a JSON line) through
  predict_records (parse + derived features + model, probabilities out), timed per call after a
  warm-up; p50 and p99
- `single record (parse_frame + predict_frame)`: the same records through the batch path, for reference
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import Goal, Result, notice_lines, percentile, synthetic_file

DEFAULTS = {"rows": 100_000, "single": 300, "model_rows": 20_000, "model_epochs": 2}
TINY = {"rows": 1_000, "single": 20, "model_rows": 1_000, "model_epochs": 1}
GOAL_BATCH_ROWS_S = 100_000
GOAL_P50_MS = 20.0
WARMUP = 5


def train_model(rows: int, epochs: int, out_dir: Path, cache_dir: Path | None) -> Path:
    from training.train import TrainConfig, train

    path = str(synthetic_file(rows, seed=11, cache_dir=cache_dir))
    result = train(TrainConfig(data=[path], epochs=epochs, output_dir=out_dir, run_id="bench-predict-model",
                               baselines=False), log=lambda line: None)   # a model to predict with: no baselines
    return result.run_dir / "model.keras"


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
    from training.predict import load_model, predict_file, predict_frame, predict_records, required_raw_columns

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

        t0 = time.perf_counter()
        written = predict_file(model_path, path, Path(tmp) / "predictions.csv", log=lambda line: None)
        file_s = time.perf_counter() - t0
        result.rows.append({"case": "batch (file -> csv)", "rows": written.rows, "seconds": round(file_s, 3),
                            "rows_per_s": round(written.rows / file_s)})

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
        p50, p99 = result.rows[2]["p50_ms"], result.rows[2]["p99_ms"]
    result.params["model_load_s"] = round(load_s, 2)
    batch_rate = result.rows[0]["rows_per_s"]
    result.goals.append(Goal("batch prediction on raw records", f">= {GOAL_BATCH_ROWS_S:,} rows/s",
                             f"{batch_rate:,} rows/s", batch_rate >= GOAL_BATCH_ROWS_S))
    result.goals.append(Goal("single-record latency p50", f"< {GOAL_P50_MS:.0f} ms", f"{p50:.1f} ms (p99 {p99:.1f} ms)",
                             p50 < GOAL_P50_MS))
    return result
