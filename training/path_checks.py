"""The checks of the paths a local command is given, made before anything heavy is imported (standard library only).

Inputs: each local `--data` item exists (a glob matches a file; `s3://` is left to the loader), the `--model` is a
file. Outputs, by kind:
- a run directory `<output>/<run-id>/` (train): refused when it exists, unless `force`, which replaces it;
- an output directory (evaluate): may exist, but not with a metrics.json unless `force`; created with its parents;
- an output file (predict, synthesize, audit): not a directory; its directory must exist; refused when it (or
  for predict its `.dropped.csv`) exists, unless `force`.
Each problem is one ConfigError (DataError for a missing input) naming the path and the way out.
"""
from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Iterable

from training.errors import ConfigError, DataError

_GLOB_CHARS = ("*", "?", "[")
METRICS_FILE = "metrics.json"
# What a `train` run writes first or last: a directory holding none of these is not replaced by --force.
_RUN_MARKERS = ("run.json", "model.keras", "metrics.json", "data", "tensorboard")


def check_data(items: Iterable[str]) -> None:
    """DataError for the first local path that does not exist or glob that matches no file."""
    for item in items:
        text = str(item)
        if text.startswith("s3://"):
            continue
        if any(c in text for c in _GLOB_CHARS):
            if not any(os.path.isfile(p) for p in glob.iglob(os.path.expanduser(text))):
                raise DataError(f"{text}: no files match this pattern")
        elif not os.path.exists(os.path.expanduser(text)):
            raise DataError(f"{text}: file not found")


def check_model(path: str) -> None:
    """DataError unless `path` is a file (the model.keras of a run)."""
    model = Path(path).expanduser()
    if model.is_dir() and (model / "model.keras").is_file():
        raise DataError(f"{path}: is a run directory; give the model file in it: {model / 'model.keras'}")
    if not model.is_file():
        raise DataError(f"{path}: model file not found (give the model.keras of a training run)")


def dropped_rows_path(output: str | Path) -> Path:
    """Where predict writes the rows it dropped: `<output without its suffix>.dropped.csv`."""
    return Path(output).with_suffix(".dropped.csv")


def check_run_dir(output: str, run_id: str | None, *, force: bool) -> Path | None:
    """The existing run directory `--force` is to replace (None when there is none); ConfigError otherwise."""
    _check_creatable_dir(output)
    if run_id is None:
        return None  # a new id (timestamp and random suffix) names a new directory
    run_dir = Path(output).expanduser() / run_id
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a run directory; give another --run-id")
    if not force:
        raise ConfigError(f"{run_dir}: a run with this id exists; give another --run-id, or --force to replace it")
    if any(run_dir.iterdir()) and not any((run_dir / name).exists() for name in _RUN_MARKERS):
        raise ConfigError(f"{run_dir}: exists and holds no run (no run.json or model.keras), so --force does "
                          "not delete it; give another --run-id")
    return run_dir


def replace_run_dir(run_dir: Path | None) -> None:
    """Delete the run directory check_run_dir returned (train --force), so no file of the old run remains."""
    if run_dir is not None:
        shutil.rmtree(run_dir)


def check_output_dir(output: str, *, force: bool) -> None:
    """An evaluation's output directory: creatable, and without a metrics.json unless `force`."""
    _check_creatable_dir(output)
    metrics = Path(output).expanduser() / METRICS_FILE
    if metrics.exists() and not force:
        raise ConfigError(f"{metrics}: exists; give another --output directory, or --force to overwrite it")


def check_output_file(output: str, *, force: bool, also: Iterable[Path] = (), inputs: Iterable[str] = ()) -> None:
    """An output file: not a directory, in an existing directory, not one of `inputs`, and neither it nor the
    files in `also` (written beside it) existing unless `force`."""
    path = Path(output).expanduser()
    if output.endswith(("/", os.sep)) or path.is_dir():
        raise ConfigError(f"--output {output}: is a directory; give a file name, e.g. {path / 'predictions.csv'}")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ConfigError(f"--output {output}: {parent} {what}; create the directory first")
    for item in inputs:
        if path.exists() and not str(item).startswith("s3://") and os.path.exists(item) and path.samefile(item):
            raise ConfigError(f"--output {output}: is an input file ({item}); give another file name")
    for existing in (path, *also):
        if existing.exists() and not force:
            raise ConfigError(f"{existing}: exists; give another --output, or --force to overwrite it")


def remove_stale(paths: Iterable[Path]) -> None:
    """Delete files an earlier run wrote beside the output (e.g. a `.dropped.csv` this run may not write)."""
    for path in paths:
        path.unlink(missing_ok=True)


def _check_creatable_dir(output: str) -> None:
    """ConfigError when `output` is a file or lies under one (the directory is created with its parents)."""
    path = Path(output).expanduser()
    for ancestor in (path, *path.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                where = "is a file" if ancestor == path else f"lies under the file {ancestor}"
                raise ConfigError(f"--output {output}: {where}; give a directory")
            return
