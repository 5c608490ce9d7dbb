"""parse_packet against scapy's dissection, hostile bytes, and its declared error only."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    Jumbo,
)
from scapy.layers.ipsec import AH
from scapy.packet import Raw

from gatewayd.errors import ParseError
from gatewayd.packets import MAX_EXTENSION_HEADERS, Packet, parse_packet

from .corpus import AGENT4, AGENT6, SERVER4, SERVER6, SYN_OPTIONS, dissect, valid_corpus
from .strategies import Built, ip_headed_bytes, mutated_packets, packets

CORPUS = valid_corpus()
FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_refuse(data: bytes) -> Packet | None:
    """The fuzz invariant: a Packet that is consistent with ``data``, or ParseError."""
    try:
        packet = parse_packet(data)
    except ParseError as err:
        event(f"refused: {str(err).split(' ')[0]}")
        return None
    event(f"parsed IPv{packet.version}, fragment {packet.fragment}")
    assert_consistent(packet, data)
    return packet


def assert_consistent(packet: Packet, data: bytes) -> None:
    size = 4 if packet.version == 4 else 16
    assert len(packet.src) == len(packet.dst) == size
    if packet.version == 4:
        assert (packet.src, packet.dst) == (data[12:16], data[16:20])
        assert packet.header_len == (data[0] & 0x0F) * 4
    else:
        assert (packet.src, packet.dst) == (data[8:24], data[24:40])
        assert packet.header_len >= 40
    assert packet.header_len <= packet.payload_offset <= len(data) <= packet.total_len
    assert 0 <= packet.protocol <= 255
    assert 0 <= packet.tcp_flags < 0x200
    if packet.fragment == "later" or packet.protocol not in (6, 17):
        assert (packet.sport, packet.dport, packet.tcp_flags, packet.seq, packet.ack) == (
            0,
            0,
            0,
            0,
            0,
        )
        assert packet.payload_offset == packet.header_len
    # Cut anywhere: the same packet while the headers are whole, ParseError before.
    assert parse_packet(data[: packet.payload_offset]) == packet
    if packet.payload_offset:
        with pytest.raises(ParseError):
            parse_packet(data[: packet.payload_offset - 1])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_parses_as_scapy_dissects_it(name: str) -> None:
    data = CORPUS[name]
    assert dict(parse_packet(data)._asdict()) == dissect(data)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_cut_at_every_length(name: str) -> None:
    data = CORPUS[name]
    whole = parse_packet(data)
    for length in range(len(data) + 1):
        if length >= whole.payload_offset:
            assert parse_packet(data[:length]) == whole, length
        else:
            with pytest.raises(ParseError):
                parse_packet(data[:length])


def test_corpus_covers_each_case() -> None:
    parsed = [parse_packet(data) for data in CORPUS.values()]
    assert {packet.fragment for packet in parsed} == {"none", "first", "later"}
    assert {(packet.version, packet.protocol) for packet in parsed} >= {
        (4, 6),
        (6, 6),
        (4, 17),
        (6, 17),
        (4, 51),
        (6, 50),
        (6, 59),
        (4, 1),
        (6, 58),
    }
    chain = parse_packet(CORPUS["ipv6-full-chain"])
    assert (chain.protocol, chain.fragment, chain.sport) == (17, "first", 1)


def test_cut_payload_keeps_the_declared_length() -> None:
    data = CORPUS["tcp-data-v4"]
    packet = parse_packet(data[:60])
    assert packet.total_len == len(data) == 140
    assert packet.payload_offset == 40


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


_TCP4 = bytes(IP(src=AGENT4, dst=SERVER4) / TCP(sport=1, dport=2))
_SYN4 = bytes(IP(src=AGENT4, dst=SERVER4) / TCP(options=SYN_OPTIONS))
_UDP4 = bytes(IP(src=AGENT4, dst=SERVER4) / UDP(sport=1, dport=2) / Raw(b"abcd"))
_TCP6 = bytes(IPv6(src=AGENT6, dst=SERVER6) / TCP())


def _destination_chain(count: int) -> bytes:
    """An IPv6 TCP packet behind ``count`` destination-options headers."""
    stack = IPv6(src=AGENT6, dst=SERVER6)
    for _ in range(count):
        stack = stack / IPv6ExtHdrDestOpt()
    return bytes(stack / TCP(dport=80))


INVALID = {
    "empty": (b"", "empty packet"),
    "version 5": (b"\x55" + bytes(39), "IP version 5"),
    "version 0": (bytes(40), "IP version 0"),
    "ipv4 header cut": (_TCP4[:19], "IPv4 header cut short"),
    "ipv4 IHL 4": (_patch(_TCP4, 0, b"\x44"), "header length 16 below 20"),
    "ipv4 IHL beyond the bytes": (_patch(_TCP4, 0, b"\x4f")[:40], "IPv4 options cut short"),
    "ipv4 total length below IHL": (_patch(_TCP4, 2, b"\x00\x13"), "total length 19 below"),
    "ipv4 trailing byte": (_TCP4 + b"\x00", "longer than its IPv4 total length"),
    "tcp header cut": (_TCP4[:39], "TCP header cut short"),
    "tcp header absent": (_patch(_TCP4, 2, b"\x00\x14")[:20], "TCP header cut short"),
    "tcp data offset 4": (_patch(_TCP4, 32, b"\x40"), "TCP data offset 16 below 20"),
    "tcp options cut": (_SYN4[:42], "TCP options cut short"),
    "udp header cut": (_UDP4[:27], "UDP header cut short"),
    "udp length 7": (_patch(_UDP4, 24, b"\x00\x07"), "UDP length 7 below 8"),
    "udp length beyond packet": (_patch(_UDP4, 24, b"\x00\x0d"), "UDP length beyond"),
    "tiny first fragment": (
        bytes(IP(src=AGENT4, dst=SERVER4, flags="MF", proto=6) / Raw(bytes(8))),
        "TCP header cut short",
    ),
    "ipv6 header cut": (_TCP6[:39], "IPv6 header cut short"),
    "ipv6 trailing byte": (_TCP6 + b"\x00", "longer than its IPv6 payload length"),
    "ipv6 jumbogram": (
        bytes(IPv6(plen=0) / IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=68)]) / TCP()),
        "longer than its IPv6 payload length",
    ),
    "hop-by-hop not first": (
        bytes(IPv6() / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / TCP()),
        "hop-by-hop options not right after",
    ),
    "two fragment headers": (
        bytes(IPv6() / IPv6ExtHdrFragment(nh=44) / IPv6ExtHdrFragment(nh=6) / TCP()),
        "fragment header repeated",
    ),
    "AH shorter than its fixed fields": (
        bytes(IPv6() / AH(nh=6, payloadlen=0, icv=b"") / TCP()),
        "shorter than its fixed fields",
    ),
    "extension header cut": (
        bytes(IPv6(nh=60, plen=1) / Raw(b"\x06")),
        "IPv6 extension header cut short",
    ),
    "extension header length beyond": (
        bytes(IPv6(nh=60, plen=8) / Raw(b"\x06\x05" + bytes(6))),
        "IPv6 extension header cut short",
    ),
    "fragment header cut": (
        bytes(IPv6(nh=44, plen=7) / Raw(bytes(7))),
        "IPv6 fragment header cut short",
    ),
    "too many extension headers": (
        _destination_chain(MAX_EXTENSION_HEADERS + 1),
        f"more than {MAX_EXTENSION_HEADERS} IPv6 extension headers",
    ),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_packets_are_refused_with_a_reason(name: str) -> None:
    data, reason = INVALID[name]
    with pytest.raises(ParseError, match=reason):
        parse_packet(data)


def test_extension_headers_up_to_the_bound() -> None:
    packet = parse_packet(_destination_chain(MAX_EXTENSION_HEADERS))
    assert (packet.protocol, packet.dport) == (6, 80)
    assert packet.header_len == 40 + 8 * MAX_EXTENSION_HEADERS


def test_extension_header_bound_is_a_parameter() -> None:
    data = _destination_chain(3)
    assert parse_packet(data, max_extension_headers=3).protocol == 6
    with pytest.raises(ParseError, match="more than 2 IPv6 extension headers"):
        parse_packet(data, max_extension_headers=2)
    assert parse_packet(_TCP6, max_extension_headers=0).protocol == 6


def test_first_fragment_udp_length_covers_the_whole_datagram() -> None:
    data = CORPUS["fragment-first-v4"]
    assert int.from_bytes(data[24:26], "big") > len(data) - 20
    assert parse_packet(data).sport == 40001


@given(packets())
@FUZZ
def test_random_fields_parse_to_what_scapy_set(built: Built) -> None:
    packet = parse_packet(built.data)
    assert dict(packet._asdict()) == built.expected
    assert_consistent(packet, built.data)


@given(st.binary(max_size=200))
@FUZZ
def test_random_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@given(ip_headed_bytes())
@FUZZ
def test_bytes_claiming_ip_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@given(mutated_packets())
@FUZZ
def test_mutated_packets_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)
