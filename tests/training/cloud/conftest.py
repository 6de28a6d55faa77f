"""Fixtures of the cloud tests: the moto server and a run's resources in it (moto_server.py), in-process moto,
and environments with and without AWS credentials."""
from __future__ import annotations

import itertools
import os

import boto3
import pytest

from tests.training.cloud.moto_server import Cloud, moto_endpoint  # noqa: F401 (the session's moto server)
from training.cloud import aws as cloud_aws
from training.cloud.core import env as env_keys

_names = itertools.count(1)


@pytest.fixture
def cloud(moto_endpoint, monkeypatch):  # noqa: F811 (the fixture imported above)
    for key in [k for k in os.environ if k.startswith(("AWS_", env_keys.PREFIX))]:
        monkeypatch.delenv(key)
    n = next(_names)
    cloud = Cloud(moto_endpoint, None, f"spotgrade-runs-{n}", f"spotgrade-group-{n}", f"/spotgrade/runs-{n}")  # type: ignore[arg-type]
    for key, value in cloud.aws_env().items():
        monkeypatch.setenv(key, value)
    cloud.clients = cloud_aws.make_clients("us-east-1")
    cloud.clients.s3.create_bucket(Bucket=cloud.bucket)
    cloud.clients.logs.create_log_group(logGroupName=cloud.log_group)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    template = ec2.create_launch_template(LaunchTemplateName=f"lt-{n}",
                                          LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "c5.large"})
    cloud.clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=cloud.group, MinSize=0, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]},
        AvailabilityZones=["us-east-1a"])
    return cloud


@pytest.fixture()
def aws_env(monkeypatch):
    """Fake credentials and region in the environment (no profile), for boto3 against moto."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture()
def aws(aws_env):
    """In-process moto (mock_aws) with fake credentials; yields a boto3 session in its region."""
    from moto import mock_aws

    from tests.training.cloud.moto_run import session

    with mock_aws():
        yield session()


@pytest.fixture()
def no_aws_credentials(monkeypatch, tmp_path):
    """No credentials anywhere boto3 looks: environment, files, instance metadata."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
