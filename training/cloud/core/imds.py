"""A small IMDSv2 client: session token, instance identity, spot interruption notices.

The endpoint is a setting (env.METADATA_URL, default DEFAULT_URL), so tests point it at a fake server on
127.0.0.1.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Mapping, Optional

from training.cloud.core import env

DEFAULT_URL = "http://169.254.169.254"
TOKEN_TTL_SECONDS = 21600


def metadata_url(environ: Optional[Mapping[str, str]] = None) -> str:
    """The metadata endpoint: env.METADATA_URL where set, else the instance's own."""
    return (os.environ if environ is None else environ).get(env.METADATA_URL) or DEFAULT_URL


class MetadataError(Exception):
    """The metadata service could not be reached or answered unexpectedly."""


@dataclass(frozen=True)
class InstanceInfo:
    instance_id: str | None
    instance_type: str | None
    availability_zone: str | None
    region: str | None
    lifecycle: str | None  # "spot" or "on-demand" (IMDS says "normal" for on-demand)


class Imds:
    """IMDSv2: PUT a token, then GET with it; a 401 refreshes the token once."""

    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()

    def _token_value(self, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None or time.monotonic() > self._token_expires:
                request = urllib.request.Request(
                    f"{self.base_url}/latest/api/token",
                    method="PUT",
                    headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
                )
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout) as response:
                        self._token = response.read().decode()
                except (urllib.error.URLError, OSError) as error:
                    raise MetadataError(f"cannot get an IMDSv2 token from {self.base_url}: {error}") from None
                self._token_expires = time.monotonic() + TOKEN_TTL_SECONDS - 60
            return self._token

    def get(self, path: str) -> str | None:
        """The text at latest/meta-data/<path>, or None for a 404."""
        url = f"{self.base_url}/latest/meta-data/{path.lstrip('/')}"
        for attempt in (0, 1):
            request = urllib.request.Request(url, headers={"X-aws-ec2-metadata-token": self._token_value(attempt > 0)})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read().decode()
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return None
                if error.code == 401 and attempt == 0:
                    continue
                raise MetadataError(f"GET {url}: HTTP {error.code}") from None
            except (urllib.error.URLError, OSError) as error:
                raise MetadataError(f"GET {url}: {error}") from None
        raise MetadataError(f"GET {url}: token refused")  # pragma: no cover

    def instance_info(self) -> InstanceInfo:
        lifecycle = self.get("instance-life-cycle")
        return InstanceInfo(
            instance_id=self.get("instance-id"),
            instance_type=self.get("instance-type"),
            availability_zone=self.get("placement/availability-zone"),
            region=self.get("placement/region"),
            lifecycle={"normal": "on-demand", "scheduled": "on-demand"}.get(lifecycle or "", lifecycle),
        )

    def spot_action(self) -> dict | None:
        """The pending spot instance action ({"action": "terminate", "time": ...}), or None."""
        text = self.get("spot/instance-action")
        if text is None:
            return None
        try:
            action = json.loads(text)
        except json.JSONDecodeError:
            action = {"action": text.strip()}
        return action if isinstance(action, dict) else {"action": str(action)}
