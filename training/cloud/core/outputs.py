"""The stacks' names and their CloudFormation outputs: declared by stacks/ (shared_stack.py, run_stack.py), read by
training/cloud/stack_outputs.py (the run-control commands find the bucket and the runs through them).

Two kinds of stack (docs/architecture.md, "Stacks"):

- the shared stack, named `stackName` (e.g. `Spotgrade`): network, artifacts bucket, topic. Its outputs
  `SHARED_EXPORTS` are also CloudFormation exports named `export_name(stackName, key)`, which every run stack
  imports; nothing in it depends on a run id.
- one run stack per run, named `run_stack_name(stackName, runId)` (e.g. `Spotgrade-lc-7`): launch template, group,
  watchdog, log group, alarm. Its outputs are `RUN_OUTPUTS`.
"""
from __future__ import annotations

import re

from training.errors import ConfigError

# ---- the shared stack's outputs (each one exported)
BUCKET_NAME = "BucketName"
TOPIC_ARN = "TopicArn"
TOPIC_KEY_ARN = "TopicKeyArn"
VPC_ID = "VpcId"
PUBLIC_SUBNET_IDS = "PublicSubnetIds"  # comma-separated, one per Availability Zone
SECURITY_GROUP_ID = "InstanceSecurityGroupId"
SHARED_EXPORTS = (BUCKET_NAME, TOPIC_ARN, TOPIC_KEY_ARN, VPC_ID, PUBLIC_SUBNET_IDS, SECURITY_GROUP_ID)

# ---- a run stack's outputs (the bucket and topic are the shared stack's, named by SharedStackName)
RUN_ID = "RunId"
SHARED_STACK = "SharedStackName"
RUN_PREFIX = "RunPrefix"  # the run's key prefix in the shared stack's bucket, runs/<runId>/
ASG_NAME = "AutoScalingGroupName"
LOG_GROUP_NAME = "LogGroupName"
CONSOLE_LINK = "ConsoleLink"
RUN_OUTPUTS = (RUN_ID, SHARED_STACK, RUN_PREFIX, ASG_NAME, LOG_GROUP_NAME, CONSOLE_LINK)

# CloudFormation: a stack name is a letter, then letters, digits and '-', at most 128 characters.
STACK_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def validate_stack_name(name: str, what: str = "stack name") -> str:
    """Return name, or raise ConfigError naming CloudFormation's rule (`what` names where it came from)."""
    if not STACK_NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{what} {name!r} is invalid: a CloudFormation stack name is a letter, then letters, "
                          "digits or '-' (at most 128)")
    return name


def run_stack_name(stack_name: str, run_id: str) -> str:
    """The run stack of run `run_id`: `<stackName>-<runId>`; ConfigError where that is no valid stack name
    (a run id with '.' or '_', or too long)."""
    name = f"{stack_name}-{run_id}"
    if not STACK_NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"context key 'runId': {run_id!r} is not allowed; expected letters, digits and '-' "
                          f"(the run's stack is named {stack_name}-<runId>, at most 128 characters; "
                          "set it with -c runId=...)")
    return name


def run_id_of_stack(stack_name: str, candidate: str) -> str | None:
    """The run id in the name of a run stack of shared stack `stack_name`, or None where it is not one."""
    prefix = f"{stack_name}-"
    return (candidate[len(prefix):] or None) if candidate.startswith(prefix) else None


def export_name(stack_name: str, key: str) -> str:
    """The export of one of the shared stack's outputs, e.g. `Spotgrade:BucketName`."""
    if key not in SHARED_EXPORTS:
        raise ValueError(f"{key!r} is not one of the shared stack's exports {SHARED_EXPORTS}")
    return f"{stack_name}:{key}"


def log_group_name(stack_name: str, run_id: str) -> str:
    """The run's CloudWatch log group (kept when its run stack is destroyed): `/spotgrade/<stackName>/<runId>`."""
    return f"/spotgrade/{stack_name}/{run_id}"


def alarm_name_prefix(stack_name: str) -> str:
    """Every run's alarms are named `<stackName>-<runId>-...`: the shared topic lets CloudWatch publish for these."""
    return f"{stack_name}-"
