"""A saved model on raw loan records: grade and the seven grade probabilities per row.

Records come from a CSV (any form `training.data.load_loans` reads) or a JSON-lines file; both go
through the same parsing as training and are given to the model as they are parsed: the model computes
the derived columns and formats the categories itself (training.layers). Its input names say which
columns are needed; categories never seen in training fall in the OOV bucket.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from training.data import GRADES
from training.errors import DataError

PROBABILITY_COLUMNS = tuple(f"prob_{g}" for g in GRADES)
_PASS_THROUGH = ("id",)  # identifying columns copied to the output when present


def load_model(path: str | Path):
    """Load a saved `.keras` model; DataError when the file is missing or not a Keras model."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found (give the model.keras of a training run)")
    import keras

    import training.layers  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # Keras raises ValueError/OSError/zipfile errors for bad files
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: not a readable .keras model ({first_line[:200]})") from None


def required_raw_columns(model) -> list[str]:
    """The parsed record columns the model takes (its input names)."""
    from training.datasets import input_kinds

    numeric, text = input_kinds(model)
    return numeric + text


def predict_frame(model, frame: pd.DataFrame, *, batch_size: int = 1024) -> pd.DataFrame:
    """Grade and probabilities for each row of a parsed frame."""
    from training.fitting import predict_proba

    missing = [c for c in required_raw_columns(model) if c not in frame.columns]
    if missing:
        raise DataError(f"records lack the model's input columns: {', '.join(missing)}")
    if len(frame) == 0:
        probabilities = pd.DataFrame(columns=list(PROBABILITY_COLUMNS), dtype=float)
    else:
        probabilities = pd.DataFrame(predict_proba(model, frame, batch_size=batch_size),
                                     columns=list(PROBABILITY_COLUMNS))
    result = pd.DataFrame({c: frame[c].to_numpy() for c in _PASS_THROUGH if c in frame.columns})
    result["grade"] = [GRADES[i] for i in probabilities.to_numpy().argmax(axis=1)] if len(probabilities) else []
    return pd.concat([result, probabilities], axis=1)


def predict_records(model, records: Sequence[dict], *, source: str = "records") -> pd.DataFrame:
    """``predict_frame(model, parse_frame(pd.DataFrame(records)))`` for raw records (dicts of text/numbers).

    The records are parsed by `training.data.parse_records` (plain Python for a few records, the same
    rules as parse_frame): the same values and probabilities, with less set-up per record.
    """
    from training.data import parse_records

    frame, _ = parse_records(records, required_raw_columns(model) + [c for c in _PASS_THROUGH
                                                                     if any(c in r for r in records)],
                             source=source)
    return predict_frame(model, frame)


def _is_json_lines(path: str) -> bool:
    name = path.lower()
    return name.endswith((".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz"))


def read_json_lines(path: str | Path, columns: Sequence[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parse a JSON-lines file of raw records (one object per line) through training.data.parse_frame."""
    from training.data import parse_frame

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        raw = pd.read_json(path, lines=True, dtype=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a JSON-lines file ({str(exc).splitlines()[0][:120]})") from None
    if raw.empty:
        raise DataError(f"{path}: no records")
    keep = [c for c in list(columns) + list(_PASS_THROUGH) if c in raw.columns]
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: records lack columns: {', '.join(missing)}")
    return parse_frame(raw[keep], source=str(path))


def read_records(data: str | Path | Sequence[str | Path], columns: Sequence[str], *,
                 max_bad_rows: float = 0.01) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parsed records and the rows dropped (reason -> count) from a CSV or JSON-lines input."""
    from training.data import load_loans

    if isinstance(data, (str, Path)) and _is_json_lines(str(data)):
        return read_json_lines(data, columns)
    loaded = load_loans(data, list(columns), require_grade=False, max_bad_rows=max_bad_rows)
    return loaded.frame, dict(loaded.dropped)


@dataclass
class PredictionResult:
    output: Path
    rows: int
    dropped: dict[str, int]


def predict_file(model_path: str | Path, data: str | Path | Sequence[str | Path], output: str | Path, *,
                 batch_size: int = 1024, max_bad_rows: float = 0.01,
                 log: Callable[[str], None] = print) -> PredictionResult:
    """Predict every record of `data` and write a CSV (id if present, grade, prob_A..prob_G)."""
    model = load_model(model_path)
    frame, dropped = read_records(data, required_raw_columns(model), max_bad_rows=max_bad_rows)
    for reason, count in dropped.items():
        log(f"dropped {count} rows: {reason}")
    predictions = predict_frame(model, frame, batch_size=batch_size)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(output, index=False, float_format="%.6f")
    log(f"wrote {len(predictions)} predictions to {output}")
    return PredictionResult(output=output, rows=len(predictions), dropped=dropped)
