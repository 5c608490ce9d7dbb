"""Listing and ending real flows through the gateway (no engine: fail-open passes them)."""

from __future__ import annotations

import socket

import pytest
from nsutil import AGENT_V4, AGENT_V6, UPSTREAM_V4, UPSTREAM_V6, Lab, tcp_pair
from pyroute2 import Conntrack
from pyroute2.conntrack import NFCTAttrTuple

from gatewayd.netfilter.apply import apply
from gatewayd.netfilter.conntrack import Flow, delete_flows, end_flows, flows
from gatewayd.netfilter.marks import Marks, State
from gatewayd.netfilter.probe import select_backend
from gatewayd.netfilter.render import render_ruleset

pytestmark = pytest.mark.netns

FOREIGN_BIT = 0x1


@pytest.fixture
def lab_open(gateway_lab: Lab) -> tuple[Lab, Marks]:
    """The lab with the ruleset applied, fail-open, so flows pass without an engine."""
    config = gateway_lab.config(fail_mode="fail-open")
    with gateway_lab.gateway.entered():
        apply(render_ruleset(config, select_backend(config).backend))
    return gateway_lab, Marks.from_config(config)


def agent_flows(lab: Lab, marks: Marks, agent_ip: str) -> list[Flow]:
    with lab.gateway.entered():
        return [f for f in flows(marks) if str(f.src) == agent_ip]


def set_ct_mark(lab: Lab, flow: Flow, mark: int) -> None:
    """What the commit chain does once the engine decides: the flow's conntrack mark."""
    af = socket.AF_INET if flow.family == 4 else socket.AF_INET6
    orig = NFCTAttrTuple(
        family=af, saddr=str(flow.src), daddr=str(flow.dst), proto=flow.protocol,
        sport=flow.sport, dport=flow.dport,
    )  # fmt: skip
    with lab.gateway.entered(), Conntrack(nfgen_family=af) as ct:
        ct.entry("set", tuple_orig=orig, mark=mark)


@pytest.mark.parametrize(("agent", "upstream"), [(AGENT_V4, UPSTREAM_V4), (AGENT_V6, UPSTREAM_V6)])
def test_end_flows_denies_an_allowed_flow_and_keeps_other_bits(
    lab_open: tuple[Lab, Marks], agent: str, upstream: str
) -> None:
    lab, marks = lab_open
    with tcp_pair(lab.agent, lab.upstream, upstream) as (client, server):
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"
        (flow,) = agent_flows(lab, marks, agent)
        assert (flow.family, flow.protocol, str(flow.dst), flow.dport) == (
            6 if ":" in agent else 4, socket.IPPROTO_TCP, upstream, 8080,
        )  # fmt: skip
        assert flow.state is State.UNDECIDED
        set_ct_mark(lab, flow, marks.value(State.ALLOW) | FOREIGN_BIT)
        assert agent_flows(lab, marks, agent)[0].state is State.ALLOW

        with lab.gateway.entered():
            assert end_flows(lambda f: str(f.src) == agent, marks) == 1
            assert end_flows(lambda f: str(f.src) == agent, marks) == 0  # already denied
        (denied,) = agent_flows(lab, marks, agent)
        assert denied.state is State.DENY
        assert denied.mark == marks.value(State.DENY) | FOREIGN_BIT

        # The flow's next packet from the agent is answered with a reset.
        client.sendall(b"more")
        with pytest.raises(ConnectionResetError):
            client.recv(4)


def test_end_flows_by_list_and_unmatched_predicate(lab_open: tuple[Lab, Marks]) -> None:
    lab, marks = lab_open
    with tcp_pair(lab.agent, lab.upstream, UPSTREAM_V4) as (client, server):
        client.sendall(b"x")
        server.recv(1)
        with lab.gateway.entered():
            assert end_flows(lambda f: False, marks) == 0
        listed = agent_flows(lab, marks, AGENT_V4)
        with lab.gateway.entered():
            assert end_flows(listed, marks) == 1
        assert agent_flows(lab, marks, AGENT_V4)[0].state is State.DENY


def test_delete_flows_forgets_them(lab_open: tuple[Lab, Marks]) -> None:
    lab, marks = lab_open
    with tcp_pair(lab.agent, lab.upstream, UPSTREAM_V4) as (client, server):
        client.sendall(b"x")
        server.recv(1)
        listed = agent_flows(lab, marks, AGENT_V4)
        assert len(listed) == 1
        with lab.gateway.entered():
            assert delete_flows(listed, marks) == 1
            assert delete_flows(listed, marks) == 0  # gone already
        assert agent_flows(lab, marks, AGENT_V4) == []
        # Its next packet starts an undecided flow (the engine would decide it afresh).
        client.sendall(b"y")
        assert server.recv(1) == b"y"
        (again,) = agent_flows(lab, marks, AGENT_V4)
        assert again.state is State.UNDECIDED
