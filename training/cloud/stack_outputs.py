"""Find a deployed run from its CloudFormation stack outputs, and turn AWS failures into one-line errors.

The run-control commands (status, logs, pull, stop, ...) take at most a stack name: the bucket, the
Auto Scaling group, the log group and the run id all come from `describe_stacks` outputs.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Iterator

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from training.cloud.core import outputs as keys
from training.cloud.core.layout import RunLayout, run_id_from_prefix
from training.cloud.core.settings import DEFAULTS
from training.errors import CloudError

DEFAULT_STACK = str(DEFAULTS["stackName"])

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
            "UnrecognizedClientException", "AuthFailure", "SignatureDoesNotMatch"}


@dataclass(frozen=True)
class RunStack:
    """What the commands need to know about one deployed run."""

    stack_name: str
    bucket: str
    run_id: str
    asg_name: str | None
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


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    """All outputs of a stack as {OutputKey: OutputValue}; CloudError where the stack does not exist."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if "does not exist" in message:
            raise CloudError(
                f"stack {stack_name!r} not found in this region: deploy it with `make deploy`, "
                "or pass --stack NAME / set AWS_REGION to where it is"
            ) from None
        raise
    if not stacks:
        raise CloudError(f"stack {stack_name!r} not found in this region: deploy it with `make deploy`")
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}


def find_run_stack(session: Any, stack_name: str = DEFAULT_STACK) -> RunStack:
    """Read the run's bucket, group, log group and run id from the stack's outputs."""
    outputs = stack_outputs(session.client("cloudformation"), stack_name)
    bucket = _output(outputs, keys.BUCKET_NAME)
    run_id = _output(outputs, keys.RUN_ID) or run_id_from_prefix(_output(outputs, keys.RUN_PREFIX))
    if not bucket or not run_id:
        missing = keys.BUCKET_NAME if not bucket else f"{keys.RUN_ID} (or {keys.RUN_PREFIX})"
        raise CloudError(
            f"stack {stack_name!r} has no {missing} output: is it a spotgrade stack? Redeploy with `make deploy`"
        )
    return RunStack(
        stack_name=stack_name,
        bucket=bucket,
        run_id=run_id,
        asg_name=_output(outputs, keys.ASG_NAME),
        log_group=_output(outputs, keys.LOG_GROUP_NAME),
        topic_arn=_output(outputs, keys.TOPIC_ARN),
        region=getattr(session, "region_name", None),
    )


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
        raise CloudError(f"{action}: no AWS region set: pass --region or set AWS_REGION (e.g. us-east-1)") from None
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
