"""`python -m training <command>`: the one command line of the project.

The commands are registered in training.commands' registry by training/local_commands.py (train, audit,
evaluate, predict, synthesize) and training/cloud/commands.py (run control: status, logs, pull, stop, resume,
upload-data, runs, estimate, sweep, preflight). A SpotgradeError becomes one line `error: ...` on stderr and
exit status 2; argparse errors also exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from training import local_commands  # noqa: F401  (registers the local commands; `--help` lists them first)
from training.cloud import commands as cloud_commands  # noqa: F401  (registers the run-control commands)
from training.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training",
                                     description="spotgrade: train and use the Lending Club loan-grade model")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for cmd in COMMANDS.values():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parsed arguments; arguments no command declares are an error, except for a command that passes them on."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not COMMANDS[args.command].passes_unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.unknown = unknown
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv and run the command; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.errors import SpotgradeError

    try:
        args = _parse(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return COMMANDS[args.command].run(args) or 0
    except SpotgradeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
