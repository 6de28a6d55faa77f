# PYTHON_ARGCOMPLETE_OK
"""`python -m training <command>` (installed: `spotgrade <command>`): the one command line of the project.

The commands are registered in training.commands' registry by training/local_commands.py (train, audit,
evaluate, predict, synthesize) and training/cloud/commands.py (the run-control commands and preflight).
A SpotgradeError becomes one line `error: ...` on stderr and exit status 2; a usage error is two lines (a short
usage hint, then argparse's message), also exit 2. Building the parser imports nothing heavy, so `--help`,
usage errors and shell completion (argcomplete, when `_ARGCOMPLETE` is set) answer at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

from training import local_commands  # noqa: F401  (registers the local commands; `--help` lists them first)
from training.cloud import commands as cloud_commands  # noqa: F401  (registers the run-control commands)
from training.commands import ALIASES, COMMANDS, command_named
from training.errors import SpotgradeError

PROG = "python -m training"
DISTRIBUTION = "spotgrade"


class _Parser(argparse.ArgumentParser):
    """argparse with a short usage error: one hint line, then `PROG: error: MESSAGE` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message, command_level=self._subparsers is not None)


def usage_error(prog: str, message: str, *, command_level: bool = False) -> NoReturn:
    """Print the two lines of a usage error and exit 2."""
    what = "<command> [options]" if command_level else "[options]"
    sys.stderr.write(f"usage: {prog} {what} (see: {prog} --help)\n{prog}: error: {message}\n")
    raise SystemExit(2)


def version() -> str:
    """The installed distribution's version, else training.__version__ (run from a checkout)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from training import __version__

        return __version__


class _VersionAction(argparse.Action):
    """`--version`: print `spotgrade X.Y.Z` and exit 0 (the version is looked up only then)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args) -> NoReturn:
        print(f"{DISTRIBUTION} {version()}")
        parser.exit()


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="spotgrade: train and use the Lending Club loan-grade model",
                     epilog="`PROG <command> --help` shows a command's options. Shell completion (bash, zsh): "
                            "eval \"$(register-python-argcomplete spotgrade)\"".replace("PROG", prog))
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for cmd in COMMANDS.values():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return parser  # aliases have no parser of their own (hidden from --help and errors): _parse renames them


def _canonical(argv: Sequence[str]) -> list[str]:
    """argv with a command alias (the first argument that is not an option) replaced by the command's name."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            argv[i] = command_named(arg).name if arg in ALIASES else arg
            break
    return argv


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parsed arguments; arguments no command declares are an error, except for a command that passes them on."""
    args, unknown = parser.parse_known_args(_canonical(sys.argv[1:] if argv is None else argv))
    if unknown and not command_named(args.command).passes_unknown:
        usage_error(f"{parser.prog} {args.command}", f"unrecognized arguments: {' '.join(unknown)}")
    args.unknown = unknown
    return args


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Parse argv and run the command; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own lines once it has started
    parser = build_parser(prog)
    if "_ARGCOMPLETE" in os.environ:  # a shell asks for completions: answer and exit
        import argcomplete

        argcomplete.autocomplete(parser)
    try:
        args = _parse(parser, argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return command_named(args.command).run(args) or 0
    except SpotgradeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def console_main() -> NoReturn:
    """The `spotgrade` console script: `python -m training` under its installed name."""
    sys.exit(main(prog=DISTRIBUTION))
