"""Where the data files are: local paths, directories, globs and ``s3://`` objects or prefixes, as file URIs.

A directory contributes its own ``.csv``, ``.csv.gz``, ``.gz``, ``.zip`` and ``.parquet`` files, not those of its
subdirectories (``DIR/**/*.csv.gz``, a recursive glob, reads those); an ``s3://bucket/key`` that is not an object
is read as the prefix ``key/`` (every object under it, as S3 has no directories); a glob (``*``, ``?``, ``[``,
and ``**`` for any depth) works locally and under an S3 prefix. boto3 is imported only when an ``s3://`` source
is given.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from training.data.schema import DATA_SUFFIXES, PARQUET_SUFFIX
from training.errors import DataError

_GLOB_CHARS = re.compile(r"[*?\[]")


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
            found = sorted(p for p in glob.glob(os.path.expanduser(text), recursive=True) if os.path.isfile(p))
            if not found:
                raise DataError(f"{text}: no files match this pattern")
            uris.extend(found)
        elif os.path.isdir(text):
            uris.extend(_directory_files(Path(text)))
        elif not os.path.exists(text):
            raise DataError(f"{text}: file not found")
        else:
            uris.append(text)
    return uris


def _directory_files(directory: Path) -> list[str]:
    """The data files directly in ``directory`` (sorted); DataError when there are none."""
    found = sorted(str(p) for p in directory.iterdir() if p.is_file() and is_data_name(p.name))
    if not found:
        deeper = any(is_data_name(p.name) for p in directory.glob("*/*"))
        hint = f"; subdirectories are not read, give '{directory}/**/*.csv.gz' (a glob) for those" if deeper else ""
        raise DataError(f"{directory}: directory holds no .csv, .csv.gz, .gz, .zip or .parquet files{hint}")
    return found


def short_names(uris: Sequence[str], limit: int = 4) -> str:
    """The files' base names, comma-separated; past ``limit``, the first ones and "(+N more)"."""
    names = [PurePosixPath(str(u)).name or str(u) for u in uris]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit - 1]) + f" (+{len(names) - limit + 1} more)"


def describe_files(uris: Sequence[str]) -> str:
    """"1 file: a.csv" or "12 files: a.csv, b.csv, c.csv (+9 more)": how a log line names the files read."""
    return f"{len(uris)} file{'s' if len(uris) != 1 else ''}: {short_names(uris)}"


def is_data_name(name: str) -> bool:
    return name.lower().endswith((*DATA_SUFFIXES, PARQUET_SUFFIX))


def fetch(uri: str, tmp: Path) -> Path:
    """Download an S3 object (boto3 transfer manager) into the directory ``tmp``."""
    import botocore.exceptions as bexc

    from training.cloud.aws import split_s3_uri

    bucket, key = split_s3_uri(uri)
    target = tmp / f"{len(list(tmp.iterdir()))}-{Path(key).name or 'object'}"
    try:
        _s3_client().download_file(bucket, key, str(target))
    except (bexc.BotoCoreError, bexc.ClientError) as exc:
        raise _s3_error(uri, exc) from None
    return target


def _s3_client() -> Any:
    import boto3
    return boto3.client("s3")


def _s3_error(uri: str, exc: Exception) -> DataError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    detail = code or type(exc).__name__
    return DataError(f"{uri}: cannot read from S3 ({detail}); check the URI and your AWS credentials")


def _resolve_s3(uri: str) -> list[str]:
    """The object itself, or the data objects under the prefix (or matching the glob), as sorted URIs."""
    import botocore.exceptions as bexc

    from training.cloud.aws import list_objects, split_s3_uri

    bucket, key = split_s3_uri(uri)
    s3 = _s3_client()
    try:
        match = _GLOB_CHARS.search(key)
        if match:
            prefix, pattern = key[:match.start()], key
        elif key and not key.endswith("/"):
            if _is_object(s3, bucket, key):
                return [uri]
            prefix, pattern = key + "/", None
        else:
            prefix, pattern = key, None
        keys = [o["Key"] for o in list_objects(s3, bucket, prefix)
                if (pattern is None or fnmatch.fnmatchcase(o["Key"], pattern)) and is_data_name(o["Key"])]
    except (bexc.BotoCoreError, bexc.ClientError) as exc:
        raise _s3_error(uri, exc) from None
    if not keys:
        raise DataError(f"{uri}: no such S3 object, and no .csv/.csv.gz/.gz/.zip/.parquet objects under that prefix")
    return [f"s3://{bucket}/{k}" for k in sorted(keys)]


def _is_object(s3: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` is an object (False when S3 says it does not exist; other errors raise)."""
    import botocore.exceptions as bexc

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except bexc.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        return False
