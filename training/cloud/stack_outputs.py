"""Find the deployed stacks from their CloudFormation outputs, and turn AWS failures into one-line errors.

The run-control commands take at most the shared stack's name (`--stack`, default `stackName`) and a run id: the
bucket and the topic come from the shared stack's outputs, a run's group and log group from its run stack's
(`<stackName>-<runId>`, core/outputs.py). A run whose stack is destroyed is still found: its files are in the bucket
and its log group is kept, under the name core/outputs.log_group_name gives it.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from training.cloud.core import outputs as keys
from training.cloud.core.layout import RunLayout, run_id_from_prefix
from training.cloud.core.settings import DEFAULTS
from training.errors import CloudError, ConfigError

DEFAULT_STACK = str(DEFAULTS["stackName"])

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
            "UnrecognizedClientException", "AuthFailure", "SignatureDoesNotMatch"}


@dataclass(frozen=True)
class SharedStack:
    """What the commands need of the shared stack."""

    stack_name: str
    bucket: str
    topic_arn: str | None


@dataclass(frozen=True)
class DeployedRun:
    """A run stack of a shared stack, as `describe_stacks` lists it."""

    stack_name: str
    run_id: str
    created: datetime | None
    outputs: dict[str, str]


@dataclass(frozen=True)
class RunStack:
    """What the commands need to know about one run (deployed or not any more)."""

    stack_name: str          # the shared stack
    run_stack: str | None    # the run's own stack; None where it is not deployed (destroyed, or never was)
    bucket: str
    run_id: str
    asg_name: str | None     # None without a run stack: nothing to stop or resume
    log_group: str | None
    topic_arn: str | None
    region: str | None

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.bucket, self.run_id)


def _output(outputs: dict[str, str], name: str) -> str | None:
    """The output `name` (core/outputs.py); a construct's output carries an 8-hex-digit suffix from CDK."""
    if name in outputs:
        return outputs[name] or None
    pattern = re.compile(re.escape(name) + r"[0-9A-F]{8}")
    for key, value in outputs.items():
        if pattern.fullmatch(key):
            return value or None
    return None


def _missing(error: ClientError) -> bool:
    return "does not exist" in error.response.get("Error", {}).get("Message", "")


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    """All outputs of a stack as {OutputKey: OutputValue}; CloudError where the stack does not exist."""
    found = optional_stack_outputs(cfn, stack_name)
    if found is None:
        raise CloudError(
            f"stack {stack_name!r} not found in this region: deploy it with `make deploy RUN=<run-id>`, "
            "or pass --stack NAME, or --region (AWS_REGION) where it is"
        )
    return found


def optional_stack_outputs(cfn: Any, stack_name: str) -> dict[str, str] | None:
    """A stack's outputs, or None where it does not exist (or is being deleted)."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if _missing(error):
            return None
        raise
    if not stacks or stacks[0].get("StackStatus", "").startswith("DELETE_"):
        return None
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}


def find_shared_stack(session: Any, stack_name: str = DEFAULT_STACK) -> SharedStack:
    """The shared stack's bucket and topic (a stack of before issue 12, one per run, has a BucketName too)."""
    outputs = stack_outputs(session.client("cloudformation"), stack_name)
    bucket = _output(outputs, keys.BUCKET_NAME)
    if not bucket:
        shared = _output(outputs, keys.SHARED_STACK)
        hint = f"it is a run's stack: pass --stack {shared}" if shared else "is it a spotgrade stack?"
        raise CloudError(f"stack {stack_name!r} has no {keys.BUCKET_NAME} output: {hint}")
    return SharedStack(stack_name, bucket, _output(outputs, keys.TOPIC_ARN))


def deployed_runs(session: Any, stack_name: str = DEFAULT_STACK) -> list[DeployedRun]:
    """The run stacks of shared stack `stack_name` in this region, the most recently created first.

    A run stack is named `<stackName>-<runId>` and its outputs name the shared stack; one that is being deleted,
    or still being created (no outputs yet), is left out."""
    found = []
    for page in session.client("cloudformation").get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            run_id = keys.run_id_of_stack(stack_name, stack["StackName"])
            outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
            if (run_id is None or stack.get("StackStatus", "").startswith("DELETE_")
                    or _output(outputs, keys.SHARED_STACK) != stack_name or _output(outputs, keys.RUN_ID) != run_id):
                continue
            found.append(DeployedRun(stack["StackName"], run_id, stack.get("CreationTime"), outputs))
    return sorted(found, key=lambda r: r.created.timestamp() if r.created else 0.0, reverse=True)


def find_run_stack(session: Any, shared: SharedStack, run_id: str) -> RunStack:
    """Run `run_id` of the shared stack: its group and log group from its run stack where that is deployed; without
    one, no group and the log group the run stack had (kept when it was destroyed)."""
    try:
        run_stack: str | None = keys.run_stack_name(shared.stack_name, run_id)
    except ConfigError:  # a run id no stack can be named after ('.', '_'): a run of before issue 12
        run_stack = None
    outputs = optional_stack_outputs(session.client("cloudformation"), run_stack) if run_stack else None
    if outputs is None:
        return RunStack(shared.stack_name, None, shared.bucket, run_id, None,
                        keys.log_group_name(shared.stack_name, run_id), shared.topic_arn,
                        getattr(session, "region_name", None))
    return RunStack(
        stack_name=shared.stack_name,
        run_stack=run_stack,
        bucket=shared.bucket,
        run_id=run_id,
        asg_name=_output(outputs, keys.ASG_NAME),
        log_group=_output(outputs, keys.LOG_GROUP_NAME) or keys.log_group_name(shared.stack_name, run_id),
        topic_arn=shared.topic_arn,
        region=getattr(session, "region_name", None),
    )


def run_of_stack(session: Any, stack_name: str) -> RunStack | None:
    """The run a stack holds, read from that stack's outputs alone (`cleanup` finds stacks by their resources' tags):
    a run stack, or a one-run stack of before issue 12. None where the stack is gone."""
    cfn = session.client("cloudformation")
    outputs = optional_stack_outputs(cfn, stack_name)
    if outputs is None:
        return None
    run_id = _output(outputs, keys.RUN_ID) or run_id_from_prefix(_output(outputs, keys.RUN_PREFIX))
    bucket = _output(outputs, keys.BUCKET_NAME)
    shared_name = _output(outputs, keys.SHARED_STACK)
    if shared_name and not bucket:
        shared_outputs = optional_stack_outputs(cfn, shared_name) or {}
        bucket = _output(shared_outputs, keys.BUCKET_NAME)
    if not run_id or not bucket:
        raise CloudError(f"stack {stack_name!r} names no run and bucket in its outputs: is it a spotgrade run stack?")
    return RunStack(shared_name or stack_name, stack_name, bucket, run_id, _output(outputs, keys.ASG_NAME),
                    _output(outputs, keys.LOG_GROUP_NAME), _output(outputs, keys.TOPIC_ARN),
                    getattr(session, "region_name", None))


@contextlib.contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn missing credentials/region and auth failures into a one-line CloudError naming the fix."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise CloudError(
            f"{action}: no AWS credentials found: run `aws configure` (or `aws sso login`), "
            "or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
        ) from None
    except NoRegionError:
        raise CloudError(f"{action}: no AWS region set: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION "
                         "(e.g. export AWS_REGION=us-east-1)") from None
    except EndpointConnectionError as error:
        raise CloudError(f"{action}: cannot reach AWS ({error}): check your network and the region "
                         "(--region, AWS_REGION, AWS_DEFAULT_REGION)") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error)).splitlines()[0]
        if code in _EXPIRED:
            raise CloudError(f"{action}: AWS rejected the credentials ({code}): refresh them and retry") from None
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            raise CloudError(f"{action}: access denied ({message}): use credentials allowed to do this") from None
        raise CloudError(f"{action}: AWS error {code}: {message}") from None
    except BotoCoreError as error:
        raise CloudError(f"{action}: {str(error).splitlines()[0]}") from None
