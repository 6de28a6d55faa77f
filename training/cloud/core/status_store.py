"""The run's status.json in S3: reads, and changes written with conditional puts so that concurrent writers
never lose each other's updates.

What the record holds and how it may change is lifecycle.py's; this module only stores it. `s3` is a boto3
client, or any object with its get_object/put_object (the boot kit's `aws` CLI wrapper).
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable, Optional

from training.cloud.core.clock import iso, utc_now
from training.cloud.core.layout import RunLayout
from training.cloud.core.lifecycle import STATES, IllegalTransition

_CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
_MISSING_CODES = ("NoSuchKey", "404", "NotFound")


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


class StatusStore:
    """Read and change status.json with conditional writes.

    `change(fn)` reads the record and its ETag, applies `fn` to a copy and puts the result with If-Match (or
    If-None-Match for a new record); on a conflict it reads again and re-applies `fn`, so concurrent writers
    never lose each other's updates.
    """

    def __init__(self, s3: Any, layout: RunLayout, retries: int = 20) -> None:
        self.s3, self.layout, self.retries = s3, layout, retries

    def read(self) -> Optional[dict]:
        return self._get()[0]

    def _get(self) -> tuple:
        try:
            response = self.s3.get_object(Bucket=self.layout.bucket, Key=self.layout.status_key)
        except Exception as error:
            if _error_code(error) in _MISSING_CODES:
                return None, None
            raise
        status = json.loads(response["Body"].read())
        if not isinstance(status, dict):
            raise ValueError(f"{self.layout.uri(self.layout.status_key)} does not hold a JSON object")
        return status, response.get("ETag")

    def change(self, fn: Callable[[Optional[dict]], Optional[dict]]) -> tuple:
        """Apply fn to the current record and write it; returns (before, after). fn returning None writes nothing."""
        for _ in range(self.retries):
            before, etag = self._get()
            after = fn(copy.deepcopy(before))
            if after is None or after == before:
                return before, before if after is None else after
            if after.get("state") not in STATES:
                raise IllegalTransition(f"status state {after.get('state')!r} is not one of {', '.join(STATES)}")
            after["updated_at"] = iso(utc_now())
            body = json.dumps(after, indent=2, sort_keys=True, default=str).encode()
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(Bucket=self.layout.bucket, Key=self.layout.status_key, Body=body,
                                   ContentType="application/json", CacheControl="no-cache", **condition)
            except Exception as error:
                if _error_code(error) in _CONFLICT_CODES:
                    continue  # someone else wrote in between: read again and re-apply
                raise
            return before, after
        raise RuntimeError(f"{self.layout.uri(self.layout.status_key)}: {self.retries} conflicting writes in a row")


def read_status(s3: Any, layout: RunLayout) -> Optional[dict]:
    """The run's status.json, or None where the run has none yet."""
    return StatusStore(s3, layout).read()
