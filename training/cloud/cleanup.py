"""`cleanup` (formerly `sweep`): find (and with --yes remove) spotgrade capacity that should not be billing.

Looks at every spotgrade-tagged EC2 instance, Auto Scaling group and spot request in the region. One is
an orphan when the stack that made it (a run's stack) is gone, or when its run is terminal
(SUCCEEDED/FAILED/STOPPED/HUNG).
Dry run by default: nothing changes without `yes=True`.

- stack gone: instances are terminated, groups deleted (force), spot requests cancelled;
- run terminal, stack present: the stack's group is set to desired capacity 0 (deleting it would
  break the stack), its instances are terminated and spot requests cancelled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from training.cloud.core import lifecycle
from training.cloud.core.status_store import read_status
from training.cloud.stack_outputs import aws_errors, run_of_stack
from training.errors import CloudError

PROJECT_TAG = ("Project", "spotgrade")
STACK_TAG = "aws:cloudformation:stack-name"
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
Out = Callable[[str], None]


@dataclass
class Orphan:
    kind: str        # "instance" | "auto-scaling-group" | "spot-request"
    resource_id: str
    stack: str | None
    why: str
    action: str      # what --yes does


def _tags(items: list[dict]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


class _Verdicts:
    """Why a stack's resources are orphans (None: healthy), looked up once per stack."""

    def __init__(self, session: Any):
        self.session, self.cache = session, {}

    def __call__(self, stack: str | None) -> tuple[str | None, bool]:
        """(why it is an orphan or None, whether the stack is gone)."""
        if not stack:
            return "tagged spotgrade but belongs to no CloudFormation stack", True
        if stack not in self.cache:
            try:
                run = run_of_stack(self.session, stack)
            except CloudError:  # a stack that names no run: not ours to judge
                self.cache[stack] = (None, False)
                return self.cache[stack]
            if run is None:
                self.cache[stack] = (f"stack {stack} is gone", True)
            else:
                status = read_status(self.session.client("s3"), run.layout)
                state = status.get("state") if status else None
                ended = state in lifecycle.TERMINAL_STATES
                self.cache[stack] = (f"run {run.run_id} is {state}" if ended else None, False)
        return self.cache[stack]


def find_orphans(session: Any) -> list[Orphan]:
    ec2, autoscaling = session.client("ec2"), session.client("autoscaling")
    verdict = _Verdicts(session)
    orphans: list[Orphan] = []
    tag_filter = {"Name": f"tag:{PROJECT_TAG[0]}", "Values": [PROJECT_TAG[1]]}
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            tags = _tags(group.get("Tags"))
            if tags.get(PROJECT_TAG[0]) != PROJECT_TAG[1]:
                continue
            why, gone = verdict(tags.get(STACK_TAG))
            if why and gone:
                orphans.append(Orphan("auto-scaling-group", group["AutoScalingGroupName"], tags.get(STACK_TAG), why,
                                      "delete (force)"))
            elif why and (group["DesiredCapacity"] or group.get("Instances")):
                orphans.append(Orphan("auto-scaling-group", group["AutoScalingGroupName"], tags.get(STACK_TAG), why,
                                      "set desired capacity 0"))
    for page in ec2.get_paginator("describe_instances").paginate(
            Filters=[tag_filter, {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                stack = _tags(instance.get("Tags")).get(STACK_TAG)
                why, _ = verdict(stack)
                if why:
                    orphans.append(Orphan("instance", instance["InstanceId"], stack, why, "terminate"))
    requests = ec2.describe_spot_instance_requests(
        Filters=[tag_filter, {"Name": "state", "Values": ["open", "active"]}])["SpotInstanceRequests"]
    for request in requests:
        stack = _tags(request.get("Tags")).get(STACK_TAG)
        why, _ = verdict(stack)
        if why:
            orphans.append(Orphan("spot-request", request["SpotInstanceRequestId"], stack, why, "cancel"))
    return orphans


def _remove(session: Any, orphan: Orphan) -> None:
    if orphan.kind == "instance":
        session.client("ec2").terminate_instances(InstanceIds=[orphan.resource_id])
    elif orphan.kind == "spot-request":
        session.client("ec2").cancel_spot_instance_requests(SpotInstanceRequestIds=[orphan.resource_id])
    elif orphan.action.startswith("delete"):
        session.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=orphan.resource_id,
                                                                ForceDelete=True)
    else:
        session.client("autoscaling").set_desired_capacity(AutoScalingGroupName=orphan.resource_id,
                                                           DesiredCapacity=0, HonorCooldown=False)


def cleanup(session: Any, *, yes: bool = False, out: Out = print) -> list[Orphan]:
    """List orphaned spotgrade capacity; remove it only with yes=True. Returns the orphans found."""
    with aws_errors("cleanup"):
        orphans = find_orphans(session)
        if not orphans:
            out("nothing to clean up: every spotgrade instance, group and spot request belongs to a live run")
            return orphans
        for o in orphans:
            out(f"{o.kind:<19} {o.resource_id:<28} {o.why} -> {o.action}")
        if not yes:
            out(f"dry run: {len(orphans)} found, nothing changed; run `python -m training cleanup --yes` to remove "
                "them")
            return orphans
        for o in orphans:
            _remove(session, o)
        out(f"removed {len(orphans)}")
    return orphans
