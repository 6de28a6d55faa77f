"""A saved model on raw loan records: grade and the seven grade probabilities per row.

Records come from CSVs (any form `training.data.load_loans` reads) or JSON-lines files; both go through the
same parsing as training and are given to the model as they are parsed: the model computes the derived
columns and formats the categories itself (training.layers). Its input names say which columns are needed;
categories never seen in training fall in the OOV bucket. :func:`score_data` (model, data, probabilities) is
shared by `predict` and `evaluate`.

`predict`'s output (:func:`predict_file`): one row per scored input row, in input order, named by the input's
``id`` (or ``row``, its 1-based data row number, when the input has no usable id; with several files also
``source``, the file), then ``grade`` and ``prob_A`` .. ``prob_G``. The rows that cannot be scored are listed in
``<output>.dropped.csv`` (training.prediction_files.dropped_path) with the same keys and the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from training.data import GRADES, LoadedData
from training.errors import DataError
from training.prediction_files import dropped_path, is_parquet

PROBABILITY_COLUMNS = tuple(f"prob_{g}" for g in GRADES)
_PASS_THROUGH = ("source", "id", "row")  # identifying columns copied to the output when present
FILL_FLAG = "--fill-missing-columns"
STREAM_BATCH_ROWS = 65_536   # rows per call of the model in predict_file: one eager call per chunk


def load_model(path: str | Path):
    """Load a saved `.keras` model; DataError when the file is missing or not a Keras model."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found (give the model.keras of a training run)")
    import keras

    import training.layers  # noqa: F401  (registers the custom layers)

    try:
        # for prediction only: no optimizer to restore (an ensemble's saved one is not the one its members
        # trained with, and Keras warned about it on every load)
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError/OSError/zipfile errors for bad files
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: not a readable .keras model ({first_line[:200]})") from None


def required_raw_columns(model) -> list[str]:
    """The parsed record columns the model takes (its input names)."""
    from training.datasets import input_kinds

    numeric, text = input_kinds(model)
    return numeric + text


def predict_frame(model, frame: pd.DataFrame, *, batch_size: int = 1024, traced: bool = True) -> pd.DataFrame:
    """Grade and probabilities for each row of a parsed frame (its source/id/row columns first, when present);
    ``traced``: see training.fitting.predict_proba."""
    from training.fitting import predict_proba

    missing = [c for c in required_raw_columns(model) if c not in frame.columns]
    if missing:
        raise DataError(f"records lack the model's input columns: {', '.join(missing)}")
    if len(frame) == 0:
        probabilities = pd.DataFrame(columns=list(PROBABILITY_COLUMNS), dtype=float)
    else:
        probabilities = pd.DataFrame(predict_proba(model, frame, batch_size=batch_size, traced=traced),
                                     columns=list(PROBABILITY_COLUMNS))
    result = pd.DataFrame({c: frame[c].to_numpy() for c in _PASS_THROUGH if c in frame.columns})
    result["grade"] = np.array(GRADES, dtype=object)[probabilities.to_numpy().argmax(axis=1)] \
        if len(probabilities) else []
    return pd.concat([result, probabilities], axis=1)


def predict_records(model, records: Sequence[dict], *, source: str = "records") -> pd.DataFrame:
    """``predict_frame(model, parse_frame(pd.DataFrame(records)))`` for raw records (dicts of text/numbers).

    The records are parsed by `training.data.parse_records` (plain Python for a few records, the same
    rules as parse_frame, the same other spellings as load_loans): the same values and probabilities, with
    less set-up per record.
    """
    from training.data import parse_records

    frame, _ = parse_records(records, required_raw_columns(model) + [c for c in _PASS_THROUGH
                                                                     if any(c in r for r in records)],
                             source=source)
    return predict_frame(model, frame)


@dataclass
class ScoredData:
    loaded: LoadedData          # the parsed rows (with track_rows: their keys) and what was dropped
    predictions: pd.DataFrame   # per row of loaded.frame: its keys, grade, prob_A..prob_G


def score_data(model_path: str | Path, data: str | Path | Sequence[str | Path], *, require_grade: bool,
               max_bad_rows: float, fill_missing_columns: bool = False, track_rows: bool = False,
               batch_size: int = 1024, dropped_where: str = "", log: Callable[[str], None] = print) -> ScoredData:
    """Load the model, read the columns it needs from ``data`` (logging the files, renames, filled columns and
    drops: :func:`load_lines`) and predict every row: the one path of `predict` and `evaluate`."""
    from training.data import load_loans
    from training.data.loading import MissingColumnsError

    model = load_model(model_path)
    try:
        loaded = load_loans(data, required_raw_columns(model), require_grade=require_grade,
                            max_bad_rows=max_bad_rows, fill_missing=fill_missing_columns, track_rows=track_rows)
    except MissingColumnsError as exc:
        raise _missing_columns_error(exc) from None
    for line in load_lines(loaded, dropped_where):
        log(line)
    return ScoredData(loaded=loaded, predictions=predict_frame(model, loaded.frame, batch_size=batch_size))


def _missing_columns_error(exc) -> DataError:
    return DataError(f"{exc.uri}: lacks columns the model needs: {', '.join(exc.columns)}; pass {FILL_FLAG} "
                     f"to treat them as missing in every row (filled by the model's own rules)")


def load_lines(loaded: LoadedData, dropped_where: str = "") -> list[str]:
    """One line each: the files read, the columns read under other spellings, a warning naming the filled
    columns, the rows dropped by reason (all reasons in ``dropped_where``), and the notes on row keys."""
    from training.data.sources import describe_files, short_names
    from training.run_record import dropped_line

    lines = [f"read {loaded.rows_read:,} rows from {describe_files([f.uri for f in loaded.files])}"]
    if loaded.renamed:
        pairs = ", ".join(f"{spelling} as {name}" for spelling, name in sorted(loaded.renamed.items()))
        lines.append(f"read {len(loaded.renamed)} column(s) under another LendingClub spelling: {pairs}")
    filled = loaded.filled
    if filled:
        by_files: dict[tuple[str, ...], list[str]] = {}
        for column, uris in filled.items():
            if len(uris) < len(loaded.files):
                by_files.setdefault(tuple(uris), []).append(column)
        where = "".join(f"; {', '.join(columns)} absent from {short_names(uris)} only"
                        for uris, columns in by_files.items())
        lines.append(f"warning: {len(filled)} column(s) the model needs are absent from the data, treated as "
                     f"missing in every row and filled by the model's own rules: {', '.join(filled)}{where}")
    dropped = dropped_line(loaded.dropped, dropped_where) if dropped_where else dropped_line(loaded.dropped)
    return lines + ([dropped] if dropped else []) + loaded.notes


@dataclass
class PredictionResult:
    output: Path
    rows: int
    dropped: dict[str, int]                       # reason -> rows
    dropped_file: Path | None = None              # the dropped rows, when there were any
    filled_columns: list[str] = field(default_factory=list)
    renamed_columns: dict[str, str] = field(default_factory=dict)   # spelling in the data -> column


def predict_file(model_path: str | Path, data: str | Path | Sequence[str | Path], output: str | Path, *,
                 batch_size: int = STREAM_BATCH_ROWS, max_bad_rows: float = 0.01, fill_missing_columns: bool = False,
                 chunk_rows: int | None = None, log: Callable[[str], None] = print) -> PredictionResult:
    """Predict every record of ``data``; write ``output`` (CSV, or Parquet for ``.parquet``) and, when rows were
    dropped, ``dropped_path(output)`` (see the module docstring). The files are read in chunks of ``chunk_rows``
    (default training.data.streaming.CHUNK_ROWS) rows (training.predict_stream), except for an output that
    pandas compresses otherwise than gzip (.bz2, .zip, ...), which is predicted in memory."""
    from training.data.streaming import CHUNK_ROWS
    from training.prediction_writer import streamable

    output = Path(output)
    if not streamable(output):
        return _predict_in_memory(model_path, data, output, batch_size=batch_size, max_bad_rows=max_bad_rows,
                                  fill_missing_columns=fill_missing_columns, log=log)
    from training.data import resolve_sources
    from training.data.loading import MissingColumnsError, check_max_bad_rows
    from training.predict_stream import predict_stream

    if not Path(model_path).is_file():
        load_model(model_path)      # its error
    check_max_bad_rows(max_bad_rows)
    try:
        loaded, rows = predict_stream(model_path, resolve_sources(data), output, max_bad_rows=max_bad_rows,
                                      fill_missing_columns=fill_missing_columns, batch_size=batch_size,
                                      chunk_rows=chunk_rows or CHUNK_ROWS, dropped_where=str(dropped_path(output)),
                                      log=log)
    except MissingColumnsError as exc:
        raise _missing_columns_error(exc) from None
    listed = _write_dropped(loaded, dropped_path(output), log)
    log(f"wrote {rows} predictions to {output}")
    return PredictionResult(output=output, rows=rows, dropped=dict(loaded.dropped), dropped_file=listed,
                            filled_columns=list(loaded.filled), renamed_columns=loaded.renamed)


def _predict_in_memory(model_path: str | Path, data: str | Path | Sequence[str | Path], output: Path, *,
                       batch_size: int, max_bad_rows: float, fill_missing_columns: bool,
                       log: Callable[[str], None]) -> PredictionResult:
    """predict_file with every row loaded at once (load_loans) and written by pandas."""
    scored = score_data(model_path, data, require_grade=False, max_bad_rows=max_bad_rows,
                        fill_missing_columns=fill_missing_columns, track_rows=True, batch_size=batch_size,
                        dropped_where=str(dropped_path(output)), log=log)
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_table(scored.predictions, output)
    listed = _write_dropped(scored.loaded, dropped_path(output), log)
    log(f"wrote {len(scored.predictions)} predictions to {output}")
    return PredictionResult(output=output, rows=len(scored.predictions), dropped=dict(scored.loaded.dropped),
                            dropped_file=listed, filled_columns=list(scored.loaded.filled),
                            renamed_columns=scored.loaded.renamed)


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    if is_parquet(path):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, float_format="%.6f")


def _write_dropped(loaded: LoadedData, path: Path, log: Callable[[str], None]) -> Path | None:
    """The dropped rows' keys and reasons at ``path``; a stale file from an earlier run is removed."""
    rows = loaded.dropped_rows
    if rows is None or rows.empty:
        if path.is_file():
            path.unlink()
            log(f"removed {path}: no rows were dropped this time")
        return None
    rows.to_csv(path, index=False)
    log(f"listed the {len(rows)} dropped rows with their {' and '.join(loaded.keys)} in {path}")
    return path
