"""`scale` benchmark: the largest LendingClub release's size (about 2.3M rows, 151 columns), synthetic.

In one fresh process (so its peak memory is its own): load + parse (needed columns), derived columns,
split, fill statistics, model build and inputs (as train() prepares them: the feature matrix computed
once where the model allows, training.fitting.fit) and ONE training epoch, each timed; the
process's peak resident memory is the figure to size an instance by. Not in the default `make bench` set.
"""
from __future__ import annotations

import argparse
import time

from bench.common import Result, rss_mib, run_isolated, synthetic_file

DEFAULTS = {"rows": 2_300_000}
TINY = {"rows": 800}
FEATURES = "application"
SEED = 42


def load_clean_one_epoch(path: str, batch_size: int | None) -> dict:
    import keras

    from training.data import load_loans
    from training.features import add_derived_features, fit_fill_values, get_feature_set, raw_columns_for
    from training.fitting import fit
    from training.metrics import grade_labels
    from training.model import build_model
    from training.splits import split_rows
    from training.train import TrainConfig

    config = TrainConfig(features=FEATURES, seed=SEED)
    batch_size = config.batch_size = batch_size or config.batch_size
    fs = get_feature_set(FEATURES)
    stages: dict[str, float] = {}
    rss: dict[str, float] = {}

    def mark(name: str, t0: float) -> float:
        now = time.perf_counter()
        stages[name] = round(now - t0, 2)
        rss[name] = round(rss_mib(), 1)
        return now

    t = t_start = time.perf_counter()
    loaded = load_loans(path, list(dict.fromkeys(["grade", *raw_columns_for(fs.columns)])))
    t = mark("load_s", t)
    frame = add_derived_features(loaded.frame)
    labels = grade_labels(frame)
    t = mark("derive_s", t)
    tr, va, _ = split_rows(labels, SEED)
    train_frame, val_frame = frame.iloc[tr], frame.iloc[va]
    fill = fit_fill_values(train_frame, fs)
    t = mark("split_fill_s", t)
    keras.utils.set_random_seed(SEED)
    built = build_model(fs, train_frame, fill, config.model, batch_size=batch_size)
    times = {"build_input": t}

    class Timer(keras.callbacks.Callback):
        """Splits fit's time: inputs built (the head's feature matrix, computed once) vs the epoch."""

        def on_train_begin(self, logs=None):
            times["epoch"] = mark("build_input_s", times["build_input"])

        def on_epoch_end(self, epoch, logs=None):
            times["val_loss"] = float((logs or {})["val_loss"])

    fit(built, train_frame=train_frame, y_train=labels[tr], val_frame=val_frame, y_val=labels[va],
        batch_size=batch_size, epochs=1, seed=SEED, strategy=None, class_weight=None, callbacks=[Timer()],
        log=lambda line: None)
    t = mark("epoch_s", times["epoch"])
    return {"rows_read": loaded.rows_read, "train_rows": len(tr), "batch_size": batch_size,
            "stages": stages, "rss_after_mib": rss, "total_s": round(t - t_start, 2),
            "val_loss": round(times["val_loss"], 4)}


def run(opts: argparse.Namespace) -> Result:
    rows = opts.scale_rows or (TINY if opts.tiny else DEFAULTS)["rows"]
    t0 = time.perf_counter()
    path = synthetic_file(rows, cache_dir=opts.cache_dir)
    gen_s = time.perf_counter() - t0
    out = run_isolated(load_clean_one_epoch, str(path), opts.batch_size, isolate=not opts.no_isolate)
    result = Result("scale", {"rows": rows, "features": FEATURES, "file_mib": round(path.stat().st_size / 1024**2, 1),
                              "input": "synthetic raw LendingClub rows, gzip CSV, 151 columns"})
    row = {"rows": out["rows_read"], "train_rows": out["train_rows"], "batch_size": out["batch_size"],
           **out["stages"], "total_s": out["total_s"], "peak_rss_mib": out["peak_rss_mib"],
           "val_loss": out["val_loss"]}
    result.rows.append(row)
    result.params["rss_after_stage_mib"] = out["rss_after_mib"]
    result.notes.append(f"input generation (cached for later runs) took {gen_s:.1f} s; not counted")
    return result
