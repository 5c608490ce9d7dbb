from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP  # type: ignore[import-untyped]
from scapy.layers.inet6 import IPv6  # type: ignore[import-untyped]

from gatewayd.identity import Quarantine
from gatewayd.netfilter.marks import State
from gatewayd.verdict import Decider

from .conftest import MARKS, NOW, OPS, RESEARCH, leases, plan

IFACES = {7: "wl0", 8: "wl1"}


def decider(l7: bool = False) -> Decider:
    table = leases(("10.77.0.11", "wl0", RESEARCH), ("10.77.0.12", "wl0", OPS),
                   ("fd77::11", "wl0", RESEARCH))
    return Decider(plan=plan(), leases=table, marks=MARKS, interfaces=IFACES, gateway="gw",
                   l7_available=l7)


def syn(src: str, dst: str, dport: int) -> bytes:
    if ":" in src:
        return bytes(IPv6(src=src, dst=dst) / TCP(sport=40000, dport=dport, flags="S"))
    return bytes(IP(src=src, dst=dst) / TCP(sport=40000, dport=dport, flags="S"))


def test_allowed_flow_is_stamped_allow_and_audited() -> None:
    v = decider().decide(syn("10.77.0.11", "10.78.0.10", 443), 0, 7, NOW)
    assert v.state is State.ALLOW
    assert v.mark == MARKS.stamp(0, State.ALLOW)
    e = v.event().as_dict()
    assert e["kind"] == "flow.verdict"
    assert (e["agent_id"], e["team_id"], e["src_ip"], e["dst_ip"], e["dst_port"]) == (
        "bot-1", "research", "10.77.0.11", "10.78.0.10", 443)
    assert (e["action"], e["policy_id"], e["rule_id"], e["bundle_version"]) == (
        "allow", "lab", "api", 4)
    assert e["protocol"] == "tcp" and e["iface"] == "wl0" and e["layer"] == "l4"
    assert e["shadow"]["rule_id"] == "next" and e["shadow"]["action"] == "deny"


def test_other_mark_bits_are_kept() -> None:
    foreign = 0x0000_0abc | MARKS.queued_bit
    v = decider().decide(syn("10.77.0.11", "10.78.0.10", 443), foreign, 7, NOW)
    assert v.mark & 0xFFF == 0xABC
    assert MARKS.is_queued(v.mark) and MARKS.is_stamped(v.mark)
    assert MARKS.state_of(v.mark) is State.ALLOW


def test_ipv6_flow() -> None:
    v = decider().decide(syn("fd77::11", "fd78::10", 443), 0, 7, NOW)
    assert v.state is State.ALLOW
    assert v.event().fields["ip_version"] == 6


def test_policy_deny_and_default_deny() -> None:
    d = decider()
    assert d.decide(syn("10.77.0.11", "10.78.0.12", 80), 0, 7, NOW).state is State.DENY
    v = d.decide(syn("10.77.0.12", "10.78.0.10", 443), 0, 7, NOW)  # ops: no rule
    assert v.state is State.DENY
    assert v.event().fields["reason"] == "no rule matched; default deny"


def test_unknown_source_and_wrong_interface_denied() -> None:
    d = decider()
    v = d.decide(syn("10.77.0.99", "10.78.0.10", 443), 0, 7, NOW)
    assert v.state is State.DENY and v.event().fields["agent_id"] is None
    assert "unknown identity" in v.event().fields["reason"]
    # The lease holds on wl0 only (anti-spoofing).
    assert d.decide(syn("10.77.0.11", "10.78.0.10", 443), 0, 8, NOW).state is State.DENY
    # An interface the engine does not know.
    assert d.decide(syn("10.77.0.11", "10.78.0.10", 443), 0, 99, NOW).state is State.DENY


def test_expired_lease_denied() -> None:
    v = decider().decide(syn("10.77.0.11", "10.78.0.10", 443), 0, 7, NOW + 7200)
    assert v.state is State.DENY


def test_udp() -> None:
    pkt = bytes(IP(src="10.77.0.11", dst="10.78.0.53") / UDP(sport=5353, dport=53))
    v = decider().decide(pkt, 0, 7, NOW)
    assert v.state is State.ALLOW and v.event().fields["protocol"] == "udp"


def test_inspect_without_l7_engine_is_refused_and_says_why() -> None:
    v = decider().decide(syn("10.77.0.11", "10.78.0.13", 443), 0, 7, NOW)
    assert v.state is State.DENY
    assert "L7 engine is not running" in v.event().fields["reason"]
    assert v.event().fields["action"] == "inspect"
    assert decider(l7=True).decide(syn("10.77.0.11", "10.78.0.13", 443), 0, 7,
                                   NOW).state is State.INSPECT


def test_garbage_and_non_flows_denied() -> None:
    d = decider()
    v = d.decide(b"\x45\x00garbage", 0, 7, NOW)
    assert v.state is State.DENY and v.event().fields["flags"] == ["parse-error"]
    assert v.decision is None
    icmp = bytes(IP(src="10.77.0.11", dst="10.78.0.10") / ICMP())
    v = d.decide(icmp, 0, 7, NOW)
    assert v.state is State.DENY and v.event().fields["flags"] == ["not-a-flow"]
    assert v.event().fields["src_ip"] == "10.77.0.11"


def test_quarantined_agent_is_denied_and_says_why() -> None:
    table = leases(("10.77.0.11", "wl0", RESEARCH))
    d = Decider(plan=plan(), leases=table, marks=MARKS, interfaces=IFACES, gateway="gw",
                quarantined={"bot-1": Quarantine("bot-1", NOW, "exfiltration suspected")})
    v = d.decide(syn("10.77.0.11", "10.78.0.10", 443), 0, 7, NOW)
    assert v.state is State.DENY
    fields = v.event().fields
    assert fields["agent_id"] == "bot-1" and fields["flags"] == ["quarantined"]
    assert fields["reason"] == "agent bot-1 is quarantined: exfiltration suspected"


def test_a_udp_flow_is_one_decision_for_a_moment() -> None:
    d = decider()
    dns = bytes(IP(src="10.77.0.11", dst="10.78.0.53") / UDP(sport=5353, dport=53))
    first = d.decide(dns, 0, 7, NOW)
    again = d.decide(dns, 0x5, 7, NOW + 1)
    assert not first.repeat and again.repeat
    assert again.state is first.state is State.ALLOW
    assert again.mark == MARKS.stamp(0x5, State.ALLOW)
    later = d.decide(dns, 0, 7, NOW + 3)  # past the window: decided (and audited) again
    assert not later.repeat
    other_port = bytes(IP(src="10.77.0.11", dst="10.78.0.53") / UDP(sport=5354, dport=53))
    assert not d.decide(other_port, 0, 7, NOW).repeat


def test_tcp_connections_are_never_repeats() -> None:
    d = decider()
    pkt = syn("10.77.0.11", "10.78.0.10", 443)
    assert not d.decide(pkt, 0, 7, NOW).repeat
    assert not d.decide(pkt, 0, 7, NOW).repeat
