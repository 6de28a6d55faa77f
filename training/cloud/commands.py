"""The commands that control a deployed run from a laptop, registered in training.commands' registry:
status, logs, pull, stop, resume, upload-data, runs, estimate, cleanup (hidden alias: sweep), and `make deploy`'s
preflight. `status`, `runs` and `estimate` take --json: one JSON object on stdout, nothing else.

boto3 and the working modules are imported only when a command runs, so `--help` stays instant.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable, Iterable

from training.commands import (
    AddArguments,
    Run,
    add_json_flag,
    command,
    non_negative_int,
    positive_float,
    print_json,
)


def _session(args: argparse.Namespace) -> Any:
    """A boto3 session for --region/--profile (region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's)."""
    from botocore.exceptions import ProfileNotFound

    from training.cloud import aws
    from training.errors import CloudError

    try:
        return aws.session(args.region, args.profile)
    except ProfileNotFound:
        raise CloudError(f"AWS profile {args.profile!r} not found: check --profile / AWS_PROFILE "
                         "(`aws configure list-profiles`)") from None


def _stack(args: argparse.Namespace) -> str:
    """--stack, else cdk.json's stackName (as `make deploy` used), checked before any AWS call."""
    from training.cloud.core.outputs import validate_stack_name

    if args.stack is not None:
        return validate_stack_name(args.stack, "--stack")
    from training.cloud.core.context import load_context

    return validate_stack_name(str(load_context()["stackName"]), "stackName in cdk.json")


def _run_id(args: argparse.Namespace) -> str | None:
    """--run-id, checked before any AWS call (None: the newest run)."""
    from training.cloud.core.layout import RUN_ID_PATTERN, RUN_ID_RULE
    from training.errors import ConfigError

    if args.run_id is not None and not RUN_ID_PATTERN.fullmatch(args.run_id):
        raise ConfigError(f"--run-id {args.run_id!r} is invalid: use {RUN_ID_RULE} (`runs` lists the runs)")
    return args.run_id


def _print(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)


RUN_ID_HELP = ("the run (default: the newest run: that of the most recently created run stack, else the run in "
               "the bucket that started last; `runs` lists them)")


def _aws_arguments(more: AddArguments | None = None, *, stack: bool = True, run_id: bool = False) -> AddArguments:
    """add_arguments of a run-control command: [--stack,] [--run-id,] --region, --profile, then the command's own."""
    def add(parser: argparse.ArgumentParser) -> None:
        if stack:
            parser.add_argument("--stack", metavar="NAME",
                                help="the shared stack, whose bucket holds every run (default: stackName in cdk.json, "
                                     "'Spotgrade'); run stacks are NAME-<run-id>")
        if run_id:
            parser.add_argument("--run-id", metavar="ID", help=RUN_ID_HELP)
        parser.add_argument("--region", help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the "
                                             "profile's region)")
        parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE / default credentials)")
        if more is not None:
            more(parser)
    return add


def _cloud_command(name: str, help: str, more: AddArguments | None = None, *, stack: bool = True,
                   run_id: bool = False, aliases: tuple[str, ...] = ()) -> Callable[[Run], Run]:
    return command(name, help, _aws_arguments(more, stack=stack, run_id=run_id), aliases=aliases)


# ---- status, logs, pull ----

def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lines", type=non_negative_int, default=5, metavar="N",
                   help="latest log lines to show (default 5)")
    add_json_flag(p, "the run's status")


@_cloud_command("status", "show a run: state, attempts, instance, progress, cost so far", _status_args, run_id=True)
def _status(args: argparse.Namespace) -> int:
    from training.cloud import control, control_view

    stack, run_id = _stack(args), _run_id(args)
    report = control.status_report(_session(args), stack, run_id=run_id, log_lines=args.lines)
    if args.json:
        print_json(control_view.status_json(report))
    else:
        _print(control_view.status_lines(report))
    return 0


def _logs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the run ends")
    p.add_argument("--poll", type=positive_float, default=5.0, metavar="SECONDS", help="--follow poll interval")


@_cloud_command("logs", "print a run's logs, every attempt in order", _logs_args, run_id=True)
def _logs(args: argparse.Namespace) -> int:
    from training.cloud import control, control_view

    for entry in control.log_entries(_session(args), _stack(args), run_id=_run_id(args), follow=args.follow,
                                     poll_seconds=args.poll):
        print(control_view.log_line(entry))
    return 0


def _pull_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dest", default="outputs", metavar="DIR", help="download to DIR/<run-id>/ (default outputs)")


@_cloud_command("pull", "download a run's artifacts and print its headline metrics", _pull_args, run_id=True)
def _pull(args: argparse.Namespace) -> int:
    from training.cloud import control, control_view

    _print(control_view.pull_lines(control.pull(_session(args), _stack(args), run_id=_run_id(args), dest=args.dest)))
    return 0


# ---- stop, resume ----

@_cloud_command("stop", "stop a run: state STOPPED, group capacity 0; checkpoints are kept", run_id=True)
def _stop(args: argparse.Namespace) -> int:
    from training.cloud import control, control_view

    _print(control_view.stop_lines(control.stop(_session(args), _stack(args), run_id=_run_id(args))))
    return 0


@_cloud_command("resume", "restart a stopped run from its checkpoints (group capacity 1)", run_id=True)
def _resume(args: argparse.Namespace) -> int:
    from training.cloud import control, control_view

    _print(control_view.resume_lines(control.resume(_session(args), _stack(args), run_id=_run_id(args))))
    return 0


# ---- upload-data, runs ----

def _upload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="local Lending Club CSV (.csv, .csv.gz, .zip)")
    p.add_argument("--key", help="object key (default data/<file name>)")


@_cloud_command("upload-data", "upload a data file to the bucket's data/ prefix; prints the dataUri", _upload_args)
def _upload(args: argparse.Namespace) -> int:
    from training.cloud import control, control_view

    _print(control_view.upload_lines(control.upload_data(_session(args), args.path, _stack(args), key=args.key)))
    return 0


def _runs_args(p: argparse.ArgumentParser) -> None:
    add_json_flag(p, "the runs")


@_cloud_command("runs", "list every run in the bucket (and every deployed run stack), newest first, with state, "
                        "cost and weighted F1", _runs_args)
def _runs(args: argparse.Namespace) -> int:
    from training.cloud import control, control_view

    stack = _stack(args)
    rows = control.runs(_session(args), stack)
    if args.json:
        print_json(control_view.runs_json(stack, rows))
    else:
        _print(control_view.runs_lines(rows))
    return 0


# ---- estimate, cleanup ----

def _estimate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--context", action="append", metavar="KEY=VALUE",
                   help="override a cdk.json context value, as with cdk deploy -c (repeatable)")
    p.add_argument("--hours", type=positive_float, help="expected hours (default: maxRuntimeHours)")
    p.add_argument("--epochs-per-hour", type=positive_float, metavar="N",
                   help="measured training speed: hours = epochs / N, capped by maxRuntimeHours")
    add_json_flag(p, "the estimate")


@_cloud_command("estimate", "expected cost of the configured run from recent spot prices", _estimate_args,
                stack=False)
def _estimate(args: argparse.Namespace) -> int:
    from training.cloud import estimate
    from training.cloud.core.context import load_context

    context = load_context(args.context or ())
    found = estimate.estimate(_session(args), context, hours=args.hours, epochs_per_hour=args.epochs_per_hour)
    if args.json:
        print_json(estimate.estimate_json(found))
    else:
        _print(estimate.estimate_lines(found))
    return 0


def _cleanup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="remove what was found (default: dry run, change nothing)")


@_cloud_command("cleanup", "find (and with --yes remove) spotgrade instances, groups and spot requests that "
                           "outlived their run", _cleanup_args, stack=False, aliases=("sweep",))
def _cleanup(args: argparse.Namespace) -> int:
    from training.cloud import cleanup

    cleanup.cleanup(_session(args), yes=args.yes)
    return 0


# ---- preflight ----

@command("preflight", "check the deploy settings `cdk deploy` would use (give its arguments, e.g. -c repoUrl=...)",
         passes_unknown=True)
def _preflight(args: argparse.Namespace) -> int:
    from training.cloud import preflight

    return preflight.main(list(args.unknown))
