"""`scale` benchmark: the largest LendingClub release's size (about 2.3M rows, 151 columns), synthetic.

In one fresh process (so its peak memory is its own): load + parse (needed columns), derived columns,
split (train, validation and test frames, the full frame released, as train() does), fill statistics, model
build and inputs (as train() prepares them: the feature matrix computed once where the model allows,
training.fitting.fit) and ONE training epoch, each timed, with the resident memory after each stage and its
peak within it. The process's peak resident memory is the figure to size an instance by. The main row is
the 2017 network (the head path, ``TrainConfig()``); ``--scale-tuned-rows N`` adds a row for the default
``tuned`` preset (with ``--data``) on N rows. Not in the default `make bench` set.
"""
from __future__ import annotations

import argparse
import time

from bench.common import Goal, Result, rss_mib, run_isolated, stage_peak_mib, stage_peak_reset, synthetic_file

DEFAULTS = {"rows": 2_300_000}
TINY = {"rows": 800}
FEATURES = "application"
SEED = 42
GOAL_PEAK_GIB = 4.0          # issue 15: 2.3M rows in 4 GB
GOAL_LOAD_CLEAN_EPOCH_S = 40.0   # load + clean + one epoch, on an idle machine


def load_clean_one_epoch(path: str, batch_size: int | None, preset: str | None = None) -> dict:
    import keras
    import pyarrow as pa

    from training.data import load_loans
    from training.features import add_derived_features, fit_fill_values, get_feature_set, raw_columns_for
    from training.fitting import fit
    from training.metrics import grade_labels
    from training.model import MODEL_PRESETS, build_model
    from training.presets import PRESETS
    from training.splits import split_rows
    from training.train import TrainConfig

    config = TrainConfig(features=FEATURES, seed=SEED)
    if preset is not None:
        config.model, config.batch_size = MODEL_PRESETS[PRESETS[preset].model], PRESETS[preset].batch_size
    batch_size = config.batch_size = batch_size or config.batch_size
    fs = get_feature_set(FEATURES)
    stages: dict[str, float] = {}
    rss: dict[str, float] = {}
    peaks: dict[str, float] = {}   # each stage's own peak RSS (VmHWM reset at its start)

    def mark(name: str, t0: float) -> float:
        now = time.perf_counter()
        stages[name] = round(now - t0, 2)
        rss[name] = round(rss_mib(), 1)
        peaks[name] = round(stage_peak_mib(), 1)
        stage_peak_reset()
        return now

    stage_peak_reset()
    t = t_start = time.perf_counter()
    loaded = load_loans(path, list(dict.fromkeys(["grade", *raw_columns_for(fs.columns)])))
    rows_read, frame = loaded.rows_read, loaded.frame
    del loaded
    t = mark("load_s", t)
    frame = add_derived_features(frame)
    labels = grade_labels(frame)
    t = mark("derive_s", t)
    tr, va, te = split_rows(labels, SEED)
    # the test frame is kept as train() keeps it (for the evaluation after fitting)
    train_frame, val_frame, test_frame = frame.iloc[tr], frame.iloc[va], frame.iloc[te]  # noqa: F841
    del frame
    pa.default_memory_pool().release_unused()   # as train() does
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
    return {"rows_read": rows_read, "train_rows": len(tr), "batch_size": batch_size,
            "stages": stages, "rss_after_mib": rss, "stage_peak_mib": peaks, "total_s": round(t - t_start, 2),
            "val_loss": round(times["val_loss"], 4)}


def _row(model: str, out: dict) -> dict:
    return {"model": model, "rows": out["rows_read"], "train_rows": out["train_rows"],
            "batch_size": out["batch_size"], **out["stages"], "total_s": out["total_s"],
            "peak_rss_mib": out["peak_rss_mib"], "val_loss": out["val_loss"]}


def run(opts: argparse.Namespace) -> Result:
    rows = opts.scale_rows or (TINY if opts.tiny else DEFAULTS)["rows"]
    t0 = time.perf_counter()
    path = synthetic_file(rows, cache_dir=opts.cache_dir)
    gen_s = time.perf_counter() - t0
    out = run_isolated(load_clean_one_epoch, str(path), opts.batch_size, isolate=not opts.no_isolate)
    result = Result("scale", {"rows": rows, "features": FEATURES, "file_mib": round(path.stat().st_size / 1024**2, 1),
                              "input": "synthetic raw LendingClub rows, gzip CSV, 151 columns"})
    result.rows.append(_row("reference (2017 network, head path)", out))
    result.params["rss_after_stage_mib"] = out["rss_after_mib"]
    result.params["peak_in_stage_mib"] = out["stage_peak_mib"]
    peak_gib = out["peak_rss_mib"] / 1024
    result.goals.append(Goal(f"peak memory, {out['rows_read']:,} rows (reference)", f"<= {GOAL_PEAK_GIB:.0f} GiB",
                             f"{peak_gib:.2f} GiB", peak_gib <= GOAL_PEAK_GIB))
    result.goals.append(Goal("load + clean + one epoch (idle machine)", f"<= {GOAL_LOAD_CLEAN_EPOCH_S:.0f} s",
                             f"{out['total_s']:.1f} s", out["total_s"] <= GOAL_LOAD_CLEAN_EPOCH_S))
    tuned_rows = getattr(opts, "scale_tuned_rows", None)
    if tuned_rows:
        tuned_path = synthetic_file(tuned_rows, cache_dir=opts.cache_dir)
        tuned = run_isolated(load_clean_one_epoch, str(tuned_path), None, "tuned", isolate=not opts.no_isolate)
        result.rows.append(_row("tuned preset (default with --data)", tuned))
        result.params["tuned_peak_in_stage_mib"] = tuned["stage_peak_mib"]
        if tuned_rows != rows:
            result.notes.append(f"the tuned row is measured on {tuned_rows:,} rows, not {rows:,}")
    result.notes.append(f"input generation (cached for later runs) took {gen_s:.1f} s; not counted")
    return result
