"""run.json of a training run: config, data, fill, audit, history, library versions, devices, git commit.

Also ``write_json``, the one way a run writes its JSON files (metrics.json, run.json, the epoch history).
"""
from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.data import LoadedData
    from training.features import FeatureSet, FillValues
    from training.train import TrainConfig

SYNTHETIC_NOTE = ("Trained on the built-in SYNTHETIC sample (training.synthetic): Lending-Club-shaped rows "
                  "generated on the fly, not real loans; its metrics say nothing about real data.")
DATA_NOTE = "Trained on the data files listed under data.files."
VERSIONED_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "pyarrow", "scikit-learn",
                      "matplotlib", "boto3")


def write_json(data: Any, path: Path) -> Path:
    """Write JSON (indented, keys in insertion order) through a temporary file, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def dropped_line(dropped: dict[str, int], where: str = "run.json (data.rows_dropped)") -> str | None:
    """One log line for the rows dropped, by reason (most first, three named), or None when none were;
    ``where``: the file and key that list every reason."""
    if not dropped:
        return None
    ranked = sorted(dropped.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{n:,} {reason}" for reason, n in ranked[:3])
    more = f" and {len(ranked) - 3} more reasons; all in {where}" if len(ranked) > 3 else ""
    return f"dropped {sum(dropped.values()):,} rows: {shown}{more}"


def versions() -> dict[str, str]:
    """Python's and the installed VERSIONED_PACKAGES' versions."""
    found = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def git_commit() -> str | None:
    """The checkout's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def devices() -> list[str]:
    """TensorFlow's physical devices (CPU and GPUs)."""
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices()]


def config_dict(config: TrainConfig) -> dict:
    """The run's settings as plain JSON values."""
    result = asdict(config)
    result["output_dir"] = str(config.output_dir)
    result["cache_dir"] = None if config.cache_dir is None else str(config.cache_dir)
    result["model"]["hidden_units"] = list(config.model.hidden_units)
    return result


def run_info(*, run_id: str, config: TrainConfig, feature_set: FeatureSet, loaded: LoadedData, rows_used: int,
             fill: FillValues, values_filled: dict[str, int], audit: dict[str, Any],
             history: dict[str, list[float]], epochs_trained: int, best_epoch: int | None,
             started: float, started_at: datetime,
             baseline_search: dict[str, Any] | None = None,
             precision: dict[str, str] | None = None) -> dict[str, Any]:
    """The contents of run.json (key order as written); ``started``: time.monotonic() at the start;
    ``baseline_search``: the tuned baselines' search records (``training.baselines.pop_search_records``);
    ``precision``: the dtype policy the run trained in and why (``training.precision.resolve``)."""
    synthetic = config.data is None
    return {
        "run_id": run_id,
        "synthetic": synthetic,
        "note": SYNTHETIC_NOTE if synthetic else DATA_NOTE,
        "config": config_dict(config),
        "precision": precision or {"policy": "float32", "why": "--precision"},
        "feature_set": {"name": feature_set.name, "numeric": list(feature_set.numeric),
                        "categorical": list(feature_set.categorical)},
        "data": {
            "files": [asdict(f) for f in loaded.files],
            "rows_read": loaded.rows_read,
            "rows_dropped": dict(loaded.dropped),
            "repeated_ids": loaded.repeated_ids,
            "absent_columns": loaded.filled,
            "rows_used": rows_used,
            "sample": config.sample,
        },
        "fill": {**fill.to_dict(), "values_filled": values_filled},
        "audit": audit,
        "baseline_search": baseline_search or {},
        "epochs_trained": epochs_trained,
        "best_epoch": best_epoch,
        "history": history,
        "versions": versions(),
        "devices": devices(),
        "git_commit": git_commit(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(time.monotonic() - started, 2),
    }
