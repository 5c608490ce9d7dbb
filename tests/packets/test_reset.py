"""tcp_reset_for: a RST toward the agent that its TCP accepts, with checksums scapy agrees on."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.packet import Raw

from gatewayd.errors import ParseError
from gatewayd.packets import TCP_ACK, TCP_RST, checksum, parse_packet, tcp_reset_for

from .corpus import AGENT4, AGENT6, SERVER4, SERVER6
from .strategies import Built, mutated_packets, packets

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_reset_of(data: bytes, out: bytes) -> None:
    """``out`` is the RST ``tcp_reset_for`` promises for the TCP packet ``data``."""
    given_packet = parse_packet(data)
    reset = parse_packet(out)
    ack_flag = given_packet.tcp_flags & TCP_ACK
    assert reset.tcp_flags == TCP_RST | ack_flag
    assert (reset.version, reset.src, reset.sport, reset.dst, reset.dport) == (
        given_packet.version,
        given_packet.src,
        given_packet.sport,
        given_packet.dst,
        given_packet.dport,
    )
    assert reset.seq == given_packet.seq
    assert reset.ack == (given_packet.ack if ack_flag else 0)
    ip_len = 20 if reset.version == 4 else 40
    assert (reset.header_len, reset.payload_offset, reset.total_len) == (
        ip_len,
        ip_len + 20,
        len(out),
    )
    assert reset.fragment == "none"
    if reset.version == 4:
        layer = IP(out)
        assert checksum(out[:20]) == 0
        assert (layer.ihl, layer.id, layer.ttl) == (5, int.from_bytes(data[4:6]), data[8])
        assert (int(layer.flags), layer.frag, layer.tos) == (2, 0, data[1] & 0xFC)
        rebuilt = IP(out)
        del rebuilt.chksum
    else:
        layer = IPv6(out)
        original = IPv6(data)
        assert (layer.nh, layer.plen, layer.hlim) == (6, 20, original.hlim)
        assert (layer.tc, layer.fl) == (original.tc & 0xFC, original.fl)
        rebuilt = IPv6(out)
    tcp = layer[TCP]
    assert (tcp.dataofs, tcp.window, tcp.urgptr, tcp.options) == (5, 0, 0, [])
    assert not tcp.payload
    del rebuilt[TCP].chksum
    assert bytes(rebuilt) == out  # scapy recomputes both checksums to the same values


@given(packets(protocols=("tcp",)))
@FUZZ
def test_reset_of_random_tcp_packets(built: Built) -> None:
    out = tcp_reset_for(built.data)
    assert_reset_of(built.data, out)
    cut = parse_packet(built.data).payload_offset
    assert tcp_reset_for(built.data[:cut]) == out  # a payload cut by the copy range is no matter


def test_reset_of_server_data_v4() -> None:
    data = bytes(
        IP(src=SERVER4, dst=AGENT4, id=4242, ttl=57, tos=0xB9, options=[b"\x01\x01\x01\x01"])
        / TCP(sport=443, dport=40000, seq=7_000_001, ack=900, flags="PA", window=500)
        / Raw(b"response body")
    )
    out = tcp_reset_for(data)
    assert_reset_of(data, out)
    assert len(out) == 40
    assert IP(out)[TCP].flags == "RA"


def test_reset_of_server_data_v6_drops_extension_headers() -> None:
    data = bytes(
        IPv6(src=SERVER6, dst=AGENT6, tc=0x2B, fl=0x12345, hlim=50)
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(m=1, id=3)
        / TCP(sport=443, dport=40000, seq=1, ack=2, flags="A", options=[("NOP", None)] * 4)
        / Raw(b"x" * 30)
    )
    out = tcp_reset_for(data)
    assert_reset_of(data, out)
    assert len(out) == 60
    assert out[6] == 6


def test_reset_of_a_syn_ack_acknowledges_the_agents_syn() -> None:
    # The agent sent SYN with ISS 1000 and sits in SYN-SENT: only a RST whose ACK is
    # ISS + 1 (SND.UNA < SEG.ACK <= SND.NXT) is acceptable there.
    data = bytes(
        IP(src=SERVER4, dst=AGENT4) / TCP(sport=443, dport=40000, seq=5, ack=1001, flags="SA")
    )
    reset = parse_packet(tcp_reset_for(data))
    assert reset.tcp_flags == TCP_RST | TCP_ACK
    assert reset.ack == 1001


def test_reset_in_a_synchronized_state_lands_on_rcv_nxt() -> None:
    # The agent has read everything up to 5_000 from the server: its RCV.NXT is 5_000, and
    # the next reply (intercepted) starts there. RFC 5961 resets only on SEG.SEQ == RCV.NXT.
    rcv_nxt = 5_000
    data = bytes(
        IPv6(src=SERVER6, dst=AGENT6)
        / TCP(sport=443, dport=40000, seq=rcv_nxt, ack=77, flags="PA")
        / Raw(b"more")
    )
    assert parse_packet(tcp_reset_for(data)).seq == rcv_nxt


def test_reset_without_ack_on_the_input() -> None:
    data = bytes(
        IP(src=SERVER4, dst=AGENT4) / TCP(sport=443, dport=40000, seq=9, ack=123, flags="S")
    )
    reset = parse_packet(tcp_reset_for(data))
    assert (reset.tcp_flags, reset.seq, reset.ack) == (TCP_RST, 9, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(IP(src=SERVER4, dst=AGENT4) / UDP(sport=53, dport=4000)), "not a TCP packet"),
        (bytes(IPv6(src=SERVER6, dst=AGENT6, nh=59)), "not a TCP packet"),
        (bytes(IP(src=SERVER4, dst=AGENT4, frag=10, proto=6) / Raw(bytes(40))), "later fragment"),
        (bytes(IP(src=SERVER4, dst=AGENT4) / TCP())[:30], "TCP header cut short"),
        (b"", "empty packet"),
    ],
)
def test_reset_refuses_what_it_cannot_rewrite(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        tcp_reset_for(data)


@given(mutated_packets())
@FUZZ
def test_reset_of_mutated_packets_or_parse_error(data: bytes) -> None:
    try:
        out = tcp_reset_for(data)
    except ParseError:
        return
    assert_reset_of(data, out)
