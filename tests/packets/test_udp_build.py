"""udp_reply_for and with_udp_payload: packets scapy reads back as promised, or ParseError."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import (
    ICMP,
    IP,
    TCP,
    UDP,
    IPOption_LSRR,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_RR,
    IPOption_SSRR,
    in4_chksum,
)
from scapy.layers.inet6 import (
    HAO,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
    RouterAlert,
    in6_chksum,
)
from scapy.layers.ipsec import AH
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from gatewayd.errors import ParseError
from gatewayd.packets import (
    PROTO_UDP,
    build_negative_answer,
    parse_packet,
    udp_reply_for,
    with_udp_payload,
)

from .corpus import (
    AGENT4,
    AGENT6,
    EXTENSION_LAYERS,
    NEXT_HEADER,
    SERVER4,
    SERVER6,
    ah,
    valid_corpus,
)
from .strategies import Built, ip_headed_bytes, mutated_packets, packets

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CORPUS = valid_corpus()
MAX_PACKET = 65535
LAYER_BY_NUMBER = {number: layer for layer, number in NEXT_HEADER.items()}

_FILLER = bytes(range(256)) * 256


def filler(size: int) -> bytes:
    """``size`` bytes of a non-zero pattern (cheaper for hypothesis to draw than random ones)."""
    return _FILLER[:size]


PAYLOADS = st.one_of(
    st.binary(max_size=600),
    st.integers(0, MAX_PACKET).map(filler),
    st.integers(MAX_PACKET - 200, MAX_PACKET).map(filler),  # around the size bound
)


def udp_query(version: int, *, sport: int = 40000, dport: int = 53, payload: bytes = b"q") -> bytes:
    """A UDP packet from the agent to the server, no options or extension headers."""
    if version == 4:
        return bytes(IP(src=AGENT4, dst=SERVER4) / UDP(sport=sport, dport=dport) / Raw(payload))
    return bytes(IPv6(src=AGENT6, dst=SERVER6) / UDP(sport=sport, dport=dport) / Raw(payload))


# -- independent readings, by scapy ------------------------------------------------------


def address(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def scapy_view(data: bytes) -> ScapyPacket:
    """scapy's reading of the UDP packet ``data``, its UDP payload kept as Raw bytes.

    scapy would guess a layer from the ports (DNS on 53, which may not rebuild byte for
    byte) and stops dissecting after AH; the UDP layer is put back explicitly.
    """
    header_len = parse_packet(data).header_len
    packet = IP(data) if data[0] >> 4 == 4 else IPv6(data)
    layer = packet
    while True:
        if isinstance(layer, AH) and layer.nh != PROTO_UDP and isinstance(layer.payload, Raw):
            rest = LAYER_BY_NUMBER[layer.nh](layer.payload.load)
            layer.remove_payload()
            layer.add_payload(rest)
        if not isinstance(layer.payload, EXTENSION_LAYERS):
            break
        layer = layer.payload
    layer.remove_payload()
    udp = UDP(data[header_len : header_len + 8]) / Raw(data[header_len + 8 :])
    layer.add_payload(udp)
    return packet


def scapy_sums_udp(packet: ScapyPacket) -> bool:
    """Whether scapy computes the UDP checksum of ``packet`` (not right under AH: it leaves 0)."""
    return not isinstance(packet[UDP].underlayer, AH)


def scapy_udp_checksum(data: bytes) -> int:
    """The UDP checksum scapy computes for ``data`` over its IP header's addresses."""
    packet = parse_packet(data)
    segment = data[packet.header_len : packet.header_len + 6] + bytes(2)
    segment += data[packet.header_len + 8 :]
    src, dst = address(packet.src), address(packet.dst)
    if packet.version == 4:
        value = in4_chksum(PROTO_UDP, IP(src=src, dst=dst), segment)
    else:
        value = in6_chksum(PROTO_UDP, (IPv6(src=src, dst=dst) / UDP())[UDP], segment)
    return value or 0xFFFF  # RFC 768, as scapy's UDP.post_build sends a computed 0


def assert_sums_correct(out: bytes) -> None:
    """Lengths and checksums of ``out`` as scapy computes them, whatever its headers hold."""
    packet = parse_packet(out)
    h = packet.header_len
    assert packet.protocol == PROTO_UDP
    assert packet.fragment == "none"
    assert packet.total_len == len(out) <= MAX_PACKET
    assert int.from_bytes(out[h + 4 : h + 6], "big") == len(out) - h
    assert int.from_bytes(out[h + 6 : h + 8], "big") == scapy_udp_checksum(out)
    if packet.version == 4:
        assert scapy_checksum(out[:h]) == 0


def assert_scapy_rebuilds(out: bytes) -> None:
    """Deleting every length and checksum of ``out`` and letting scapy refill them gives ``out``."""
    rebuilt = scapy_view(out)
    udp = rebuilt[UDP]
    if isinstance(rebuilt, IP):
        del rebuilt.len, rebuilt.chksum
    else:
        del rebuilt.plen
    del udp.len
    if scapy_sums_udp(rebuilt):
        del udp.chksum
    assert bytes(rebuilt) == out


def scapy_reply(query: bytes, payload: bytes) -> bytes:
    """The reply scapy builds from its own reading of ``query``."""
    view = scapy_view(query)
    udp = view[UDP]
    ports = UDP(sport=udp.dport, dport=udp.sport)
    if isinstance(view, IP):
        ip = IP(src=view.dst, dst=view.src, id=view.id, flags="DF", ttl=64, tos=0)
        return bytes(ip / ports / Raw(payload))
    return bytes(IPv6(src=view.dst, dst=view.src, tc=0, fl=0, hlim=64) / ports / Raw(payload))


def assert_reply_of(query: bytes, payload: bytes, out: bytes) -> None:
    """``out`` is the reply ``udp_reply_for`` promises for ``query``."""
    asked = parse_packet(query)
    reply = parse_packet(out)
    assert (reply.version, reply.src, reply.sport, reply.dst, reply.dport) == (
        asked.version,
        asked.dst,
        asked.dport,
        asked.src,
        asked.sport,
    )
    assert reply.header_len == (20 if reply.version == 4 else 40)
    assert out[reply.payload_offset :] == payload
    assert_sums_correct(out)
    if reply.version == 4:
        layer = IP(out)
        assert (layer.ihl, layer.tos, layer.ttl, layer.proto) == (5, 0, 64, PROTO_UDP)
        assert (int(layer.flags), layer.frag, layer.id) == (2, 0, int.from_bytes(query[4:6]))
    else:
        layer6 = IPv6(out)
        assert (layer6.tc, layer6.fl, layer6.hlim, layer6.nh) == (0, 0, 64, PROTO_UDP)
    assert out == scapy_reply(query, payload)


def assert_payload_replaced(data: bytes, payload: bytes, out: bytes, *, rebuild: bool) -> None:
    """``out`` is ``data`` with its UDP payload replaced, as ``with_udp_payload`` promises."""
    given_packet = parse_packet(data)
    h = given_packet.header_len
    edited = parse_packet(out)
    assert edited._replace(total_len=0) == given_packet._replace(total_len=0)
    assert out[h:] == data[h : h + 4] + out[h + 4 : h + 8] + payload
    if edited.version == 4:  # all but the total length and header checksum kept
        assert out[:2] + out[4:10] + out[12:h] == data[:2] + data[4:10] + data[12:h]
    else:  # all but the payload length kept, extension headers included
        assert out[:4] + out[6:h] == data[:4] + data[6:h]
    assert_sums_correct(out)
    if rebuild:
        assert_scapy_rebuilds(out)


def refused(call: Callable[[], object]) -> str:
    """The reason of the ParseError ``call`` raises."""
    with pytest.raises(ParseError) as info:
        call()
    return str(info.value)


# -- random packets ------------------------------------------------------------------------


@given(packets(protocols=("udp",)), PAYLOADS)
@FUZZ
def test_random_udp_packets(built: Built, payload: bytes) -> None:
    data = built.data
    header_len = built.expected["header_len"]
    if built.expected["fragment"] != "none":
        event("fragment refused")
        assert "fragment" in refused(lambda: udp_reply_for(data, payload))
        assert "fragment" in refused(lambda: with_udp_payload(data, payload))
        return
    reply_len = (20 if built.expected["version"] == 4 else 40) + 8 + len(payload)
    if reply_len > MAX_PACKET:
        event("reply too large")
        assert "exceeds" in refused(lambda: udp_reply_for(data, payload))
    else:
        out = udp_reply_for(data, payload)
        assert_reply_of(data, payload, out)
        cut = built.expected["payload_offset"]
        assert udp_reply_for(data[:cut], payload) == out  # the copy range does not matter
    if header_len + 8 + len(payload) > MAX_PACKET:
        event("edit too large")
        assert "exceeds" in refused(lambda: with_udp_payload(data, payload))
        return
    edited = with_udp_payload(data, payload)
    assert_payload_replaced(data, payload, edited, rebuild=True)
    if scapy_sums_udp(scapy_view(data)):  # else the original's checksum is 0
        assert with_udp_payload(edited, data[built.expected["payload_offset"] :]) == data


# -- named cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("size", [0, 1, 2, 3, 511, 1232, 1473, 9000, 40000])
def test_payload_sizes(version: int, size: int) -> None:
    query = udp_query(version)
    payload = filler(size)
    assert_reply_of(query, payload, udp_reply_for(query, payload))
    answer = udp_query(version, sport=53, dport=40000)
    assert_payload_replaced(answer, payload, with_udp_payload(answer, payload), rebuild=True)


@pytest.mark.parametrize(("version", "ip_len"), [(4, 20), (6, 40)])
def test_size_bound(version: int, ip_len: int) -> None:
    largest = MAX_PACKET - ip_len - 8
    query = udp_query(version)
    out = udp_reply_for(query, filler(largest))
    assert len(out) == MAX_PACKET
    assert_reply_of(query, filler(largest), out)
    edited = with_udp_payload(query, filler(largest))
    assert len(edited) == MAX_PACKET
    assert_payload_replaced(query, filler(largest), edited, rebuild=True)
    assert "exceeds 65535" in refused(lambda: udp_reply_for(query, filler(largest + 1)))
    assert "exceeds 65535" in refused(lambda: with_udp_payload(query, filler(largest + 1)))


def test_size_bound_counts_ipv4_options() -> None:
    options = [IPOption_Router_Alert(), IPOption_RR(routers=["192.0.2.1"])]
    data = bytes(IP(src=SERVER4, dst=AGENT4, options=options) / UDP(sport=53, dport=40000))
    header_len = parse_packet(data).header_len
    assert header_len == 32
    largest = MAX_PACKET - header_len - 8
    edited = with_udp_payload(data, filler(largest))
    assert_payload_replaced(data, filler(largest), edited, rebuild=True)
    assert "exceeds" in refused(lambda: with_udp_payload(data, filler(largest + 1)))
    # the reply drops the options, so it has room for them
    assert_reply_of(data, filler(largest + 12), udp_reply_for(data, filler(largest + 12)))


def test_reply_to_a_dns_query_v4_with_options() -> None:
    dns_query = DNS(id=0x4242, rd=1, qd=DNSQR(qname="blocked.example.", qtype="A"))
    query = bytes(
        IP(src=AGENT4, dst=SERVER4, id=777, ttl=3, tos=0xB8, options=[IPOption_Router_Alert()])
        / UDP(sport=41000, dport=53)
        / dns_query
    )
    answer = build_negative_answer(
        query[parse_packet(query).payload_offset :], rcode="NXDOMAIN", soa_name="example."
    )
    out = udp_reply_for(query, answer)
    assert_reply_of(query, answer, out)
    reply = IP(out)
    assert (reply.src, reply.dst, reply[UDP].sport, reply[UDP].dport) == (
        SERVER4,
        AGENT4,
        53,
        41000,
    )
    assert (reply.id, reply.ttl, reply.tos, reply.ihl) == (777, 64, 0, 5)
    dns = reply[DNS]
    assert (dns.id, dns.qr, dns.rcode, dns.qd[0].qname) == (0x4242, 1, 3, b"blocked.example.")


def test_reply_to_a_dns_query_v6_drops_extension_headers() -> None:
    query = bytes(
        IPv6(src=AGENT6, dst=SERVER6, tc=0x2B, fl=0x12345, hlim=7)
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(10))])
        / IPv6ExtHdrRouting(addresses=["2001:db8::1"], segleft=0)
        / IPv6ExtHdrFragment(id=8)  # atomic: a whole datagram
        / UDP(sport=41000, dport=53)
        / DNS(id=7, qd=DNSQR(qname="blocked.example.", qtype="AAAA"))
    )
    answer = build_negative_answer(query[parse_packet(query).payload_offset :], rcode="REFUSED")
    out = udp_reply_for(query, answer)
    assert_reply_of(query, answer, out)
    reply = IPv6(out)
    assert (reply.src, reply.dst, reply.nh, reply.plen) == (SERVER6, AGENT6, 17, 8 + len(answer))
    assert (reply[DNS].id, reply[DNS].rcode) == (7, 5)


IPV4_WITH_OPTIONS = IP(
    src=SERVER4,
    dst=AGENT4,
    id=99,
    ttl=50,
    tos=0x10,
    flags="DF",
    options=[IPOption_NOP(), IPOption_Router_Alert(), IPOption_RR(routers=["192.0.2.9"])],
)
IPV6_CHAINS = {
    "hop-by-hop": [IPv6ExtHdrHopByHop(options=[RouterAlert()])],
    "destination": [IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(5))])],
    "routing-done": [IPv6ExtHdrRouting(addresses=["2001:db8::1", "2001:db8::2"], segleft=0)],
    "atomic-fragment": [IPv6ExtHdrFragment(id=5)],
    "ah": [ah(UDP)],
    "all": [
        IPv6ExtHdrHopByHop(),
        IPv6ExtHdrDestOpt(),
        IPv6ExtHdrRouting(addresses=[SERVER6], segleft=0),
        IPv6ExtHdrFragment(id=9),
        IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(3))]),
    ],
}


def ipv6_with(chain: list[ScapyPacket], upper: ScapyPacket) -> bytes:
    stack = IPv6(src=SERVER6, dst=AGENT6, tc=0x2B, fl=0xABCDE, hlim=50)
    for layer in chain:
        stack = stack / layer.copy()
    return bytes(stack / upper)


@pytest.mark.parametrize("payload", [b"", b"x", filler(1000)])
def test_edit_keeps_ipv4_options(payload: bytes) -> None:
    data = bytes(IPV4_WITH_OPTIONS / UDP(sport=53, dport=40000) / Raw(b"original answer"))
    out = with_udp_payload(data, payload)
    assert_payload_replaced(data, payload, out, rebuild=True)
    layer = IP(out)
    assert (layer.ihl, layer.id, layer.ttl, layer.tos, int(layer.flags)) == (8, 99, 50, 0x10, 2)
    assert layer.options == IP(data).options
    assert_reply_of(data, payload, udp_reply_for(data, payload))  # options dropped there


@pytest.mark.parametrize("chain", IPV6_CHAINS.values(), ids=IPV6_CHAINS.keys())
@pytest.mark.parametrize("payload", [b"", b"x", filler(1000)])
def test_edit_keeps_ipv6_extension_headers(chain: list[ScapyPacket], payload: bytes) -> None:
    data = ipv6_with(chain, UDP(sport=53, dport=40000) / Raw(b"original answer"))
    out = with_udp_payload(data, payload)
    assert_payload_replaced(data, payload, out, rebuild=True)
    assert_reply_of(data, payload, udp_reply_for(data, payload))  # headers dropped there


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("edit", [False, True])
def test_computed_zero_checksum_is_sent_as_ffff(version: int, edit: bool) -> None:
    build = with_udp_payload if edit else udp_reply_for
    data = udp_query(version)
    probe = build(data, b"\x00\x00")
    # a payload word equal to the probe's checksum brings the sum to 0xFFFF: checksum 0
    out = build(data, probe[-4:-2])
    assert out[-4:-2] == b"\xff\xff"
    assert_sums_correct(out)
    assert_scapy_rebuilds(out)


def test_cut_packets_are_edited_whole() -> None:
    data = udp_query(4, payload=b"a long original payload")
    cut = data[:30]  # the queue's copy range stopped inside the payload
    out = with_udp_payload(cut, b"new")
    assert out == with_udp_payload(data, b"new")
    assert_payload_replaced(data, b"new", out, rebuild=True)


def test_trailing_bytes_after_the_datagram_go_with_the_payload() -> None:
    data = bytearray(udp_query(6, payload=b"abcd"))
    data[44:46] = (10).to_bytes(2, "big")  # UDP length covers 2 of the 4 bytes after it
    out = with_udp_payload(bytes(data), b"xyz")
    assert out[48:] == b"xyz"
    assert_sums_correct(out)


# -- refusals ------------------------------------------------------------------------------

REFUSED = {
    "tcp-v4": (bytes(IP(src=AGENT4, dst=SERVER4) / TCP()), "not a UDP packet"),
    "tcp-v6": (CORPUS["tcp-syn-v6"], "not a UDP packet"),
    "icmp-v4": (bytes(IP(src=AGENT4, dst=SERVER4) / ICMP()), "not a UDP packet"),
    "icmp-v6": (CORPUS["icmp-v6"], "not a UDP packet"),
    "no-next-header": (CORPUS["ipv6-no-next-header"], "not a UDP packet"),
    "esp": (CORPUS["ipv6-esp"], "not a UDP packet"),
    "first-fragment-v4": (CORPUS["fragment-first-v4"], "first fragment"),
    "first-fragment-v6": (CORPUS["fragment-first-v6"], "first fragment"),
    "later-fragment-v4": (CORPUS["fragment-later-1-v4"], "later fragment"),
    "later-fragment-v6": (CORPUS["fragment-later-1-v6"], "later fragment"),
    "later-fragment-by-offset": (
        bytes(IP(src=AGENT4, dst=SERVER4, frag=100, proto=17) / Raw(bytes(40))),
        "later fragment",
    ),
    "fragment-chain-v6": (CORPUS["ipv6-full-chain"], "first fragment"),
    "udp-header-cut": (udp_query(4)[:25], "UDP header cut short"),
    "udp-length-short": (udp_query(6)[:44] + b"\x00\x04\x00\x00", "UDP length 4"),
    "ipv4-header-cut": (udp_query(4)[:19], "IPv4 header cut short"),
    "empty": (b"", "empty packet"),
    "not-ip": (b"\x20" + bytes(40), "IP version 2"),
}


@pytest.mark.parametrize(("data", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_refuses_what_is_not_a_whole_udp_datagram(data: bytes, reason: str) -> None:
    assert reason in refused(lambda: udp_reply_for(data, b"payload"))
    assert reason in refused(lambda: with_udp_payload(data, b"payload"))


IN_TRANSIT = {
    "lsrr": bytes(
        IP(src=AGENT4, dst="192.0.2.1", options=[IPOption_LSRR(routers=[SERVER4], pointer=4)])
        / UDP(sport=40000, dport=53)
    ),
    "ssrr-behind-nop": bytes(
        IP(
            src=AGENT4,
            dst="192.0.2.1",
            options=[IPOption_NOP(), IPOption_SSRR(routers=["192.0.2.2", SERVER4], pointer=8)],
        )
        / UDP(sport=40000, dport=53)
    ),
    "routing-segments-left": ipv6_with(
        [IPv6ExtHdrRouting(addresses=["2001:db8::1", AGENT6], segleft=1)],
        UDP(sport=53, dport=40000),
    ),
    "routing-after-destination-options": ipv6_with(
        [IPv6ExtHdrDestOpt(), IPv6ExtHdrRouting(addresses=[AGENT6], segleft=1)],
        UDP(sport=53, dport=40000),
    ),
    "home-address": ipv6_with(
        [IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8::abc")])], UDP(sport=53, dport=40000)
    ),
}


@pytest.mark.parametrize("data", IN_TRANSIT.values(), ids=IN_TRANSIT.keys())
def test_edit_refuses_checksums_over_other_addresses(data: bytes) -> None:
    assert "addresses other than" in refused(lambda: with_udp_payload(data, b"payload"))
    # A reply is sent straight back without those headers: its checksum is its own.
    assert_reply_of(data, b"payload", udp_reply_for(data, b"payload"))


def test_edit_accepts_a_completed_source_route() -> None:
    route = IPOption_LSRR(routers=["192.0.2.1", "192.0.2.2"], pointer=12)  # past the end
    data = bytes(IP(src=AGENT4, dst=SERVER4, options=[route]) / UDP(sport=40000, dport=53))
    assert_payload_replaced(data, b"payload", with_udp_payload(data, b"payload"), rebuild=False)


# -- hostile bytes -------------------------------------------------------------------------


def build_or_refuse(data: bytes, payload: bytes) -> None:
    """The fuzz invariant: the promised packets, or ParseError and nothing else."""
    try:
        out = udp_reply_for(data, payload)
    except ParseError as err:
        event(f"reply refused: {str(err).split(' ')[0]}")
    else:
        event("reply built")
        assert_reply_of(data, payload, out)
    try:
        edited = with_udp_payload(data, payload)
    except ParseError as err:
        event(f"edit refused: {str(err).split(' ')[0]}")
    else:
        event("edit built")
        assert_payload_replaced(data, payload, edited, rebuild=False)


@given(st.binary(max_size=200), st.binary(max_size=20))
@FUZZ
def test_random_bytes_build_or_raise_parse_error(data: bytes, payload: bytes) -> None:
    build_or_refuse(data, payload)


@given(ip_headed_bytes(), st.binary(max_size=20))
@FUZZ
def test_bytes_claiming_ip_build_or_raise_parse_error(data: bytes, payload: bytes) -> None:
    build_or_refuse(data, payload)


@given(mutated_packets(), st.binary(max_size=20))
@FUZZ
def test_mutated_packets_build_or_raise_parse_error(data: bytes, payload: bytes) -> None:
    build_or_refuse(data, payload)
