"""`predict`'s output written chunk by chunk into a temporary file beside it, put in its place only when the whole
run succeeded (:meth:`ChunkWriter.commit`; :meth:`ChunkWriter.discard` leaves nothing behind).

CSV (gzip for a name ending ``.gz``) holds the text pandas' ``to_csv(index=False, float_format="%.6f")`` writes,
built with Arrow and numpy: the probabilities (float32, exact in float64 times 10^6) are rounded to millionths as
``%.6f`` rounds them, half to even, and text is quoted where the csv module quotes it. A chunk with anything else
(another float column, a NaN) goes through pandas. Parquet: one row group per chunk, the schema of the first.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.prediction_files import is_parquet

_NEEDS_QUOTES = r'[,"\r\n]'


def streamable(output: str | Path) -> bool:
    """Whether :class:`ChunkWriter` writes this output (CSV, gzip CSV or Parquet; pandas' other compressions
    not)."""
    name = str(output).lower()
    return is_parquet(name) or not name.endswith((".bz2", ".zip", ".xz", ".zst", ".tar"))


class ChunkWriter:
    """Predictions appended chunk by chunk to a temporary file in the output's directory."""

    def __init__(self, output: Path):
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        self.partial = output.with_name(f".{output.name}.{os.getpid()}.partial")   # created as the output would be
        name = str(self.partial)
        self._parquet = is_parquet(output)
        self._stream = None if self._parquet else pa.CompressedOutputStream(name, "gzip") \
            if str(output).lower().endswith(".gz") else pa.OSFile(name, "wb")
        self._parquet_writer = None
        self._empty: pd.DataFrame | None = None
        self._header = False

    def write(self, frame: pd.DataFrame) -> None:
        if self._parquet:
            self._write_parquet(frame)
            return
        if not self._header:
            self._stream.write(",".join(_quoted_text(str(c)) for c in frame.columns).encode() + b"\n")
            self._header = True
        if len(frame):
            self._stream.write(csv_text(frame))

    def commit(self) -> None:
        """Close the file and put it in the output's place."""
        self._close()
        os.replace(self.partial, self.output)

    def discard(self) -> None:
        """Close and remove the temporary file."""
        try:
            self._close()
        finally:
            self.partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._parquet and self._parquet_writer is None and self._empty is not None:
            self._write_parquet(self._empty, last=True)      # no rows at all: the schema of an empty chunk
        if self._parquet_writer is not None:
            self._parquet_writer.close()
            self._parquet_writer = None
        if self._stream is not None and not self._stream.closed:
            self._stream.close()

    def _write_parquet(self, frame: pd.DataFrame, last: bool = False) -> None:
        import pyarrow.parquet as pq

        if self._parquet_writer is None and not len(frame) and not last:
            self._empty = frame            # its types are not those of rows (float64, object): wait for rows
            return
        if self._parquet_writer is None:
            schema = pa.Schema.from_pandas(frame, preserve_index=False)
            for i, f in enumerate(schema):
                if pa.types.is_null(f.type):   # an object column of an empty first chunk: text
                    schema = schema.set(i, f.with_type(pa.string()))
            self._parquet_writer = pq.ParquetWriter(self.partial, schema)
            self._schema = schema
        self._parquet_writer.write_table(pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False))


def csv_text(frame: pd.DataFrame) -> bytes | pa.Buffer:
    """The frame's rows as pandas' ``to_csv(index=False, header=False, float_format="%.6f")`` writes them."""
    floats = 0                                  # the trailing float32 columns (the probabilities): one block
    while floats < len(frame.columns) and frame.dtypes.iloc[-1 - floats] == np.float32:
        floats += 1
    lead = list(frame.columns[:len(frame.columns) - floats])
    columns = [_column_text(frame[c]) for c in lead]
    if floats:
        columns.append(_float_block(frame.iloc[:, len(lead):].to_numpy()))
    if any(c is None for c in columns):
        return frame.to_csv(index=False, header=False, float_format="%.6f").encode()
    if not floats:
        columns[-1] = pc.binary_join_element_wise(columns[-1], "", "\n")
    lines = pc.binary_join_element_wise(*columns, ",") if len(columns) > 1 else columns[0]
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[[lines.offset, lines.offset + len(lines)]]
    return data.slice(int(bounds[0]), int(bounds[1] - bounds[0]))


def _float_block(values: np.ndarray) -> pa.Array | None:
    """Per row ``"%.6f,...,%.6f\n"`` of float32 values in [0, 10) (exact in float64 times 10^6: rounded half to
    even, as ``%`` rounds), as fixed-width text built digit by digit; None for anything else (NaN too)."""
    units = np.rint(values.astype(np.float64) * 1e6)
    if not (np.isfinite(units).all() and (units >= 0).all() and (units < 10**7).all()):
        return None
    units = units.astype(np.int32)
    rows, columns = units.shape
    text = np.empty((rows, columns, 9), dtype=np.uint8)
    text[:, :, 1] = ord(".")
    text[:, :, 8] = ord(",")
    text[:, -1, 8] = ord("\n")
    for place in (7, 6, 5, 4, 3, 2, 0):        # d.dddddd, the last digit first
        units, digit = np.divmod(units, 10)
        text[:, :, place] = digit + ord("0")
    width = columns * 9
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(text.reshape(-1)))


def _column_text(series: pd.Series) -> pa.Array | None:
    """A column's CSV fields (no nulls), or None where pandas must write it."""
    values = series.to_numpy()
    if values.dtype.kind in "iu":
        return pc.cast(pa.array(values), pa.string())
    if values.dtype == object or pd.api.types.is_string_dtype(series):
        try:
            text = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowException, TypeError):
            return None
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(pc.match_substring_regex(text, _NEEDS_QUOTES), quoted, text)
        return pc.fill_null(text, "")
    return None


def _quoted_text(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\r\n') else text
