"""Make an S3 client fail its first calls with HTTP 503 (SlowDown), before moto sees them."""
from __future__ import annotations

from botocore.awsrequest import AWSResponse

BODY = (b"<?xml version='1.0' encoding='UTF-8'?>"
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs):
        yield self.body

    def read(self, *args, **kwargs):
        body, self.body = self.body, b""
        return body


class FlakyS3:
    """Answers 503 to `failures` requests (every `every`-th one) of the given operations (all when None)."""

    def __init__(self, client, failures: int, operations: set[str] | None = None, every: int = 1) -> None:
        self.left = failures
        self.every = every
        self.seen = 0
        self.failed: list[str] = []
        self.operations = operations
        client.meta.events.register_first("before-send.s3", self._before_send)

    def _before_send(self, request, **kwargs):
        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        if self.left <= 0 or (self.operations and operation not in self.operations):
            return None
        self.seen += 1
        if self.seen % self.every:
            return None
        self.left -= 1
        self.failed.append(operation or "?")
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Raw(BODY))
