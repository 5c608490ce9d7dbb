"""Whatever the queue hands it, the decider answers: a verdict for every packet, never an
exception. Random and mutated packets, with every prior state the ruleset can put in a
mark, through a decider that has learnt names and holds pending flows."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR  # type: ignore[import-untyped]
from scapy.layers.inet import IP, TCP, UDP  # type: ignore[import-untyped]

from gatewayd.netfilter.marks import State
from gatewayd.verdict.verdicts import FlowVerdict

from .conftest import MARKS, NOW
from .test_decide_names import (
    AGENT,
    EXAMPLE,
    OPENAI,
    RESOLVER,
    client_hello,
    decider,
    learn,
    segment,
    syn,
)

PRIORS = [0, MARKS.value(State.PENDING), MARKS.value(State.ALLOW), MARKS.value(State.DENY)]
SEEDS = [
    syn(OPENAI, 443),
    segment(OPENAI, 443, client_hello("api.openai.com"), 1001),
    bytes(IP(src=AGENT, dst=RESOLVER) / UDP(sport=3333, dport=53)
          / DNS(id=1, rd=1, qd=DNSQR(qname="pastebin.com"))),
    bytes(IP(src=RESOLVER, dst=AGENT) / UDP(sport=53, dport=3333)
          / DNS(id=1, qr=1, qd=DNSQR(qname="x.example"),
                an=DNSRR(rrname="x.example", type="A", rdata="127.0.0.1"))),
    bytes(IP(src=RESOLVER, dst=AGENT) / TCP(sport=53, dport=4444, flags="PA", seq=7)
          / b"\x00\x10garbage-garbage!"),
    bytes(IP(src=AGENT, dst=EXAMPLE) / UDP(sport=5555, dport=443) / (b"\xc0" + b"\x00" * 60)),
]

D = decider(quic="sni")
learn(D, "api.openai.com", OPENAI)
D.decide(syn(OPENAI, 443), 0, 7, NOW)  # a pending flow to feed


def check(verdict: FlowVerdict) -> None:
    assert isinstance(verdict, FlowVerdict)
    if not verdict.drop:
        assert MARKS.is_stamped(verdict.mark)
    if not verdict.observed and not verdict.repeat:
        verdict.event()  # the record can always be written


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200), prior=st.sampled_from(PRIORS),
       indev=st.sampled_from([7, 9]))
def test_random_bytes_always_get_a_verdict(data: bytes, prior: int, indev: int) -> None:
    check(D.decide(data, prior, indev, NOW))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), flips=st.lists(st.tuples(st.integers(0, 2000),
                                                                st.integers(0, 255)),
                                                      max_size=6),
       cut=st.integers(0, 2000), prior=st.sampled_from(PRIORS), indev=st.sampled_from([7, 9]))
def test_mutated_packets_always_get_a_verdict(seed: bytes, flips: list[tuple[int, int]],
                                              cut: int, prior: int, indev: int) -> None:
    data = bytearray(seed)
    for at, value in flips:
        if data:
            data[at % len(data)] = value
    check(D.decide(bytes(data[:max(cut, 20)]), prior, indev, NOW))
