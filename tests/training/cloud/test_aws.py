"""S3 transfers, data download checks, retries and scale-to-zero against moto."""
import hashlib

import boto3
import pytest
from moto import mock_aws

from tests.training.cloud.flaky import FlakyS3
from training.cloud import aws
from training.cloud.core.layout import RunLayout
from training.errors import DataError

BUCKET = "spotgrade-test"


@pytest.fixture
def clients():
    with mock_aws():
        c = aws.make_clients("us-east-1")
        c.s3.create_bucket(Bucket=BUCKET)
        yield c


def test_retry_config_is_standard_with_backoff():
    for client in (aws.make_clients("us-east-1").s3, aws.make_clients("us-east-1").autoscaling):
        retries = client.meta.config.retries
        assert retries["mode"] == "standard"
        assert retries.get("total_max_attempts", retries.get("max_attempts", 0) + 1) == 9  # 1 call + 8 retries


@pytest.mark.parametrize(("environ", "region"), [
    ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
    ({"AWS_DEFAULT_REGION": "eu-central-1"}, "eu-central-1"),
    ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-central-1"}, "eu-west-1"),  # the AWS CLI's order
    ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "eu-central-1"}, "eu-central-1"),
    ({}, None),
])
def test_region_from_aws_region_then_aws_default_region(monkeypatch, environ, region):
    for name in aws.REGION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert aws.env_region() == region
    if region:  # boto3 alone reads only AWS_DEFAULT_REGION; the sessions and the runner's clients read both
        assert aws.session().region_name == region
        assert aws.make_clients(None).s3.meta.region_name == region
    assert aws.session("ap-south-1").region_name == "ap-south-1"  # --region first


def test_upload_dir_puts_marker_last_and_download_restores(clients, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "training_metadata.json").write_text('{"epoch": 3}')
    (src / "latest.weights.h5").write_bytes(b"w" * 1000)
    (src / "sub" / "h.json").write_text("[]")
    here = RunLayout(BUCKET, "r")
    (src / "data" / "sub").mkdir(parents=True)
    (src / "data" / "sub" / "input.csv").write_text("x")
    (src / "sub" / "data").mkdir()
    (src / "sub" / "data" / "kept.json").write_text("{}")  # only a top-level data/ is skipped
    keys = aws.upload_dir(clients.s3, src, BUCKET, here.checkpoint_key, last=("training_metadata.json",),
                          skip=("data",))
    assert keys[-1] == "scratch/r/checkpoints/training_metadata.json"
    assert set(keys) == {"scratch/r/checkpoints/latest.weights.h5", "scratch/r/checkpoints/sub/h.json",
                         "scratch/r/checkpoints/sub/data/kept.json", "scratch/r/checkpoints/training_metadata.json"}
    assert clients.s3.head_object(Bucket=BUCKET, Key=keys[-1])["ContentType"] == "application/json"
    dest = tmp_path / "dest"
    paths = aws.download_prefix(clients.s3, BUCKET, here.checkpoints_prefix, dest)
    assert len(paths) == 4
    assert (dest / "latest.weights.h5").read_bytes() == b"w" * 1000
    assert (dest / "sub" / "h.json").read_text() == "[]"


def test_download_data_verifies_sha256(clients, tmp_path):
    body = b"id,grade\n1,A\n"
    clients.s3.put_object(Bucket=BUCKET, Key="data/good.csv", Body=body,
                          Metadata={"sha256": hashlib.sha256(body).hexdigest()})
    clients.s3.put_object(Bucket=BUCKET, Key="data/bad.csv", Body=body, Metadata={"sha256": "0" * 64})
    [path] = aws.download_data(clients.s3, f"s3://{BUCKET}/data/good.csv", tmp_path / "a")
    assert path.read_bytes() == body
    with pytest.raises(DataError, match="sha256"):
        aws.download_data(clients.s3, f"s3://{BUCKET}/data/bad.csv", tmp_path / "b")


def test_download_data_prefix_and_missing(clients, tmp_path):
    for name in ("x.csv", "y.csv"):
        clients.s3.put_object(Bucket=BUCKET, Key=f"data/set/{name}", Body=name.encode())
    paths = aws.download_data(clients.s3, f"s3://{BUCKET}/data/set", tmp_path / "p")
    assert sorted(p.read_text() for p in paths) == ["x.csv", "y.csv"]
    with pytest.raises(DataError, match="no data at"):
        aws.download_data(clients.s3, f"s3://{BUCKET}/data/none.csv", tmp_path / "q")


def test_transient_s3_errors_are_retried(clients, tmp_path):
    flaky = FlakyS3(clients.s3, failures=3, operations={"PutObject"})
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 4096)
    aws.upload_file(clients.s3, path, BUCKET, "k")
    assert flaky.failed == ["PutObject"] * 3
    assert clients.s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"x" * 4096


def _group(clients, desired=1):
    ec2 = boto3.client("ec2", region_name="us-east-1")
    template = ec2.create_launch_template(LaunchTemplateName="lt", LaunchTemplateData={"ImageId": "ami-12c6146b",
                                                                                       "InstanceType": "c5.large"})
    clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="grp", MinSize=0, MaxSize=1, DesiredCapacity=desired,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]},
        AvailabilityZones=["us-east-1a"])


def test_scale_to_zero(clients):
    _group(clients)
    assert aws.scale_to_zero(clients.autoscaling, "grp")
    group = clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["grp"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 0 and group["MinSize"] == 0


def test_scale_to_zero_sets_the_desired_capacity_only():
    """The instance role may SetDesiredCapacity on its own group, not UpdateAutoScalingGroup (issue 12)."""
    calls = []

    class Group:
        def set_desired_capacity(self, **kwargs):
            calls.append(kwargs)

    assert aws.scale_to_zero(Group(), "grp")
    assert calls == [{"AutoScalingGroupName": "grp", "DesiredCapacity": 0, "HonorCooldown": False}]


def test_scale_to_zero_retries_then_gives_up(clients):
    calls = []

    class Broken:
        def set_desired_capacity(self, **kwargs):
            calls.append(kwargs)
            raise RuntimeError("throttled")

    assert not aws.scale_to_zero(Broken(), "grp", attempts=3, sleep=lambda s: None)
    assert len(calls) == 3
    assert not aws.scale_to_zero(Broken(), None)


def test_spot_price(clients):
    price = aws.spot_price(clients.ec2, "c5.large", "us-east-1a")
    assert price is None or price > 0
    assert aws.spot_price(clients.ec2, None, "us-east-1a") is None
