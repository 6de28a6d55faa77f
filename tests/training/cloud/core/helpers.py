"""Shared helpers of the core tests: status records built through lifecycle.py's transitions, the code asset
unpacked as the instance and the Lambda see it, and the instance's system Python (3.9) where there is one."""
from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from stacks.cloud_code import REPO_ROOT, asset_files
from training.cloud.core import lifecycle as lc

RUN = "run-1"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
INSTANCE = {"instance_id": "i-0aaa", "instance_type": "g5.xlarge", "availability_zone": "us-east-1a",
            "lifecycle": "spot"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def start(status, minutes: float = 0, *, instance: dict = INSTANCE, max_attempts: int = 3, price=0.36) -> dict:
    return lc.start_attempt(status, run_id=RUN, instance=instance, spot_price=price, max_attempts=max_attempts,
                            now=at(minutes))


def running(status=None, minutes: float = 0, **kwargs) -> dict:
    return lc.set_running(start(status, minutes, **kwargs), epochs=10, last_epoch=0, now=at(minutes + 1))


def stage_kit(folder: Path) -> Path:
    """Copy the CloudCode asset's files (training/... and nothing else of the project) into `folder`."""
    for name in asset_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, folder / name)
    return folder


def python39() -> str | None:
    """A Python 3.9 (Amazon Linux 2023's system python): on PATH, or installed by pyenv; None where neither."""
    candidates = [shutil.which("python3.9")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(str(p) for p in Path(root).glob("versions/3.9*/bin/python3.9")) if root else []
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return None


PYTHON39 = python39()
