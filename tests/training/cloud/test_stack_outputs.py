"""stack_outputs.py against moto: the shared stack and the run stacks found from their outputs (core/outputs.py)."""
from __future__ import annotations

import json
import time

import pytest

from tests.training.cloud.moto_run import make_run, make_shared
from training.cloud import stack_outputs as so
from training.cloud.core import outputs as keys
from training.errors import CloudError


def test_a_run_is_found_from_the_shared_stack_and_its_run_stack(aws):
    run = make_run(aws)
    shared = so.find_shared_stack(aws, "Spotgrade")
    assert (shared.stack_name, shared.bucket, shared.topic_arn) == ("Spotgrade", run.bucket, run.topic_arn)
    found = so.find_run_stack(aws, shared, run.run_id)
    assert (found.run_stack, found.bucket, found.run_id, found.asg_name, found.log_group, found.topic_arn) == (
        "Spotgrade-run-1", run.bucket, run.run_id, run.asg_name, run.log_group, run.topic_arn)
    assert found.layout.status_key == f"runs/{run.run_id}/status.json"


def test_a_run_without_its_stack_keeps_its_bucket_and_log_group(aws):
    run = make_run(aws, run_id="gone")
    run.destroy_stack()
    found = so.find_run_stack(aws, so.find_shared_stack(aws), "gone")
    assert (found.run_stack, found.asg_name) == (None, None)
    assert (found.bucket, found.log_group) == (run.bucket, "/spotgrade/Spotgrade/gone") == (run.bucket, run.log_group)
    old_style = so.find_run_stack(aws, so.find_shared_stack(aws), "run_1.a")  # no stack can have this name
    assert old_style.run_stack is None and old_style.run_id == "run_1.a"


def test_deployed_runs_newest_first_and_only_this_shared_stacks(aws):
    make_run(aws, run_id="a")
    time.sleep(1.1)  # CloudFormation creation times (moto: whole seconds)
    make_run(aws, run_id="b")
    make_run(aws, run_id="c", stack="Other")
    make_run(aws, run_id="d", with_stack=False)
    assert [r.run_id for r in so.deployed_runs(aws, "Spotgrade")] == ["b", "a"]
    assert [r.stack_name for r in so.deployed_runs(aws, "Other")] == ["Other-c"]


def test_run_of_stack_reads_a_run_stack_and_a_one_run_stack_of_before(aws):
    run = make_run(aws)
    found = so.run_of_stack(aws, run.run_stack)
    assert (found.stack_name, found.run_stack, found.bucket, found.run_id, found.asg_name) == (
        "Spotgrade", "Spotgrade-run-1", run.bucket, "run-1", run.asg_name)
    outputs = {f"{keys.BUCKET_NAME}": "b-1", f"{keys.RUN_PREFIX}0A1B2C3D": "s3://b-1/runs/exp-7/"}
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    aws.client("cloudformation").create_stack(StackName="Old", TemplateBody=json.dumps(template))
    old = so.run_of_stack(aws, "Old")
    assert (old.bucket, old.run_id, old.asg_name) == ("b-1", "exp-7", None)
    assert so.run_of_stack(aws, "Nope") is None


def test_missing_stack_and_missing_outputs_are_one_line(aws):
    with pytest.raises(CloudError, match="stack 'Nope' not found in this region"):
        so.find_shared_stack(aws, "Nope")
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"Other": {"Value": "x"}}}
    aws.client("cloudformation").create_stack(StackName="Other", TemplateBody=json.dumps(template))
    with pytest.raises(CloudError, match="has no BucketName output"):
        so.find_shared_stack(aws, "Other")
    make_shared(aws)
    run = make_run(aws)
    with pytest.raises(CloudError, match="it is a run's stack: pass --stack Spotgrade") as info:
        so.find_shared_stack(aws, run.run_stack)
    assert "\n" not in str(info.value)


def test_default_stack_is_the_settings_default():
    from training.cloud.core.settings import DEFAULTS

    assert so.DEFAULT_STACK == DEFAULTS["stackName"]
