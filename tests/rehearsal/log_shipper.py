"""A stand-in for the CloudWatch agent's log collection: tail files, ship their lines with put_log_events.

Run as `python -m tests.rehearsal.log_shipper CONFIG [PIDFILE]` (the ctl shim does, detached). CONFIG is the
agent's JSON (logs.logs_collected.files.collect_list[]: file_path, log_group_name, log_stream_name, where
`{instance_id}` / `{hostname}` are filled in; the instance id comes from IMDSv2 at $SPOTGRADE_METADATA_URL).
Once set up it writes its pid to PIDFILE (the ctl waits for that). SIGTERM: ship what is left, exit 0.
boto3 takes its endpoint, credentials and region from the environment (the region from IMDS when unset).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTERVAL_S = 0.3
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 900_000  # the API's limit is 1 MiB counting 26 bytes of overhead per event
DEFAULT_METADATA_URL = "http://169.254.169.254"


@dataclass
class Tail:
    """One collected file: where it ships and how far it has been read."""

    path: Path
    group: str
    stream: str
    offset: int = 0
    partial: bytes = b""
    pending: list[dict[str, Any]] = field(default_factory=list)
    stream_ready: bool = False

    def read(self, final: bool) -> None:
        """Queue the complete lines written since the last read (and the unterminated rest when `final`)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.offset:  # truncated: start over
            self.offset, self.partial = 0, b""
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if final and self.partial:
            lines.append(self.partial)
            self.partial = b""
        now = int(time.time() * 1000)
        self.pending += [{"timestamp": now, "message": line.decode("utf-8", "replace").rstrip("\r")}
                         for line in lines if line.strip()]


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        cost = len(event["message"].encode()) + 26
        if batches[-1] and (len(batches[-1]) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(event)
        size += cost
    return [batch for batch in batches if batch]


def ship(client: Any, tail: Tail) -> None:
    """Send `tail`'s queued events; on an error they stay queued for the next round."""
    if not tail.pending:
        return
    if not tail.stream_ready:
        try:
            client.create_log_stream(logGroupName=tail.group, logStreamName=tail.stream)
        except client.exceptions.ResourceAlreadyExistsException:
            pass
        tail.stream_ready = True
    while tail.pending:
        batch = _batches(tail.pending)[0]
        client.put_log_events(logGroupName=tail.group, logStreamName=tail.stream, logEvents=batch)
        del tail.pending[: len(batch)]


def _metadata(path: str) -> str | None:
    """latest/meta-data/<path> from IMDSv2 at $SPOTGRADE_METADATA_URL."""
    from training.cloud.core.imds import Imds

    return Imds(os.environ.get("SPOTGRADE_METADATA_URL", DEFAULT_METADATA_URL)).get(path)


def load_tails(config_path: Path) -> list[Tail]:
    """The files of an agent config, with the placeholders of their stream and group names filled in."""
    config = json.loads(config_path.read_text())
    entries = config["logs"]["logs_collected"]["files"]["collect_list"]
    names = [(entry["log_group_name"], entry.get("log_stream_name", "{instance_id}")) for entry in entries]
    values: dict[str, str] = {"hostname": socket.gethostname()}
    if any("{instance_id}" in group + stream for group, stream in names):
        instance_id = _metadata("instance-id")
        if not instance_id:
            raise RuntimeError("the metadata service has no instance-id")
        values["instance_id"] = instance_id

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return text

    return [Tail(Path(entry["file_path"]), fill(group), fill(stream)) for entry, (group, stream) in zip(entries, names)]


def main(argv: list[str]) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # first, so an early stop still ships everything
        signal.signal(signum, lambda *_: stop.set())
    config_path = Path(argv[0])
    tails = load_tails(config_path)
    import boto3  # slow to import: after the handlers

    session = boto3.session.Session()
    client = session.client("logs", region_name=session.region_name or _metadata("placement/region"))  # as the agent
    if len(argv) > 1:
        pidfile = Path(argv[1])
        pidfile.with_suffix(".tmp").write_text(f"{os.getpid()}\n")
        pidfile.with_suffix(".tmp").replace(pidfile)
    print(f"log_shipper: shipping {[(str(t.path), t.group, t.stream) for t in tails]}", flush=True)
    while True:
        final = stop.wait(INTERVAL_S)
        for _ in range(3 if final else 1):
            failed = False
            for tail in tails:
                tail.read(final)
                try:
                    ship(client, tail)
                except Exception as error:  # keep going: the group may appear, the endpoint may come back
                    failed = True
                    print(f"log_shipper: {tail.group}/{tail.stream}: {error}", file=sys.stderr, flush=True)
            if not failed:
                break
            time.sleep(INTERVAL_S)
        if final:
            print("log_shipper: stopped", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
