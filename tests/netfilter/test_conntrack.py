from __future__ import annotations

import ipaddress
import socket
from types import SimpleNamespace

from gatewayd.netfilter.conntrack import Flow, flow_from_entry
from gatewayd.netfilter.marks import Marks, State

MARKS = Marks(20)


def entry(mark: int | None, **orig: object) -> SimpleNamespace:
    """Shaped like pyroute2's ConntrackEntry: the original tuple and the mark."""
    fields = {"sport": None, "dport": None, "icmp_type": None, "icmp_code": None, "icmp_id": None}
    return SimpleNamespace(tuple_orig=SimpleNamespace(**{**fields, **orig}), mark=mark)


def test_tcp_flow_with_state_and_foreign_bits() -> None:
    mark = MARKS.value(State.ALLOW) | 0x1
    e = entry(mark, saddr="10.0.0.2", daddr="1.1.1.1", proto=socket.IPPROTO_TCP, sport=40000,
              dport=443)  # fmt: skip
    assert flow_from_entry(4, e, MARKS) == Flow(
        family=4,
        protocol=6,
        src=ipaddress.ip_address("10.0.0.2"),
        dst=ipaddress.ip_address("1.1.1.1"),
        sport=40000,
        dport=443,
        icmp=None,
        mark=mark,
        state=State.ALLOW,
    )


def test_flow_without_mark_is_undecided() -> None:
    e = entry(None, saddr="fd00::2", daddr="2001:db8::1", proto=socket.IPPROTO_UDP, sport=5353,
              dport=53)  # fmt: skip
    flow = flow_from_entry(6, e, MARKS)
    assert (flow.family, flow.mark, flow.state) == (6, 0, State.UNDECIDED)
    assert flow.src == ipaddress.IPv6Address("fd00::2")


def test_icmp_flow_has_no_ports() -> None:
    e = entry(MARKS.value(State.DENY), saddr="10.0.0.2", daddr="10.0.0.1",
              proto=socket.IPPROTO_ICMP, icmp_type=8, icmp_code=0, icmp_id=77)  # fmt: skip
    flow = flow_from_entry(4, e, MARKS)
    assert (flow.sport, flow.dport, flow.icmp, flow.state) == (None, None, (8, 0, 77), State.DENY)


def test_unknown_state_code_reads_as_none_and_keys_differ_by_tuple() -> None:
    a = flow_from_entry(4, entry(0xF << 20, saddr="10.0.0.2", daddr="10.0.0.3", proto=6,
                                 sport=1, dport=2), MARKS)  # fmt: skip
    b = flow_from_entry(4, entry(0, saddr="10.0.0.2", daddr="10.0.0.3", proto=6, sport=1,
                                 dport=3), MARKS)  # fmt: skip
    assert a.state is None
    assert a.key != b.key
