"""The one command registry of `python -m training`, and the argparse argument types commands share.

A command is one `add_arguments(parser)` plus one `run(args) -> exit status` registered with `@command`.
Command modules (training/local_commands.py, training/cloud/commands.py) import heavy modules inside
`run`, so building the parser (and `--help`, and shell completion) stays instant; training/cli.py imports them
and parses. `aliases` are other names of a command, accepted but not listed by `--help`.

    def _status_args(p): p.add_argument("--lines", type=positive_int)

    @command("status", "show the deployed run", _status_args)
    def _status(args):
        from training.cloud import control   # lazy
        ...

A command with machine-readable output takes `--json` (`add_json_flag`): its one JSON object is the only thing
on stdout (`print_json`), while `json_stdout` sends what it prints meanwhile to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], Optional[int]]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: AddArguments
    run: Run
    passes_unknown: bool = False  # arguments the parser does not know reach run() as args.unknown (in order)
    aliases: tuple[str, ...] = ()  # other names, accepted but hidden from --help


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}  # alias -> the command's name


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """The add_arguments of a command without options."""


def command(name: str, help: str, add_arguments: AddArguments = _no_arguments, *,
            passes_unknown: bool = False, aliases: tuple[str, ...] = ()) -> Callable[[Run], Run]:
    """Register `run(args) -> exit status (None = 0)` as the subcommand `name` (also called as any of `aliases`).

    With passes_unknown, the arguments `add_arguments` does not declare are handed on as `args.unknown`
    (for a command that forwards another tool's arguments, such as cdk's `-c key=value`).
    """
    def register(run: Run) -> Run:
        for taken in (name, *aliases):
            if taken in COMMANDS or taken in ALIASES:
                raise ValueError(f"command {taken!r} is registered twice")
        COMMANDS[name] = Command(name, help, add_arguments, run, passes_unknown, tuple(aliases))
        ALIASES.update({alias: name for alias in aliases})
        return run
    return register


def command_named(name: str) -> Command:
    """The command registered as `name` or with `name` among its aliases."""
    return COMMANDS[ALIASES.get(name, name)]


# ---- --json ----

def add_json_flag(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    """Add `--json` (args.json): print `what` as one JSON object on stdout, everything else on stderr."""
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as one JSON object on stdout (progress and messages go to stderr)")


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[None]:
    """While `enabled`, what is printed to stdout goes to stderr instead (keep stdout for print_json)."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def print_json(obj: Any) -> None:
    """`obj` as one line of strict JSON on stdout (numpy numbers, paths and times converted; NaN becomes null)."""
    print(json.dumps(_jsonable(obj), allow_nan=False), flush=True)


def _jsonable(value: Any) -> Any:
    """`value` made of JSON types only."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if hasattr(value, "isoformat"):  # datetime, date
        return value.isoformat()
    return str(value)  # Path and the like


# ---- argument types (argparse turns their ValueError/ArgumentTypeError into exit 2) ----

def _number(text: str, kind: type, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "0 or more")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text, float, "between 0 and 1")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "positive")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def units_list(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes like 100,60, got {text!r}") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return units
