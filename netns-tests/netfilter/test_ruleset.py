"""What the ruleset does on its own, with no engine answering: fail modes, anti-spoofing,
inbound, protocols, pending flows. Both address families, from cold neighbour caches."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable

import pytest
from netfilterqueue import NetfilterQueue
from nsutil import AGENT_V4, UPSTREAM_V4, UPSTREAM_V6, Lab, Namespace, address, tcp_pair
from pyroute2 import Conntrack
from pyroute2.conntrack import NFCTAttrTuple

from gatewayd.config import Config
from gatewayd.netfilter.apply import apply
from gatewayd.netfilter.conntrack import Flow, flows
from gatewayd.netfilter.marks import Marks, State
from gatewayd.netfilter.probe import select_backend
from gatewayd.netfilter.queuestats import read_queue_stats
from gatewayd.netfilter.render import render_ruleset

pytestmark = pytest.mark.netns

UPSTREAMS = [UPSTREAM_V4, UPSTREAM_V6]
REJECT_WITHIN_S = 2.0


def applied(lab: Lab, **kw: object) -> Config:
    config = lab.config(**kw)  # type: ignore[arg-type]
    with lab.gateway.entered():
        apply(render_ruleset(config, select_backend(config).backend))
    return config


def counter(ns: Namespace, chain: str, match: Callable[[str], bool]) -> int:
    """Packets counted by the one rule of ``chain`` whose text ``match`` picks."""
    listing = ns.nft("list", "chain", "inet", "clawgress", chain).stdout
    (line,) = [ln for ln in listing.splitlines() if "counter" in ln and match(ln)]
    found = re.search(r"counter packets (\d+)", line)
    assert found, line
    return int(found.group(1))


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_fail_open_passes_flows_without_an_engine(gateway_lab: Lab, upstream: str) -> None:
    applied(gateway_lab, fail_mode="fail-open")
    with tcp_pair(gateway_lab.agent, gateway_lab.upstream, upstream) as (client, server):
        client.sendall(b"hello")
        assert server.recv(5) == b"hello"
        server.sendall(b"back")
        assert client.recv(4) == b"back"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_fail_closed_resets_new_flows_at_once(gateway_lab: Lab, upstream: str) -> None:
    applied(gateway_lab, fail_mode="fail-closed")
    family = socket.AF_INET6 if ":" in upstream else socket.AF_INET
    with gateway_lab.upstream.socket(family) as listener:
        listener.bind((upstream, 8080))
        listener.listen(1)
        with gateway_lab.agent.socket(family) as client:
            client.settimeout(REJECT_WITHIN_S)
            started = time.monotonic()
            with pytest.raises(ConnectionRefusedError):
                client.connect((upstream, 8080))
            assert time.monotonic() - started < REJECT_WITHIN_S
    assert counter(gateway_lab.gateway, "commit", lambda ln: "tcp reset" in ln) >= 1


def test_spoofed_source_is_dropped_before_conntrack(gateway_lab: Lab) -> None:
    applied(gateway_lab, fail_mode="fail-open")
    address(gateway_lab.agent, "eth0", "10.99.0.5/32")
    spoofed = lambda ln: "ip saddr" in ln and "spoofed source" in ln  # noqa: E731
    assert counter(gateway_lab.gateway, "antispoof", spoofed) == 0
    with gateway_lab.agent.socket() as client:
        client.bind(("10.99.0.5", 0))
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.connect((UPSTREAM_V4, 8080))
    assert counter(gateway_lab.gateway, "antispoof", spoofed) >= 1


def test_ipv4_only_interface_drops_ipv6(gateway_lab: Lab) -> None:
    applied(gateway_lab, fail_mode="fail-open", subnets=["10.77.1.0/24"])
    with gateway_lab.agent.socket(socket.AF_INET6) as client:
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.connect((UPSTREAM_V6, 8080))
    assert counter(gateway_lab.gateway, "antispoof", lambda ln: "no ipv6 subnet" in ln) >= 1


def test_unsolicited_inbound_is_dropped(gateway_lab: Lab) -> None:
    applied(gateway_lab, fail_mode="fail-open")
    with gateway_lab.agent.socket() as listener:
        listener.bind((AGENT_V4, 9090))
        listener.listen(1)
        with gateway_lab.upstream.socket() as client:
            client.settimeout(0.5)
            with pytest.raises(TimeoutError):
                client.connect((AGENT_V4, 9090))
    assert counter(gateway_lab.gateway, "forward_filter", lambda ln: "unsolicited" in ln) >= 1


def test_only_tcp_and_udp_leave(gateway_lab: Lab) -> None:
    applied(gateway_lab, fail_mode="fail-open")
    echo_request = bytes([8, 0, 0xF7, 0xFF, 0, 0, 0, 0])  # type 8, checksum over zeros
    with gateway_lab.agent.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        raw.sendto(echo_request, (UPSTREAM_V4, 0))
    tcp_udp = lambda ln: "only tcp and udp leave" in ln  # noqa: E731
    deadline = time.monotonic() + REJECT_WITHIN_S
    while counter(gateway_lab.gateway, "classify", tcp_udp) == 0:
        assert time.monotonic() < deadline, "the ICMP echo was not dropped"
        time.sleep(0.02)


def test_pending_flow_sends_client_packets_to_the_queue(gateway_lab: Lab) -> None:
    config = applied(gateway_lab, fail_mode="fail-open", queue=5, reset_queue=6)
    marks = Marks.from_config(config)
    lab = gateway_lab
    with tcp_pair(lab.agent, lab.upstream, UPSTREAM_V4) as (client, server):
        with lab.gateway.entered():
            (flow,) = [f for f in flows(marks) if str(f.src) == AGENT_V4]
            assert set_state(flow, marks, State.PENDING) == 1
            nfq = NetfilterQueue()
        try:
            with lab.gateway.entered():
                nfq.bind(5, lambda pkt: pkt.accept(), max_len=16)
            # The reply direction of a pending flow is not queued...
            server.sendall(b"banner")
            assert client.recv(6) == b"banner"
            # ...its client packets are, until the engine decides.
            client.sendall(b"hello")
            deadline = time.monotonic() + REJECT_WITHIN_S
            while queued(lab, 5) == 0:
                assert time.monotonic() < deadline, "the pending flow's packet was not queued"
                time.sleep(0.02)
        finally:
            nfq.unbind()


def set_state(flow: Flow, marks: Marks, state: State) -> int:
    """Put ``flow`` in ``state`` as the commit chain would (calling thread's namespace)."""
    af = socket.AF_INET if flow.family == 4 else socket.AF_INET6
    orig = NFCTAttrTuple(
        family=af, saddr=str(flow.src), daddr=str(flow.dst), proto=flow.protocol,
        sport=flow.sport, dport=flow.dport,
    )  # fmt: skip
    with Conntrack(nfgen_family=af) as ct:
        ct.entry("set", tuple_orig=orig, mark=marks.with_state(flow.mark, state))
    return 1


def queued(lab: Lab, queue: int) -> int:
    with lab.gateway.entered():
        stats = read_queue_stats().get(queue)
    return stats.queue_total if stats else 0
