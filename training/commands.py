"""The one command registry of `python -m training`, and the argparse argument types commands share.

A command is one `add_arguments(parser)` plus one `run(args) -> exit status` registered with `@command`.
Command modules (training/local_commands.py, training/cloud/commands.py) import heavy modules inside
`run`, so building the parser (and `--help`) stays instant; training/cli.py imports them and parses.

    def _status_args(p): p.add_argument("--lines", type=positive_int)

    @command("status", "show the deployed run", _status_args)
    def _status(args):
        from training.cloud import control   # lazy
        ...
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable, Optional

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], Optional[int]]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: AddArguments
    run: Run
    passes_unknown: bool = False  # arguments the parser does not know reach run() as args.unknown (in order)


COMMANDS: dict[str, Command] = {}


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """The add_arguments of a command without options."""


def command(name: str, help: str, add_arguments: AddArguments = _no_arguments, *,
            passes_unknown: bool = False) -> Callable[[Run], Run]:
    """Register `run(args) -> exit status (None = 0)` as the subcommand `name`.

    With passes_unknown, the arguments `add_arguments` does not declare are handed on as `args.unknown`
    (for a command that forwards another tool's arguments, such as cdk's `-c key=value`).
    """
    def register(run: Run) -> Run:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} is registered twice")
        COMMANDS[name] = Command(name, help, add_arguments, run, passes_unknown)
        return run
    return register


# ---- argument types (argparse turns their ValueError/ArgumentTypeError into exit 2) ----

def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def units_list(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes like 100,60, got {text!r}") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return units
