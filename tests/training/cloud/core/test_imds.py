"""IMDSv2 client against the fake metadata server."""
import pytest

from tests.training.cloud.fake_imds import FakeImds
from training.cloud.core.imds import Imds, MetadataError


def test_token_then_metadata():
    with FakeImds(instance_type="g5.xlarge", lifecycle="spot") as fake:
        imds = Imds(fake.url)
        info = imds.instance_info()
        assert info.instance_type == "g5.xlarge" and info.region == "us-east-1"
        assert info.availability_zone == "us-east-1a" and info.lifecycle == "spot"
        assert info.instance_id.startswith("i-")
        # one token for all calls, every GET carried it (else the fake answers 401 -> error)
        assert [r for r in fake.requests if r[0] == "PUT"] == [("PUT", "/latest/api/token")]


def test_on_demand_lifecycle_is_normalised():
    with FakeImds(lifecycle="normal") as fake:
        assert Imds(fake.url).instance_info().lifecycle == "on-demand"


def test_spot_action_404_then_notice():
    with FakeImds() as fake:
        imds = Imds(fake.url)
        assert imds.spot_action() is None
        fake.notice()
        action = imds.spot_action()
        assert action["action"] == "terminate" and action["time"].endswith("Z")


def test_expired_token_is_refreshed():
    with FakeImds() as fake:
        imds = Imds(fake.url)
        imds.get("instance-id")
        imds._token = "stale"
        assert imds.get("instance-type") == "c5.large"
        assert len([r for r in fake.requests if r[0] == "PUT"]) == 2


def test_unreachable_endpoint_raises_metadata_error():
    with FakeImds() as fake:
        url = fake.url
    with pytest.raises(MetadataError, match="token"):
        Imds(url, timeout=0.5).spot_action()
