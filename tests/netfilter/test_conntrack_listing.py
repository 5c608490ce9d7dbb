from __future__ import annotations

import ipaddress

import pytest

from gatewayd.netfilter import Marks, State
from gatewayd.netfilter.conntrack_listing import parse_listing
from gatewayd.netfilter.errors import NetfilterError

MARKS = Marks(20)
ALLOW = MARKS.value(State.ALLOW) | 0x7  # other owners' bits too

LISTING = f"""\
ipv4     2 tcp      6 431999 ESTABLISHED src=10.77.0.11 dst=10.78.0.10 sport=40000 dport=443 \
src=10.78.0.10 dst=10.77.0.11 sport=443 dport=40000 [ASSURED] mark={ALLOW} use=1
ipv4     2 udp      17 29 src=10.77.0.11 dst=10.78.0.53 sport=5353 dport=53 [UNREPLIED] \
src=10.78.0.53 dst=10.77.0.11 sport=53 dport=5353 mark=0 use=1
ipv6     10 tcp      6 119 TIME_WAIT src=fd77::11 dst=fd78::10 sport=41000 dport=80 \
src=fd78::10 dst=fd77::11 sport=80 dport=41000 [ASSURED] mark={MARKS.value(State.DENY)} use=1
ipv4     2 icmp     1 29 src=10.77.0.11 dst=10.78.0.10 type=8 code=0 id=77 \
src=10.78.0.10 dst=10.77.0.11 type=0 code=0 id=77 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
"""


def test_parse_listing_reads_original_tuples_and_states() -> None:
    flows = parse_listing(LISTING, MARKS)
    assert [(f.family, f.protocol, str(f.src), f.sport, str(f.dst), f.dport, f.state)
            for f in flows] == [
        (4, 6, "10.77.0.11", 40000, "10.78.0.10", 443, State.ALLOW),
        (4, 17, "10.77.0.11", 5353, "10.78.0.53", 53, State.UNDECIDED),
        (6, 6, "fd77::11", 41000, "fd78::10", 80, State.DENY),
        (4, 1, "10.77.0.11", None, "10.78.0.10", None, State.UNDECIDED),
    ]
    assert flows[0].mark == ALLOW
    assert flows[3].icmp == (8, 0, 77)
    assert flows[2].src == ipaddress.ip_address("fd77::11")


def test_parse_listing_skips_noise_and_refuses_broken_flow_lines() -> None:
    assert parse_listing("\n\nconntrack v1.4.7: 0 flow entries have been shown.\n", MARKS) == []
    with pytest.raises(NetfilterError, match="unreadable conntrack line"):
        parse_listing("ipv4 2 tcp 6 10 ESTABLISHED dst=1.2.3.4 sport=1 dport=2 mark=0\n", MARKS)
