"""stack_outputs.py against moto: a deployed run found from its stack's outputs (core/outputs.py's keys)."""
from __future__ import annotations

import json

import pytest

from tests.training.cloud.moto_run import make_run
from training.cloud import stack_outputs as so
from training.cloud.core import outputs as keys
from training.errors import CloudError


def test_find_run_stack_reads_every_output(aws):
    run = make_run(aws)
    found = so.find_run_stack(aws, "Spotgrade")
    assert (found.bucket, found.run_id, found.asg_name, found.log_group, found.topic_arn) == (
        run.bucket, run.run_id, run.asg_name, run.log_group, run.topic_arn)
    assert found.layout.status_key == f"runs/{run.run_id}/status.json"


def test_suffixed_keys_and_the_run_id_from_the_prefix(aws):
    outputs = {f"{keys.BUCKET_NAME}": "b-1", f"{keys.RUN_PREFIX}0A1B2C3D": "s3://b-1/runs/exp-7/"}
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    aws.client("cloudformation").create_stack(StackName="Old", TemplateBody=json.dumps(template))
    found = so.find_run_stack(aws, "Old")
    assert (found.bucket, found.run_id, found.asg_name) == ("b-1", "exp-7", None)


def test_missing_stack_and_missing_outputs_are_one_line(aws):
    with pytest.raises(CloudError, match="stack 'Nope' not found in this region"):
        so.find_run_stack(aws, "Nope")
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"Other": {"Value": "x"}}}
    aws.client("cloudformation").create_stack(StackName="Other", TemplateBody=json.dumps(template))
    with pytest.raises(CloudError, match="has no BucketName output"):
        so.find_run_stack(aws, "Other")


def test_default_stack_is_the_settings_default():
    from training.cloud.core.settings import DEFAULTS

    assert so.DEFAULT_STACK == DEFAULTS["stackName"]
