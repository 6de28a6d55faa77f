"""Network on a bare stack of its own: public subnets in two AZs, no NAT, the S3 endpoint, flow logs, and a
security group with no inbound rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stacks.helpers import Synth, bare_stack, synth_stack


def build(outdir: Path, *, restrict_default_security_group: bool) -> Synth:
    from aws_cdk import aws_logs as logs

    from stacks.network import Network

    app, stack = bare_stack(outdir, "NetworkTest")
    Network(stack, "Network", log_retention=logs.RetentionDays.ONE_WEEK,
            restrict_default_security_group=restrict_default_security_group)
    return synth_stack(app, stack, outdir)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return build(tmp_path_factory.mktemp("network"), restrict_default_security_group=True)


def test_public_subnets_in_two_azs_without_nat(network: Synth) -> None:
    subnets = network.resources("AWS::EC2::Subnet").values()
    assert len(subnets) == 2 and all(s["Properties"]["MapPublicIpOnLaunch"] for s in subnets)
    assert network.resources("AWS::EC2::NatGateway") == {}
    assert network.one("AWS::EC2::VPCEndpoint")["VpcEndpointType"] == "Gateway"


def test_flow_logs_go_to_their_own_log_group(network: Synth) -> None:
    flow_log = network.one("AWS::EC2::FlowLog")
    assert (flow_log["LogDestinationType"], flow_log["TrafficType"]) == ("cloud-watch-logs", "ALL")
    assert network.one("AWS::Logs::LogGroup")["RetentionInDays"] == 7


def test_instance_security_group_has_no_inbound_rule(network: Synth) -> None:
    [group] = network.resources("AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in group["Properties"]
    assert group["Properties"]["GroupDescription"].startswith("spotgrade training instance")


def test_default_security_group_restriction_is_optional(network: Synth, tmp_path: Path) -> None:
    assert network.resources("Custom::VpcRestrictDefaultSG")
    plain = build(tmp_path, restrict_default_security_group=False)
    assert not plain.resources("Custom::VpcRestrictDefaultSG")
