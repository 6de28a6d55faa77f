"""argparse subcommands for run control: status, logs, pull, stop, resume, upload-data, runs, estimate, sweep.

`register(subparsers)` adds them to the project's CLI (`python -m training <command>`); each parser's
default `run` is the function to call with the parsed args (returns an exit status). boto3 and the
command modules are imported only when a command runs, so `--help` stays instant.
`main(argv)` runs them standalone (same exit codes: SpotgradeError -> one line on stderr, exit 2).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence

COMMAND_NAMES = ("status", "logs", "pull", "stop", "resume", "upload-data", "runs", "estimate", "sweep")


def _session(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    from training.errors import CloudError

    try:
        return boto3.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound:
        raise CloudError(f"AWS profile {args.profile!r} not found: check --profile / AWS_PROFILE "
                         "(`aws configure list-profiles`)") from None


def _stack(args: argparse.Namespace) -> str:
    if args.stack:
        return args.stack
    from training.cloud.estimate import load_context

    return str(load_context()["stackName"])  # cdk.json's stackName, as `make deploy` used


def _status(args: argparse.Namespace) -> int:
    from training.cloud import control

    control.status(_session(args), _stack(args), log_lines=args.lines)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from training.cloud import control

    control.logs(_session(args), _stack(args), follow=args.follow, poll_seconds=args.poll)
    return 0


def _pull(args: argparse.Namespace) -> int:
    from training.cloud import control

    control.pull(_session(args), _stack(args), dest=args.dest)
    return 0


def _stop(args: argparse.Namespace) -> int:
    from training.cloud import control

    control.stop(_session(args), _stack(args))
    return 0


def _resume(args: argparse.Namespace) -> int:
    from training.cloud import control

    control.resume(_session(args), _stack(args))
    return 0


def _upload(args: argparse.Namespace) -> int:
    from training.cloud import control

    control.upload_data(_session(args), args.path, _stack(args), key=args.key)
    return 0


def _runs(args: argparse.Namespace) -> int:
    from training.cloud import control

    control.runs(_session(args), _stack(args))
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from training.cloud import estimate

    context = estimate.load_context(args.context or ())
    estimate.estimate(_session(args), context, hours=args.hours, epochs_per_hour=args.epochs_per_hour)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from training.cloud import sweep

    sweep.sweep(_session(args), yes=args.yes)
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add(subparsers: Any, name: str, help: str, run: Callable[[argparse.Namespace], int],
         stack: bool = True) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help, description=help)
    if stack:
        parser.add_argument("--stack", metavar="NAME",
                            help="CloudFormation stack of the run (default: stackName in cdk.json, 'Spotgrade')")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / your AWS config)")
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE / default credentials)")
    parser.set_defaults(run=run)
    return parser


def register(subparsers: Any) -> None:
    """Add the run-control subcommands to an argparse subparsers object."""
    p = _add(subparsers, "status", "show the deployed run: state, attempts, instance, progress, cost so far", _status)
    p.add_argument("--lines", type=int, default=5, metavar="N", help="latest log lines to show (default 5)")
    p = _add(subparsers, "logs", "print the run's logs, every attempt in order", _logs)
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the run ends")
    p.add_argument("--poll", type=_positive, default=5.0, metavar="SECONDS", help="--follow poll interval")
    p = _add(subparsers, "pull", "download the run's artifacts and print its headline metrics", _pull)
    p.add_argument("--dest", default="outputs", metavar="DIR", help="download to DIR/<run-id>/ (default outputs)")
    _add(subparsers, "stop", "stop the run: state STOPPED, group capacity 0; checkpoints are kept", _stop)
    _add(subparsers, "resume", "restart a stopped run from its checkpoints (group capacity 1)", _resume)
    p = _add(subparsers, "upload-data", "upload a data file to the bucket's data/ prefix; prints the dataUri", _upload)
    p.add_argument("path", help="local Lending Club CSV (.csv, .csv.gz, .zip)")
    p.add_argument("--key", help="object key (default data/<file name>)")
    _add(subparsers, "runs", "list every run in the bucket, newest first, with state, cost and weighted F1", _runs)
    p = _add(subparsers, "estimate", "expected cost of the configured run from recent spot prices",
             _estimate, stack=False)
    p.add_argument("-c", "--context", action="append", metavar="KEY=VALUE",
                   help="override a cdk.json context value, as with cdk deploy -c (repeatable)")
    p.add_argument("--hours", type=_positive, help="expected hours (default: maxRuntimeHours)")
    p.add_argument("--epochs-per-hour", type=_positive, metavar="N",
                   help="measured training speed: hours = epochs / N, capped by maxRuntimeHours")
    p = _add(subparsers, "sweep", "find spotgrade instances, groups and spot requests that outlived their run",
             _sweep, stack=False)
    p.add_argument("--yes", action="store_true", help="remove what was found (default: dry run, change nothing)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="spotgrade run control")
    register(parser.add_subparsers(dest="command", metavar="<command>", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one run-control command; SpotgradeError -> `error: ...` on stderr and exit 2."""
    from training.errors import SpotgradeError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args) or 0
    except SpotgradeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
