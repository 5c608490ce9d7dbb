"""Which flows the verdict engine sends to the L7 engine: only TCP flows, only at their
first packet. A TLS flow whose ClientHello could send it to L7 goes there at its SYN (the
L7 engine reads the ClientHello); a flow read at L4 never moves to L7 mid-way."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP  # type: ignore[import-untyped]

from gatewayd.config import Config, NamesSection
from gatewayd.netfilter.marks import State
from gatewayd.policy import Guard, compile_plan, parse_documents
from gatewayd.verdict import Decider
from gatewayd.verdict.decide import Observed

from .conftest import MARKS, NOW, OPS, RESEARCH, leases
from .test_decide_names import (
    AGENT,
    EXAMPLE,
    IFACES,
    OPENAI,
    OTHER,
    PENDING,
    client_hello,
    interface_for,
    learn,
    segment,
    syn,
)

POLICY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: l7}
spec:
  priority: 100
  rules:
    - {id: openai, action: inspect, identity: {team: research},
       destination: {hosts: [api.openai.com], ports: [443], protocol: tcp}}
    - {id: example, action: allow, destination: {hosts: [example.com], ports: [443, 9000]}}
    - {id: udp-inspect, action: inspect, destination: {cidrs: [10.78.0.16/32], ports: [53]}}
    - {id: lab, action: deny, priority: 900, destination: {cidrs: [10.78.0.0/24]}}
"""
ALLOW_ONLY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: plain}
spec:
  priority: 100
  rules:
    - {id: example, action: allow, destination: {hosts: [example.com], ports: [443]}}
    - {id: lab, action: deny, priority: 900, destination: {cidrs: [10.78.0.0/24]}}
"""


def decider(policy: str = POLICY, *, l7: bool = True) -> Decider:
    table = leases((AGENT, "wl0", RESEARCH), (OTHER, "wl0", OPS))
    plan = compile_plan(parse_documents({"p.yaml": policy}), bundle_version=1,
                        guard=Guard.from_config(Config()))
    return Decider(plan=plan, leases=table, marks=MARKS, interfaces=IFACES, gateway="gw",
                   l7_available=l7, interface_for=interface_for,
                   observed=Observed.from_settings(NamesSection()))


def test_the_plan_knows_whether_anything_goes_to_l7() -> None:
    assert decider().plan.sends_to_l7
    assert not decider(ALLOW_ONLY).plan.sends_to_l7


def test_a_tls_flow_that_l7_may_decide_is_diverted_at_its_syn() -> None:
    d = decider()
    learn(d, "api.openai.com", OPENAI)
    v = d.decide(syn(OPENAI, 443), 0, 7, NOW)
    assert v.state is State.INSPECT
    e = v.event().fields
    assert "hello-at-l7" in e["flags"] and e["action"] == "inspect"
    # Even to a name that would be allowed: the SNI is read at L7, which splices it.
    learn(d, "example.com", EXAMPLE)
    assert d.decide(syn(EXAMPLE, 443), 0, 7, NOW).state is State.INSPECT


def test_without_l7_rules_tls_flows_stay_pending_at_l4() -> None:
    d = decider(ALLOW_ONLY)
    learn(d, "example.com", EXAMPLE)
    assert d.decide(syn(EXAMPLE, 443), 0, 7, NOW).state is State.PENDING


def test_a_clienthello_read_at_l4_never_sends_its_flow_to_l7() -> None:
    # A flow admitted pending at L4 whose ClientHello then names a host policy inspects
    # (the plan's summary says nothing goes to L7, so the SYN stayed at L4): refused,
    # and the record says why. A guard: compiled plans do not get here.
    d = decider()
    d.plan.sends_to_l7 = False
    learn(d, "api.openai.com", OPENAI)
    assert d.decide(syn(OPENAI, 443), 0, 7, NOW).state is State.PENDING
    v = d.decide(segment(OPENAI, 443, client_hello("api.openai.com"), 1001), PENDING, 7,
                 NOW + 0.01)
    assert v.state is State.DENY
    assert "cannot move to the L7 engine" in v.event().fields["reason"]


def test_udp_flows_to_inspect_are_refused() -> None:
    v = decider().decide(bytes(IP(src=AGENT, dst=EXAMPLE) / UDP(sport=5000, dport=53)
                               / b"x"), 0, 7, NOW)
    assert v.state is State.DENY
    assert "inspects TCP only" in v.event().fields["reason"]


def test_without_the_l7_engine_inspect_is_refused() -> None:
    d = decider(l7=False)
    learn(d, "api.openai.com", OPENAI)
    v = d.decide(syn(OPENAI, 443), 0, 7, NOW)
    assert v.state is State.DENY
    assert "L7 engine is not running" in v.event().fields["reason"]
