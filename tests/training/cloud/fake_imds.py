"""A fake EC2 instance metadata service (IMDSv2) on 127.0.0.1 for the runner's tests."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "fake-imds-token"


class FakeImds:
    """PUT /latest/api/token, then GET latest/meta-data/... with the token (401 without it).

    spot/instance-action answers 404 until `notice()` is called.
    """

    def __init__(self, instance_type: str = "c5.large", lifecycle: str = "spot",
                 instance_id: str = "i-0123456789abcdef0", zone: str = "us-east-1a") -> None:
        self.values = {
            "instance-id": instance_id,
            "instance-type": instance_type,
            "placement/availability-zone": zone,
            "placement/region": zone[:-1],
            "instance-life-cycle": lifecycle,
        }
        self.action: dict | None = None
        self.notice_at: float | None = None
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                fake.requests.append(("PUT", self.path))
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self._send(200, TOKEN)
                else:
                    self._send(400)

            def do_GET(self):
                fake.requests.append(("GET", self.path))
                if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                    return self._send(401)
                path = self.path.removeprefix("/latest/meta-data/")
                if path == "spot/instance-action":
                    return self._send(200, json.dumps(fake.action)) if fake.action else self._send(404)
                if path in fake.values:
                    return self._send(200, fake.values[path])
                self._send(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def notice(self, action: str = "terminate") -> None:
        """Start answering a spot interruption notice two minutes ahead."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
        self.notice_at = time.monotonic()
        self.action = {"action": action, "time": when}

    def __enter__(self) -> "FakeImds":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
