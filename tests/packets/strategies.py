"""Hypothesis strategies: scapy packets with random fields, and mutations of valid packets.

``packets()`` draws a TCP or UDP packet (IPv4 with random options and first-fragment bit,
or IPv6 with a random chain of extension headers) and records what ``parse_packet`` must
find in it: the fields it set, and the offsets the layers it stacked give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from scapy.layers.inet import (
    IP,
    TCP,
    UDP,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_RR,
)
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
)
from scapy.layers.ipsec import AH
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from .corpus import NEXT_HEADER, valid_corpus

PORTS = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
TCP_OPTIONS = st.lists(
    st.sampled_from(
        [
            ("MSS", 1460),
            ("WScale", 7),
            ("SAckOK", b""),
            ("Timestamp", (1, 2)),
            ("NOP", None),
        ]
    ),
    unique=True,  # at most 20 bytes: TCP options fit in 40
)


@dataclass(frozen=True)
class Built:
    """A packet's bytes and the ``Packet`` fields it must parse to."""

    data: bytes
    expected: dict[str, Any]
    extension_headers: tuple[str, ...] = ()


@st.composite
def _transport(draw: st.DrawFn, protocol: str) -> tuple[ScapyPacket, bytes, dict[str, Any]]:
    payload = draw(st.binary(max_size=64))
    sport, dport = draw(PORTS), draw(PORTS)
    if protocol == "tcp":
        seq, ack, flags = draw(U32), draw(U32), draw(st.integers(0, 0x1FF))
        layer = TCP(
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=draw(PORTS),
            options=draw(TCP_OPTIONS),
        )
        fields = {"protocol": 6, "tcp_flags": flags, "seq": seq, "ack": ack}
    else:
        layer = UDP(sport=sport, dport=dport)
        fields = {"protocol": 17, "tcp_flags": 0, "seq": 0, "ack": 0}
    fields.update(sport=sport, dport=dport)
    return layer / Raw(payload), payload, fields


@st.composite
def _ipv4(draw: st.DrawFn) -> tuple[ScapyPacket, dict[str, Any]]:
    src, dst = draw(st.ip_addresses(v=4)), draw(st.ip_addresses(v=4))
    options = draw(
        st.lists(
            st.sampled_from(["nop", "router-alert", "record-route"]).map(_ipv4_option),
            max_size=3,
        )
    )
    first_fragment = draw(st.booleans())
    flags = "MF" if first_fragment else draw(st.sampled_from(["", "DF"]))
    header = IP(
        src=str(src),
        dst=str(dst),
        tos=draw(st.integers(0, 255)),
        id=draw(PORTS),
        ttl=draw(st.integers(1, 255)),
        flags=flags,
        options=options,
    )
    fields = {
        "version": 4,
        "src": src.packed,
        "dst": dst.packed,
        "fragment": "first" if first_fragment else "none",
    }
    return header, fields


def _ipv4_option(name: str) -> ScapyPacket:
    if name == "nop":
        return IPOption_NOP()
    if name == "router-alert":
        return IPOption_Router_Alert()
    return IPOption_RR(routers=["192.0.2.1", "192.0.2.2"])


_PADDING = st.integers(0, 20).map(bytes)
_MIDDLE_HEADERS = ["destination", "routing", "ah", "fragment"]


@st.composite
def _ipv6(
    draw: st.DrawFn, transport: type[ScapyPacket]
) -> tuple[list[ScapyPacket], dict[str, Any], list[str]]:
    src, dst = draw(st.ip_addresses(v=6)), draw(st.ip_addresses(v=6))
    header = IPv6(
        src=str(src),
        dst=str(dst),
        tc=draw(st.integers(0, 255)),
        fl=draw(st.integers(0, 0xFFFFF)),
        hlim=draw(st.integers(0, 255)),
    )
    names = draw(st.lists(st.sampled_from(_MIDDLE_HEADERS), max_size=6))
    if names.count("fragment") > 1:  # one fragment header, as parse_packet requires
        names = [name for name in names if name != "fragment"] + ["fragment"]
    if draw(st.booleans()):
        names.insert(0, "hop-by-hop")
    fragment = "none"
    layers: list[ScapyPacket] = [header]
    for name in names:
        if name == "hop-by-hop":
            layers.append(IPv6ExtHdrHopByHop(options=[PadN(optdata=draw(_PADDING))]))
        elif name == "destination":
            layers.append(IPv6ExtHdrDestOpt(options=[PadN(optdata=draw(_PADDING))]))
        elif name == "routing":
            hops = draw(st.lists(st.ip_addresses(v=6).map(str), max_size=3))
            layers.append(IPv6ExtHdrRouting(addresses=hops, segleft=0))
        elif name == "ah":
            layers.append(AH(payloadlen=0, icv=bytes(draw(st.sampled_from([4, 12, 20])))))
        else:
            more = draw(st.booleans())
            fragment = "first" if more else "none"
            layers.append(IPv6ExtHdrFragment(m=int(more), id=draw(U32)))
    # Next-header values set explicitly: scapy fills them for some pairs of layers only,
    # and leaves AH's length to the caller.
    kinds = [type(layer) for layer in layers[1:]] + [transport]
    for layer, after in zip(layers, kinds, strict=True):
        layer.nh = NEXT_HEADER[after]
        if isinstance(layer, AH):
            layer.payloadlen = (12 + len(layer.icv)) // 4 - 2
    return layers, {"version": 6, "src": src.packed, "dst": dst.packed, "fragment": fragment}, names


@st.composite
def packets(draw: st.DrawFn, *, protocols: tuple[str, ...] = ("tcp", "udp")) -> Built:
    """A valid TCP or UDP packet, IPv4 or IPv6, with random fields and headers."""
    protocol = draw(st.sampled_from(protocols))
    upper, payload, fields = draw(_transport(protocol))
    names: list[str] = []
    if draw(st.booleans()):
        header, ip_fields = draw(_ipv4())
        stack = header / upper
    else:
        layers, ip_fields, names = draw(_ipv6(type(upper)))
        stack = layers[0]
        for layer in layers[1:]:
            stack = stack / layer
        stack = stack / upper
    data = bytes(stack)
    transport_len = len(bytes(stack[TCP if protocol == "tcp" else UDP]))
    fields.update(
        ip_fields,
        header_len=len(data) - transport_len,
        payload_offset=len(data) - len(payload),
        total_len=len(data),
    )
    return Built(data, fields, tuple(names))


# Built once: scapy draws random IDs while fragmenting, which must not happen in a draw.
_CORPUS = sorted(valid_corpus().values())


def valid_packets() -> st.SearchStrategy[bytes]:
    """Valid packets: the named corpus and random ones."""
    return st.one_of(st.sampled_from(_CORPUS), packets().map(lambda built: built.data))


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    """A valid packet with bytes flipped, cut, inserted or appended."""
    data = bytearray(draw(valid_packets()))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "flip", "flip", "cut", "insert", "append"]))
        if action == "flip" and data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif action == "insert":
            index = draw(st.integers(0, len(data)))
            data[index:index] = draw(st.binary(min_size=1, max_size=16))
        elif action == "append":
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def ip_headed_bytes() -> st.SearchStrategy[bytes]:
    """Random bytes behind a first byte that claims IPv4 or IPv6, to reach past the first check."""
    first = st.sampled_from([0x45, 0x46, 0x4F, 0x44, 0x60, 0x6F]).map(lambda b: bytes((b,)))
    return st.tuples(first, st.binary(max_size=120)).map(lambda parts: parts[0] + parts[1])
