"""`predict` from files in chunks: reading and parsing, the model and writing overlap, in bounded memory.

A reader thread parses each file chunk by chunk (:class:`training.data.streaming.FileChunks`), this thread runs
the model on each chunk (:func:`training.predict.predict_frame`), a writer thread appends the predictions to a
temporary file (:class:`training.prediction_writer.ChunkWriter`); queues of :data:`QUEUE_CHUNKS` chunks between
them bound the memory. The reader starts on the columns named in the saved model's config while this thread
loads the model (checked against the loaded model's inputs; read again if they differ); the model is called
eagerly, a chunk per call, with no graph to build.
The counts load_loans checks (``max_bad_rows``, columns unparseable or only text) are checked as each file ends
and for all of them at the end; the output replaces an earlier file only when they pass. The log lines, the
dropped-rows file and the result are those of the in-memory path.

Row keys: rows are named by their ``id`` when every file has an id column, and tried so; a file without one, a
row without an id, or an id repeated within its file (compared as 64-bit hashes when the file is done), stops that
try, and the files are predicted again with rows named by their number (the output so far discarded).
"""
from __future__ import annotations

import json
import queue
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from training.data.streaming import CHUNK_ROWS, FileChunks, ParsedChunk

QUEUE_CHUNKS = 2        # chunks waiting between two stages
_DONE = object()
_ID_NOTE = "rows are named by their row number: the id column is absent, blank or repeated in some rows"


class _IdsNotKeys(Exception):
    """A file without ids, a row without an id, or a repeated id: the rows are named by their number instead."""


class _ColumnsDiffer(Exception):
    """The loaded model's inputs are not the columns read from its config."""

    def __init__(self, columns: list[str]):
        super().__init__("model inputs differ from its config")
        self.columns = columns


class _Model:
    """The model, loaded on first use (in the main thread, while the reader reads)."""

    def __init__(self, path: str | Path):
        self.path, self.model = path, None

    def get(self):
        if self.model is None:
            from training.predict import load_model

            self.model = load_model(self.path)
        return self.model


def predict_stream(model_path: str | Path, uris: Sequence[str], output: Path, *, max_bad_rows: float,
                   fill_missing_columns: bool, batch_size: int, chunk_rows: int = CHUNK_ROWS,
                   dropped_where: str = "", log: Callable[[str], None] = print):
    """Predict every row of the files at ``uris`` into ``output``: (the LoadedData summary, without its frame;
    the rows written). DataError (one line) as load_loans raises it, with nothing written."""
    from training.data.sources import fetch
    from training.predict import required_raw_columns

    model = _Model(model_path)
    columns = saved_input_columns(model_path)
    if columns is None:
        columns = required_raw_columns(model.get())
    with tempfile.TemporaryDirectory(prefix="spotgrade-data-") as tmp:
        paths = [fetch(uri, Path(tmp)) if uri.startswith("s3://") else Path(uri) for uri in uris]
        keys_by_id = True
        while True:
            try:
                return _run(model, columns, list(zip(paths, uris)), output, keys_by_id=keys_by_id,
                            max_bad_rows=max_bad_rows, fill_missing=fill_missing_columns, batch_size=batch_size,
                            chunk_rows=chunk_rows, dropped_where=dropped_where, log=log)
            except _IdsNotKeys:
                keys_by_id = False
            except _ColumnsDiffer as exc:
                columns = exc.columns


def saved_input_columns(model_path: str | Path) -> list[str] | None:
    """A saved model's input names from its config, as required_raw_columns orders them (numbers, then text,
    each sorted, as Keras flattens a dict of inputs); None where the file does not say."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
        inputs = [layer["config"] for layer in config["config"]["layers"] if layer["class_name"] == "InputLayer"]
        numeric = sorted(c["name"] for c in inputs if c["dtype"] != "string")
        return numeric + sorted(c["name"] for c in inputs if c["dtype"] == "string")
    except Exception:   # any file Keras may still load (or refuse with its own message)
        return None


def _run(model: _Model, columns: list[str], files: list[tuple[Path, str]], output: Path, *, keys_by_id: bool,
         max_bad_rows: float, fill_missing: bool, batch_size: int, chunk_rows: int, dropped_where: str,
         log: Callable[[str], None]):
    from training.data import LoadedData, SourceFile
    from training.data.loading import ROW_KEYS, check_dropped_share, sum_dropped
    from training.predict import load_lines, predict_frame, required_raw_columns
    from training.prediction_writer import ChunkWriter

    several = len(files) > 1
    keys = (["source"] if several else []) + (["id"] if keys_by_id else ["row"])
    keep = set(keys) | ({"id"} if "id" in columns else set())
    stop = threading.Event()
    parsed: queue.Queue = queue.Queue(QUEUE_CHUNKS)
    predicted: queue.Queue = queue.Queue(QUEUE_CHUNKS)
    opened: list[FileChunks] = []

    def chunks_of(path: Path, uri: str) -> FileChunks:
        f = FileChunks(path, uri, columns, max_bad_rows=max_bad_rows, fill_missing=fill_missing,
                       several=several, chunk_rows=chunk_rows, track_ids=keys_by_id)
        opened.append(f)
        return f

    writer = ChunkWriter(output)
    listed: list[pd.DataFrame] = []
    rows = 0
    reader = _Stage(lambda: _read(files, chunks_of, parsed, stop, keys_by_id), stop)
    write = _Stage(lambda: _write(predicted, writer, stop), stop)
    try:
        loaded_model = model.get()
        if required_raw_columns(loaded_model) != columns:
            raise _ColumnsDiffer(required_raw_columns(loaded_model))
        for chunk in _drain(parsed, stop, reader):
            listed.append(chunk.dropped_rows)
            if len(chunk.frame.columns) == 0:      # a file's malformed rows: listed only
                continue
            frame = chunk.frame.drop(columns=[c for c in ROW_KEYS if c in chunk.frame.columns and c not in keep])
            predictions = predict_frame(loaded_model, frame, batch_size=batch_size, traced=False)
            rows += len(predictions)
            _put(predicted, predictions, stop)
        _put(predicted, _DONE, stop)
        write.join()
        rows_read, dropped = sum(f.rows for f in opened), sum_dropped(f.dropped for f in opened)
        check_dropped_share([uri for _, uri in files], dropped, rows_read, max_bad_rows)
        writer.commit()
    except BaseException as exc:
        stop.set()
        reader.join(raise_error=False)
        write.join(raise_error=False)
        writer.discard()
        errors = [e for e in (exc, reader.error, write.error) if e is not None and not isinstance(e, _Stopped)]
        raise (errors[0] if errors else exc) from None
    dropped_rows = pd.concat(listed, ignore_index=True).reindex(columns=[*keys, "reason"])
    if "row" in keys:
        dropped_rows["row"] = dropped_rows["row"].astype("Int64")
    loaded = LoadedData(
        frame=pd.DataFrame(), dropped=dropped,   # no sha256 of the files: predict records none, and it costs a pass
        files=[SourceFile(f.uri, "", f.bytes, f.rows) for f in opened],
        rows_read=rows_read, keys=keys, dropped_rows=dropped_rows,
        notes=[_ID_NOTE] if not keys_by_id and any(f.has_id for f in opened) else [],
        spellings={f.uri: f.renamed for f in opened if f.renamed},
        absent={f.uri: f.filled for f in opened if f.filled})
    for line in load_lines(loaded, dropped_where):
        log(line)
    return loaded, rows


def _read(files: list[tuple[Path, str]], chunks_of: Callable[[Path, str], FileChunks], out: queue.Queue,
          stop: threading.Event, keys_by_id: bool) -> None:
    for path, uri in files:
        f = chunks_of(path, uri)
        if keys_by_id and not f.has_id:
            raise _IdsNotKeys
        for chunk in f:
            if keys_by_id and f.tally.ids_missing:
                raise _IdsNotKeys
            _put(out, chunk, stop)
        malformed = f.finish()
        if keys_by_id and not f.ids_name_rows():
            raise _IdsNotKeys
        if len(malformed):
            _put(out, ParsedChunk(frame=pd.DataFrame(), dropped_rows=malformed), stop)
    _put(out, _DONE, stop)


def _write(source: queue.Queue, writer, stop: threading.Event) -> None:
    while True:
        item = _get(source, stop)
        if item is _DONE:
            return
        writer.write(item)


class _Stage:
    """A thread running ``work``; its exception is raised again by :meth:`join` (and stops the others)."""

    def __init__(self, work: Callable[[], None], stop: threading.Event):
        self.error: BaseException | None = None
        self._stop = stop

        def run() -> None:
            try:
                work()
            except BaseException as exc:   # handed to the main thread
                self.error = exc
                stop.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, raise_error: bool = True) -> None:
        self.thread.join()
        if raise_error and self.error is not None:
            raise self.error


class _Stopped(Exception):
    """Another stage failed."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
    raise _Stopped


def _get(q: queue.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    raise _Stopped


def _drain(q: queue.Queue, stop: threading.Event, stage: _Stage) -> Iterator[ParsedChunk]:
    """The chunks of the reader stage, in order, until it is done."""
    while True:
        item = _get(q, stop)
        if item is _DONE:
            stage.join()
            return
        yield item
