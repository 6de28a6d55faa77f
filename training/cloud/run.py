"""The on-instance runner: `python -m training.cloud.run --env-file /etc/spotgrade/run.env`.

The user data starts it once per attempt and acts on its exit status (core/lifecycle.py's RunnerExit); the
attempt itself is training/cloud/runner.py's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.cloud.core.lifecycle import RunnerExit
from training.cloud.run_settings import load_settings
from training.cloud.runner import Runner
from training.errors import SpotgradeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.cloud.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-file", type=Path, help="run settings written by the user data (KEY=VALUE lines)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env_file)
    except SpotgradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(RunnerExit.CONFIG)
    return Runner(settings).run()


if __name__ == "__main__":
    sys.exit(main())
