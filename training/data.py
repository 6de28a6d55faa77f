"""Find, open and parse raw LendingClub loan CSVs into a typed frame.

Sources: one path, a directory (its .csv/.csv.gz/.gz/.zip files), a glob, an ``s3://bucket/key`` object,
an ``s3://bucket/prefix/`` (or a glob under it), or a list of any of these. Files may be plain CSV,
gzip or a zip holding exactly one CSV (detected from the first bytes, not the name).

LendingClub's own quirks handled here:

* a notice line before the header (``Notes offered by Prospectus (https://...)``): leading lines
  without a comma are skipped;
* summary lines at the end (``Total amount funded in policy code 1: ...``) and separator lines
  (``Loans that do not meet the credit policy``): one-field rows that start with a letter are ignored
  and not counted as data rows; any other row with the wrong number of fields is dropped and counted
  as ``"malformed row"``;
* several spellings of the same field:

  ============================  ==========================================  =========================
  column                        spellings                                   parsed to
  ============================  ==========================================  =========================
  ``int_rate``, ``revol_util``  ``" 11.55%"``, ``11.55``, ``0.1155``        percent, float (11.55)
  ``term``                      ``" 36 months"``, ``36``                    months, float (36.0)
  dates (``issue_d``, ...)      ``Dec-2015``, ``2015-12-01``                ``datetime64[ns]``
  ``emp_length``                ``"10+ years"``, ``"< 1 year"``, ``"n/a"``  ``"10+ years"``, ... / NaN
  ============================  ==========================================  =========================

  Fractions: a percent column (:data:`FRACTION_PERCENT_COLUMNS`) with no ``%`` sign in a file is read
  as fractions, and multiplied by 100, when the median of its values in that file is at most
  :data:`FRACTION_MEDIAN_MAX` (1.5). The median, not the maximum, because real fraction files hold
  utilisations above 100% (``revol_util`` 1.19 in the 2007-2011 file), while no percent file has a
  median rate or utilisation near 1%. The decision is made per column and per file (for
  :func:`parse_frame`: per call, so a single record of 0.9 is read as 90%).

Rows whose grade is missing or outside A-G, or with a value that cannot be parsed, are dropped and
counted by reason (the first reason of a row counts). A load fails with :class:`DataError` when the
dropped share exceeds ``max_bad_rows``, or when one column alone is unparseable in more than that
share of a file's rows (a numeric column full of text), or when every value of a column is text.
"""
from __future__ import annotations

import csv
import fnmatch
import glob
import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from training.errors import DataError

GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G")

#: The 151 columns of LendingClub's raw accepted-loan files (2012-2018 releases), in file order.
RAW_COLUMNS: tuple[str, ...] = (
    "id", "member_id", "loan_amnt", "funded_amnt", "funded_amnt_inv", "term", "int_rate", "installment",
    "grade", "sub_grade", "emp_title", "emp_length", "home_ownership", "annual_inc", "verification_status",
    "issue_d", "loan_status", "pymnt_plan", "url", "desc", "purpose", "title", "zip_code", "addr_state", "dti",
    "delinq_2yrs", "earliest_cr_line", "fico_range_low", "fico_range_high", "inq_last_6mths",
    "mths_since_last_delinq", "mths_since_last_record", "open_acc", "pub_rec", "revol_bal", "revol_util",
    "total_acc", "initial_list_status", "out_prncp", "out_prncp_inv", "total_pymnt", "total_pymnt_inv",
    "total_rec_prncp", "total_rec_int", "total_rec_late_fee", "recoveries", "collection_recovery_fee",
    "last_pymnt_d", "last_pymnt_amnt", "next_pymnt_d", "last_credit_pull_d", "last_fico_range_high",
    "last_fico_range_low", "collections_12_mths_ex_med", "mths_since_last_major_derog", "policy_code",
    "application_type", "annual_inc_joint", "dti_joint", "verification_status_joint", "acc_now_delinq",
    "tot_coll_amt", "tot_cur_bal", "open_acc_6m", "open_act_il", "open_il_12m", "open_il_24m",
    "mths_since_rcnt_il", "total_bal_il", "il_util", "open_rv_12m", "open_rv_24m", "max_bal_bc", "all_util",
    "total_rev_hi_lim", "inq_fi", "total_cu_tl", "inq_last_12m", "acc_open_past_24mths", "avg_cur_bal",
    "bc_open_to_buy", "bc_util", "chargeoff_within_12_mths", "delinq_amnt", "mo_sin_old_il_acct",
    "mo_sin_old_rev_tl_op", "mo_sin_rcnt_rev_tl_op", "mo_sin_rcnt_tl", "mort_acc", "mths_since_recent_bc",
    "mths_since_recent_bc_dlq", "mths_since_recent_inq", "mths_since_recent_revol_delinq",
    "num_accts_ever_120_pd", "num_actv_bc_tl", "num_actv_rev_tl", "num_bc_sats", "num_bc_tl", "num_il_tl",
    "num_op_rev_tl", "num_rev_accts", "num_rev_tl_bal_gt_0", "num_sats", "num_tl_120dpd_2m", "num_tl_30dpd",
    "num_tl_90g_dpd_24m", "num_tl_op_past_12m", "pct_tl_nvr_dlq", "percent_bc_gt_75", "pub_rec_bankruptcies",
    "tax_liens", "tot_hi_cred_lim", "total_bal_ex_mort", "total_bc_limit", "total_il_high_credit_limit",
    "revol_bal_joint", "sec_app_fico_range_low", "sec_app_fico_range_high", "sec_app_earliest_cr_line",
    "sec_app_inq_last_6mths", "sec_app_mort_acc", "sec_app_open_acc", "sec_app_revol_util",
    "sec_app_open_act_il", "sec_app_num_rev_accts", "sec_app_chargeoff_within_12_mths",
    "sec_app_collections_12_mths_ex_med", "sec_app_mths_since_last_major_derog", "hardship_flag",
    "hardship_type", "hardship_reason", "hardship_status", "deferral_term", "hardship_amount",
    "hardship_start_date", "hardship_end_date", "payment_plan_start_date", "hardship_length", "hardship_dpd",
    "hardship_loan_status", "orig_projected_additional_accrued_interest", "hardship_payoff_balance_amount",
    "hardship_last_payment_amount", "disbursement_method", "debt_settlement_flag", "debt_settlement_flag_date",
    "settlement_status", "settlement_date", "settlement_amount", "settlement_percentage", "settlement_term",
)

#: Text columns (kept as stripped Python strings, blank -> NaN).
TEXT_COLUMNS = frozenset({
    "id", "member_id", "url", "desc", "title", "emp_title", "sub_grade", "home_ownership",
    "verification_status", "loan_status", "pymnt_plan", "purpose", "zip_code", "addr_state",
    "initial_list_status", "application_type", "verification_status_joint", "hardship_flag", "hardship_type",
    "hardship_reason", "hardship_status", "hardship_loan_status", "disbursement_method",
    "debt_settlement_flag", "settlement_status",
})
#: Month dates ("Dec-2015" or "2015-12-01").
DATE_COLUMNS = frozenset({
    "issue_d", "earliest_cr_line", "last_pymnt_d", "next_pymnt_d", "last_credit_pull_d",
    "sec_app_earliest_cr_line", "hardship_start_date", "hardship_end_date", "payment_plan_start_date",
    "debt_settlement_flag_date", "settlement_date",
})
#: Percent columns that some releases publish as fractions (0.1155); see the module docstring.
FRACTION_PERCENT_COLUMNS = frozenset({"int_rate", "revol_util", "sec_app_revol_util"})
FRACTION_MEDIAN_MAX = 1.5
#: Every other column of RAW_COLUMNS is numeric (float64); "%" signs are stripped everywhere.
NUMERIC_COLUMNS = frozenset(
    c for c in RAW_COLUMNS
    if c not in TEXT_COLUMNS | DATE_COLUMNS | {"grade", "term", "emp_length"}) | {"issue_year"}

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".zip")
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "#N/A"]
EMP_LENGTHS = ("< 1 year", "1 year") + tuple(f"{i} years" for i in range(2, 10)) + ("10+ years",)
REASON_GRADE_MISSING = "grade missing"
REASON_GRADE_INVALID = "grade not in A-G"
REASON_MALFORMED = "malformed row"
_GLOB_CHARS = re.compile(r"[*?\[]")
_PEEK_BYTES = 1 << 20
_MAX_NOTICE_LINES = 5


@dataclass(frozen=True)
class SourceFile:
    uri: str          # as given (local path or s3://bucket/key)
    sha256: str
    bytes: int
    rows: int         # data rows read (before dropping)


@dataclass
class LoadedData:
    frame: pd.DataFrame                    # parsed columns, default RangeIndex
    files: list[SourceFile]
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> rows dropped
    rows_read: int = 0


# ----------------------------------------------------------------------------------------------- load

def load_loans(data: str | Path | Sequence[str | Path], columns: Iterable[str], *,
               require_grade: bool = True, max_bad_rows: float = 0.01) -> LoadedData:
    """Read and parse the needed ``columns`` (plus ``grade`` when required) of every source file."""
    if not 0.0 <= max_bad_rows <= 1.0:
        raise DataError(f"max_bad_rows must be a share between 0 and 1, got {max_bad_rows}")
    wanted = list(dict.fromkeys(columns))
    if require_grade and "grade" not in wanted:
        wanted.append("grade")
    uris = resolve_sources(data)
    frames, files, dropped = [], [], {}
    with tempfile.TemporaryDirectory(prefix="spotgrade-data-") as tmp:
        for uri in uris:
            local = _fetch(uri, Path(tmp)) if uri.startswith("s3://") else Path(uri)
            frame, source, file_dropped = _load_file(local, uri, wanted, require_grade, max_bad_rows)
            frames.append(frame)
            files.append(source)
            for reason, n in file_dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
    rows_read = sum(f.rows for f in files)
    bad = sum(dropped.values())
    if rows_read and bad / rows_read > max_bad_rows:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        raise DataError(f"{_names(uris)}: {bad} of {rows_read} rows ({bad / rows_read:.1%}) are unusable "
                        f"({reasons}), more than the limit of {max_bad_rows:.1%}; fix the data or raise "
                        f"--max-bad-rows")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # the raw tables are gone: hand arrow's freed blocks back to the OS, or they stay in the process for
    # the whole run (2.3M rows: 1.2 GB, bench/scale.py)
    pa.default_memory_pool().release_unused()
    return LoadedData(frame=frame, files=files, dropped=dropped, rows_read=rows_read)


def resolve_sources(data: str | Path | Sequence[str | Path]) -> list[str]:
    """Expand paths, directories, globs and s3 prefixes into a sorted list of file URIs."""
    items = [data] if isinstance(data, (str, Path)) else list(data)
    if not items:
        raise DataError("no data files given")
    uris: list[str] = []
    for item in items:
        text = str(item)
        if text.startswith("s3://"):
            uris.extend(_resolve_s3(text))
        elif _GLOB_CHARS.search(text):
            found = sorted(p for p in glob.glob(os.path.expanduser(text)) if os.path.isfile(p))
            if not found:
                raise DataError(f"{text}: no files match this pattern")
            uris.extend(found)
        elif os.path.isdir(text):
            found = sorted(str(p) for p in Path(text).iterdir() if p.is_file() and _is_data_name(p.name))
            if not found:
                raise DataError(f"{text}: directory holds no .csv, .csv.gz or .zip files")
            uris.extend(found)
        elif not os.path.exists(text):
            raise DataError(f"{text}: file not found")
        else:
            uris.append(text)
    return uris


def _load_file(path: Path, uri: str, wanted: list[str], require_grade: bool,
               max_bad_rows: float) -> tuple[pd.DataFrame, SourceFile, dict[str, int]]:
    sha, size = _digest(path, uri)
    if size == 0:
        raise DataError(f"{uri}: file is empty")
    header, notice_lines = _read_header(path, uri)
    missing = [c for c in wanted if c not in header]
    if require_grade and "grade" in missing:
        raise DataError(f"{uri}: no 'grade' column (the label); is this a LendingClub loan file?")
    if missing:
        raise DataError(f"{uri}: missing columns needed by the feature set: {', '.join(missing)}")
    table, malformed = read_table(path, uri, wanted, notice_lines)
    rows = table.num_rows + malformed
    if rows == 0:
        raise DataError(f"{uri}: has a header but no data rows")
    raw = table.to_pandas(split_blocks=True)   # one block per column: no 2-D stacking copy
    frame, masks = _parse(raw, uri, require_grade)
    n = len(raw)
    for reason, mask in masks.items():
        count = int(mask.sum())
        if reason.startswith("unparseable ") and count > max_bad_rows * n:
            column = reason.removeprefix("unparseable ")
            example = raw.loc[mask, column].iloc[0]
            raise DataError(f"{uri}: column {column!r} has {count} of {n} values that are not numbers/dates "
                            f"(e.g. {str(example)[:40]!r}); check that the column holds what its name says")
    frame, dropped = _drop(frame, masks, keep_index=False)
    if malformed:
        dropped[REASON_MALFORMED] = malformed
    return frame, SourceFile(uri=uri, sha256=sha, bytes=size, rows=rows), dropped


# ---------------------------------------------------------------------------------------------- files

def _is_data_name(name: str) -> bool:
    return name.lower().endswith(DATA_SUFFIXES)


def _names(uris: list[str]) -> str:
    return uris[0] if len(uris) == 1 else f"{uris[0]} (+{len(uris) - 1} more files)"


def _digest(path: Path, uri: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise DataError(f"{uri}: file not found") from None
    except OSError as exc:
        raise DataError(f"{uri}: cannot read the file ({exc.strerror or exc})") from None
    return h.hexdigest(), size


def _kind(path: Path) -> str:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"PK\x03\x04" or magic == b"PK\x05\x06":
        return "zip"
    return "plain"


def _zip_member(path: Path, uri: str) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist()
                     if not i.is_dir() and i.filename.lower().endswith(".csv")
                     and not i.filename.startswith("__MACOSX/")]
    except zipfile.BadZipFile:
        raise DataError(f"{uri}: not a readable zip file") from None
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        raise DataError(f"{uri}: a zip must hold exactly one .csv file, found {len(names)} ({found})")
    return names[0]


def _open(path: Path, uri: str):
    """A binary stream of the CSV text (decompressed)."""
    kind = _kind(path)
    if kind == "gzip":
        return pa.input_stream(str(path), compression="gzip")
    if kind == "zip":
        return _ZipStream(path, _zip_member(path, uri))
    return pa.input_stream(str(path))


class _ZipStream:
    """The one CSV member of a zip, closing the archive with the stream."""

    def __init__(self, path: Path, member: str):
        self._zip = zipfile.ZipFile(path)
        self._stream = self._zip.open(member)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def close(self) -> None:
        self._stream.close()
        self._zip.close()

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def readable(self) -> bool:
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _io_error(uri: str, exc: Exception) -> DataError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if any(w in text.lower() for w in ("gzip", "zlib", "truncat", "compressed", "end-of-stream", "inflate")):
        return DataError(f"{uri}: truncated or corrupt compressed file ({text[:120]}); download it again")
    return DataError(f"{uri}: cannot be read as CSV ({text[:160]})")


def _read_header(path: Path, uri: str) -> tuple[list[str], int]:
    """The header fields and the number of notice lines before them."""
    try:
        with _open(path, uri) as stream:
            head = stream.read(_PEEK_BYTES)
    except DataError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, pa.ArrowException) as exc:
        raise _io_error(uri, exc) from None
    if b"\x00" in head:
        raise DataError(f"{uri}: not a CSV file (binary content)")
    text = head.decode("utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"{uri}: file is empty")
    lines = text.splitlines()
    for i, line in enumerate(lines[:_MAX_NOTICE_LINES + 1]):
        if "," in line:
            header = [h.strip() for h in next(csv.reader([line]))]
            names = sum(bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ .]*", h)) for h in header)
            if names < max(2, len(header) // 2):
                raise DataError(f"{uri}: not a CSV file with a header row (first line: {line[:60]!r})")
            return header, i
        if line.strip() and not line.strip()[0].isalpha():
            break
    raise DataError(f"{uri}: not a CSV file (no comma-separated header line)")


#: Numeric columns read as float64 by the CSV reader itself (no text round trip). The percent columns
#: are left out: LendingClub writes them with a "%" sign, which the reader rejects.
_TYPED_AT_READ = NUMERIC_COLUMNS - FRACTION_PERCENT_COLUMNS


def read_table(path: Path, uri: str, wanted: list[str], notice_lines: int) -> tuple[pa.Table, int]:
    """The ``wanted`` columns and the count of malformed rows.

    Performance (bench/data.py): numeric columns are first read as float64 by the reader, which skips
    a text column per number and its parsing. Where that cannot give what the text parser gives (a value
    the reader rejects, such as ``"5%"`` or blanks, or a NaN spelling it accepts, such as ``"NAN"``), the
    file is read once more with every column as text, so the parsed result is the same either way.
    """
    typed = [c for c in wanted if c in _TYPED_AT_READ]
    if typed:
        try:
            table, malformed = _read_csv(path, uri, wanted, notice_lines, typed)
        except _TypedReadRejected:
            pass
        else:
            if not any(pc.any(pc.is_nan(table[c])).as_py() for c in typed):
                return table, malformed
    return _read_csv(path, uri, wanted, notice_lines, [])


class _TypedReadRejected(Exception):
    """The CSV reader could not convert a value of a column read as float64."""


def _read_csv(path: Path, uri: str, wanted: list[str], notice_lines: int,
              typed: list[str]) -> tuple[pa.Table, int]:
    malformed = 0

    def on_invalid(row) -> str:
        nonlocal malformed
        text = (row.text or "").strip()
        if "," not in text and text[:1].isalpha():
            return "skip"          # LendingClub summary / separator line: not a data row
        malformed += 1
        return "skip"

    types = {c: pa.string() for c in wanted} | {c: pa.float64() for c in typed}
    read = pacsv.ReadOptions(skip_rows=notice_lines, block_size=1 << 22)   # 4 MiB: gzip inflate overlaps parsing
    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(include_columns=wanted, column_types=types,
                                   null_values=NULL_VALUES, strings_can_be_null=True,
                                   quoted_strings_can_be_null=True)
    for encoding in ("utf8", "latin-1"):
        try:
            read.encoding = encoding
            malformed = 0
            with _open(path, uri) as stream:
                table = pacsv.read_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
            return table, malformed
        except pa.ArrowInvalid as exc:
            if typed and "conversion error" in str(exc).lower():
                raise _TypedReadRejected(str(exc)) from None
            if encoding == "utf8" and "utf8" in str(exc).lower():
                continue
            raise _io_error(uri, exc) from None
        except (OSError, EOFError, zipfile.BadZipFile, pa.ArrowException) as exc:
            raise _io_error(uri, exc) from None
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------------- s3

def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise DataError(f"{uri}: not a valid s3://bucket/key URI")
    return bucket, key


def _s3_client():
    import boto3
    return boto3.client("s3")


def _s3_error(uri: str, exc: Exception) -> DataError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    detail = code or type(exc).__name__
    return DataError(f"{uri}: cannot read from S3 ({detail}); check the URI and your AWS credentials")


def _resolve_s3(uri: str) -> list[str]:
    import botocore.exceptions as bexc
    bucket, key = _split_s3(uri)
    s3 = _s3_client()
    try:
        match = _GLOB_CHARS.search(key)
        if match:
            prefix, pattern = key[:match.start()], key
        else:
            if key and not key.endswith("/"):
                try:
                    s3.head_object(Bucket=bucket, Key=key)
                    return [uri]
                except bexc.ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                        raise
                prefix = key + "/"
            else:
                prefix = key
            pattern = None
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                k = obj["Key"]
                if (pattern is None or fnmatch.fnmatchcase(k, pattern)) and _is_data_name(k):
                    keys.append(k)
    except (bexc.BotoCoreError, bexc.ClientError) as exc:
        raise _s3_error(uri, exc) from None
    if not keys:
        raise DataError(f"{uri}: no such S3 object, and no .csv/.csv.gz/.zip objects under that prefix")
    return [f"s3://{bucket}/{k}" for k in sorted(keys)]


def _fetch(uri: str, tmp: Path) -> Path:
    """Download an S3 object (boto3 transfer manager) into ``tmp``."""
    import botocore.exceptions as bexc
    bucket, key = _split_s3(uri)
    target = tmp / f"{len(list(tmp.iterdir()))}-{Path(key).name or 'object'}"
    try:
        _s3_client().download_file(bucket, key, str(target))
    except (bexc.BotoCoreError, bexc.ClientError) as exc:
        raise _s3_error(uri, exc) from None
    return target


# ---------------------------------------------------------------------------------------------- parse

def parse_frame(raw: pd.DataFrame, *, source: str, require_grade: bool = False,
                keep_index: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parse an already-read frame of raw text/numbers (e.g. JSON-lines records at predict time).

    Rows with unparseable values (or, with ``require_grade``, a missing/invalid grade) are dropped and
    counted by reason. Without ``require_grade`` an invalid grade becomes NaN instead. ``keep_index``
    keeps the original index labels of the kept rows (to align results with the input).
    """
    if require_grade and "grade" not in raw.columns:
        raise DataError(f"{source}: no 'grade' column (the label)")
    frame, masks = _parse(raw, source, require_grade)
    return _drop(frame, masks, keep_index=keep_index)


def _parse(raw: pd.DataFrame, source: str, require_grade: bool) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Parsed columns and, per drop reason, a boolean mask of the rows it hits."""
    out: dict[str, object] = {}
    masks: dict[str, np.ndarray] = {}
    for column in raw.columns:
        series = raw[column]
        if column == "grade":
            values, missing, invalid = _parse_grade(series)
            if require_grade:
                masks[REASON_GRADE_MISSING] = missing
                masks[REASON_GRADE_INVALID] = invalid
            out[column] = values
            continue
        if column in TEXT_COLUMNS:
            out[column] = _parse_text(series)
            continue
        if column in DATE_COLUMNS:
            values, bad = _parse_date(series)
        elif column == "term":
            values, bad = _parse_term(series)
        elif column == "emp_length":
            values, bad = _parse_emp_length(series)
        elif column in NUMERIC_COLUMNS:
            values, bad = _parse_numeric(series, percent=column in FRACTION_PERCENT_COLUMNS)
        else:   # a column this module does not know: numbers if they all parse, else text
            values, bad = _parse_numeric(series, percent=False)
            if bad.any():
                out[column] = _parse_text(series)
                continue
        if bad.any():
            if int(bad.sum()) == int(series.notna().sum()):
                example = series[bad].iloc[0]
                raise DataError(f"{source}: column {column!r} holds text where numbers/dates are expected "
                                f"(e.g. {str(example)[:40]!r})")
            masks[f"unparseable {column}"] = bad
        out[column] = values
    # copy=False: the parsed arrays are new and ours; no copy into consolidated 2-D blocks (bench/data.py)
    frame = pd.DataFrame(out, index=raw.index, copy=False)
    return frame, masks


def _drop(frame: pd.DataFrame, masks: dict[str, np.ndarray], *,
          keep_index: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    dropped: dict[str, int] = {}
    taken = np.zeros(len(frame), dtype=bool)
    for reason, mask in masks.items():
        new = mask & ~taken
        if new.any():
            dropped[reason] = int(new.sum())
            taken |= new
    if taken.any():
        frame = frame.loc[~taken]
    if not keep_index:
        frame = frame.reset_index(drop=True)
    return frame, dropped


def _text(series: pd.Series) -> pd.Series:
    """Stripped strings, NaN where missing or blank."""
    if series.dtype != "str":
        series = series.astype("str")
    series = series.str.strip()
    return series.mask(series == "")


def _parse_text(series: pd.Series) -> pd.Series:
    return _text(series).astype(object)


def _parse_grade(series: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    text = _text(series).str.upper()
    missing = text.isna().to_numpy()
    valid = text.isin(GRADES).to_numpy()
    invalid = ~missing & ~valid
    return text.where(valid).astype(object), missing, invalid


def _map_uniques(series: pd.Series, parse) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``parse`` (uniques -> array with NaN/NaT for bad) once per distinct value."""
    text = _text(series)
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    parsed = parse(pd.Index(uniques, dtype=object))
    values = np.asarray(parsed)
    empty = np.full(1, np.datetime64("NaT", "ns") if values.dtype.kind == "M" else np.nan, dtype=values.dtype)
    result = np.concatenate([values, empty])[codes]         # code -1 (missing) picks the appended NaN/NaT
    bad_unique = pd.isna(values)
    bad = np.concatenate([bad_unique, [False]])[codes]
    return result, bad


def _parse_date(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.astype("datetime64[ns]"), np.zeros(len(series), dtype=bool)

    def parse(uniques: pd.Index) -> np.ndarray:
        months = np.asarray(pd.to_datetime(uniques, format="%b-%Y", errors="coerce"), dtype="datetime64[ns]")
        iso = np.asarray(pd.to_datetime(uniques, format="ISO8601", errors="coerce"), dtype="datetime64[ns]")
        return np.where(np.isnat(months), iso, months)

    values, bad = _map_uniques(series, parse)
    return pd.Series(values, index=series.index, dtype="datetime64[ns]", copy=False), bad


_TERM = re.compile(r"^(\d+(?:\.0*)?)\s*(?:months?)?$", re.IGNORECASE)


def _parse_term(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    def parse(uniques: pd.Index) -> np.ndarray:
        found = uniques.str.extract(_TERM, expand=False)
        return pd.to_numeric(found, errors="coerce").to_numpy(dtype=float)

    values, bad = _map_uniques(series, parse)
    return pd.Series(values, index=series.index, dtype="float64", copy=False), bad


def _emp_length(text: str) -> float | str:
    t = text.strip().lower()
    if t in ("n/a", "na", "none", ""):
        return "n/a"
    if re.fullmatch(r"<\s*1\s*(years?)?", t):
        return EMP_LENGTHS[0]
    m = re.fullmatch(r"(\d+)(?:\.0*)?\s*(\+)?\s*(years?)?", t)
    if not m:
        return np.nan
    n = int(m.group(1))
    return EMP_LENGTHS[0] if n == 0 else EMP_LENGTHS[min(n, 10)]


def _parse_emp_length(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    def parse(uniques: pd.Index) -> np.ndarray:
        return np.array([_emp_length(u) for u in uniques], dtype=object)   # a dozen distinct values

    values, bad = _map_uniques(series, parse)
    out = pd.Series(values, index=series.index, dtype=object, copy=False)
    return out.mask(out == "n/a"), bad


def _parse_numeric(series: pd.Series, *, percent: bool) -> tuple[pd.Series, np.ndarray]:
    """Floats; "%" stripped; with ``percent``, fractions scaled to percent (see module docstring)."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        # float64 (numbers typed at read): the values as they are, no copy (bench/data.py)
        values = (series.to_numpy() if series.dtype == "float64"
                  else series.to_numpy(dtype="float64", na_value=np.nan))
        bad = np.isinf(values)
        if bad.any():
            values = np.where(bad, np.nan, values)
        had_sign = False
    else:
        text = pa.array(_text(series), type=pa.string(), from_pandas=True)
        had_sign = pc.any(pc.ends_with(text, "%")).as_py() or False
        stripped = pc.utf8_trim_whitespace(pc.utf8_rtrim(text, characters="%"))
        stripped = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)
        try:
            values = pc.cast(stripped, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            values = pd.to_numeric(stripped.to_pandas(), errors="coerce").to_numpy(dtype="float64")
        present = pc.is_valid(stripped).to_numpy(zero_copy_only=False)
        values = np.where(np.isfinite(values), values, np.nan)
        bad = present & np.isnan(values)
    if percent and not had_sign:
        values = _fractions_to_percent(values)
    return pd.Series(values, index=series.index, dtype="float64", copy=False), bad


def _fractions_to_percent(values: np.ndarray) -> np.ndarray:
    """Scale a percent column's values by 100 when they read as fractions (see module docstring)."""
    finite = values[~np.isnan(values)]
    if finite.size and np.median(np.abs(finite)) <= FRACTION_MEDIAN_MAX:
        return np.round(values * 100.0, 8)
    return values


# ---------------------------------------------------------------------------------- parse: few records

#: Up to this many records, :func:`parse_records` parses value by value in plain Python; above it the
#: vectorised parser is faster.
SMALL_RECORDS = 64
_MISSING = object()          # a missing value (None, NaN, blank text) in the record path
_UNHANDLED = object()        # a value the record path leaves to the vectorised parser
_NUMBER = re.compile(r"[ \t]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t]*")
_MONTH_DATE = re.compile(r"([A-Za-z]{3})-([0-9]{4})")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}


def parse_records(records: Sequence[dict], columns: Sequence[str], *,
                  source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """``parse_frame(pd.DataFrame(records)[columns], source=source)``, fast for a few records.

    Performance (bench/predict.py): parse_frame runs several pandas/arrow operations per column, ~30 ms
    for one record. Up to :data:`SMALL_RECORDS` records, a column whose values all have a common spelling
    (text, plain numbers, "11.55%", "36 months", "Dec-2015", "2015-12-01", emp_length) is parsed here in
    plain Python with the same rules; any other column (odd or unparseable values, numbers in a text
    column, ``grade``) goes through the vectorised parser, so values, dtypes, drops and errors are the same.
    A column missing from every record is a DataError.
    """
    columns = list(dict.fromkeys(columns))
    missing = [c for c in columns if not any(c in r for r in records)]
    if missing:
        raise DataError(f"{source}: records lack columns: {', '.join(missing)}")
    if len(records) > SMALL_RECORDS or not records:
        return parse_frame(pd.DataFrame(list(records), columns=columns), source=source)
    out: dict[str, object] = {}
    slow: list[str] = []
    for column in columns:
        values = _parse_column_fast(column, [r.get(column) for r in records])
        if values is None:
            slow.append(column)
        else:
            out[column] = values
    masks: dict[str, np.ndarray] = {}
    if slow:
        parsed, masks = _parse(pd.DataFrame([{c: r.get(c) for c in slow} for r in records], columns=slow),
                               source, require_grade=False)
        out.update({c: parsed[c] for c in slow})
    index = pd.RangeIndex(len(records))
    frame = pd.DataFrame({c: pd.Series(out[c], index=index, dtype=object)   # object, as parse_frame's text
                          if isinstance(out[c], np.ndarray) and out[c].dtype == object else out[c]
                          for c in columns}, index=index)
    return _drop(frame, masks, keep_index=False)


def _parse_column_fast(column: str, raw: list) -> np.ndarray | None:
    """One column's parsed values in plain Python, or None when the vectorised parser must do it."""
    if column == "grade" or column not in TEXT_COLUMNS | DATE_COLUMNS | NUMERIC_COLUMNS | {"term", "emp_length"}:
        return None
    texts = [_fast_text(v) for v in raw]
    if any(t is _UNHANDLED for t in texts):
        return None
    if column in TEXT_COLUMNS:
        if any(not isinstance(v, str) and t is not _MISSING for v, t in zip(raw, texts)):
            return None                          # numbers in a text column: str() spelling left to pandas
        return np.array([np.nan if t is _MISSING else t for t in texts], dtype=object)
    if column in DATE_COLUMNS:
        parsed = [_fast_date(t) for t in texts]
        dtype = "datetime64[ns]"
    elif column == "term":
        parsed = [_fast_term(t) for t in texts]
        dtype = "float64"
    elif column == "emp_length":
        if any(not isinstance(t, str) and t is not _MISSING for t in texts):
            return None                          # a number: str() spelling left to pandas
        parsed = [_MISSING if t is _MISSING else _emp_length(t) for t in texts]
        if any(isinstance(p, float) for p in parsed):
            return None                          # unparseable: counted and dropped by the vectorised parser
        return np.array([np.nan if p is _MISSING or p == "n/a" else p for p in parsed], dtype=object)
    else:
        parsed = [_fast_number(t) for t in texts]
        dtype = "float64"
    if any(p is _UNHANDLED for p in parsed):
        return None
    empty = np.datetime64("NaT", "ns") if dtype.startswith("datetime") else np.nan
    values = np.array([empty if p is _MISSING else p for p in parsed], dtype=dtype)
    if column in FRACTION_PERCENT_COLUMNS and not any(isinstance(t, str) and t.endswith("%") for t in texts):
        values = _fractions_to_percent(values)
    return values


def _fast_text(value: object) -> object:
    """Stripped text, a finite number as is, _MISSING, or _UNHANDLED."""
    if value is None:
        return _MISSING
    if isinstance(value, str):
        text = value.strip()
        if value.strip(" \t\r\n") != text:
            return _UNHANDLED                    # other (Unicode) blanks at the edges: left to pandas/arrow
        return text if text else _MISSING
    if isinstance(value, float):
        return _MISSING if value != value else (value if abs(value) < float("inf") else _UNHANDLED)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2 ** 53:
        return float(value)
    return _UNHANDLED


def _fast_number(text: object) -> object:
    if text is _MISSING or isinstance(text, float):
        return text
    match = _NUMBER.fullmatch(text.rstrip("%"))
    number = float(match.group(1)) if match else float("inf")
    return number if abs(number) < float("inf") else _UNHANDLED


def _fast_term(text: object) -> object:
    if text is _MISSING or not isinstance(text, str):
        return _MISSING if text is _MISSING else _UNHANDLED
    match = _TERM.match(text) if text.isascii() else None
    return float(match.group(1)) if match else _UNHANDLED


def _fast_date(text: object) -> object:
    if text is _MISSING or not isinstance(text, str):
        return _MISSING if text is _MISSING else _UNHANDLED
    match = _MONTH_DATE.fullmatch(text)
    if match and match.group(1).lower() in _MONTHS and 1700 <= int(match.group(2)) <= 2200:
        return np.datetime64(f"{match.group(2)}-{_MONTHS[match.group(1).lower()]:02d}-01", "ns")
    match = _ISO_DATE.fullmatch(text)
    if match and 1700 <= int(match.group(1)) <= 2200:
        try:
            return np.datetime64(text, "ns")
        except ValueError:
            return _UNHANDLED
    return _UNHANDLED
