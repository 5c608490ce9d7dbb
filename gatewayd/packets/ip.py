"""``parse_packet``: an IPv4 or IPv6 packet, as NFQUEUE hands it over, to a ``Packet``.

Input is a raw IP packet with no link-layer header, possibly cut at the queue's copy
range. The kernel hands over whole packets up to that range, so a packet cut short of the
headers this parser needs is malformed, not "incomplete": there are no more bytes to wait
for, and it raises ``ParseError`` like any other invalid input. A packet cut after its
headers parses normally; ``total_len`` still says how long it was.

What is accepted (anything else raises ``ParseError``):

* IPv4: version 4, header length (IHL) at least 20 bytes and present, total length at least
  the header length and not shorter than the bytes given. Options are skipped by IHL, not
  interpreted; the header checksum is not verified (the kernel checks it before the
  prerouting hook, and a rewritten packet gets a fresh one). A fragment at a non-zero
  offset is ``"later"`` and carries no transport header. AH is the protocol, as conntrack
  sees it for IPv4.
* IPv6: version 6, the 40-byte header, payload length not shorter than the bytes given
  (jumbograms, with payload length 0, are refused that way). Extension headers are walked
  with the kernel's length rules (``ipv6_skip_exthdr``): hop-by-hop options, routing,
  fragment, destination options, and AH (its length in 4-byte units, at least its 12 fixed
  bytes). Stricter than the kernel: hop-by-hop options only right after the header, at
  most one fragment header, each header present in whole, at most
  ``max_extension_headers`` of them. ESP, "no next header" and anything else end the walk
  as the packet's protocol.
* Transport: see ``gatewayd.packets.transport``.

Fast by construction, for the verdict engine's hot path: fixed offsets read with
precompiled ``struct`` formats and indexing, two slices for the addresses and nothing else
copied, no ``ipaddress`` objects, no look at the payload; the cost does not grow with the
packet, only with the (bounded) number of extension headers.
"""

from __future__ import annotations

import struct
from typing import Final, Literal

from gatewayd.errors import ParseError
from gatewayd.packets.packet import Fragment, Packet
from gatewayd.packets.transport import read_transport

MAX_EXTENSION_HEADERS: Final = 8
"""Default bound on the IPv6 extension headers walked before a packet is refused."""

IPV4_HEADER_LEN: Final = 20
IPV6_HEADER_LEN: Final = 40

HOP_BY_HOP: Final = 0
ROUTING: Final = 43
FRAGMENT: Final = 44
AUTHENTICATION: Final = 51
DESTINATION_OPTIONS: Final = 60

_EXTENSION_HEADERS: Final = frozenset(
    (HOP_BY_HOP, ROUTING, FRAGMENT, AUTHENTICATION, DESTINATION_OPTIONS)
)
_FRAGMENT_HEADER_LEN: Final = 8
_AH_MIN_LEN: Final = 12

# total length, (identification), flags | fragment offset, (TTL), protocol
_IPV4 = struct.Struct("!2xH2xHxB")
# payload length, next header
_IPV6 = struct.Struct("!4xHB")


def parse_packet(data: bytes, *, max_extension_headers: int = MAX_EXTENSION_HEADERS) -> Packet:
    """The headers of the IP packet ``data``; ``ParseError`` with a short reason if invalid."""
    if not data:
        raise ParseError("empty packet")
    version = data[0] >> 4
    if version == 4:
        return _parse_ipv4(data)
    if version == 6:
        return _parse_ipv6(data, max_extension_headers)
    raise ParseError(f"IP version {version}, expected 4 or 6")


def _parse_ipv4(data: bytes) -> Packet:
    if len(data) < IPV4_HEADER_LEN:
        raise ParseError("IPv4 header cut short")
    header_len = (data[0] & 0x0F) * 4
    if header_len < IPV4_HEADER_LEN:
        raise ParseError(f"IPv4 header length {header_len} below {IPV4_HEADER_LEN}")
    if header_len > len(data):
        raise ParseError("IPv4 options cut short")
    total_len, fragment_word, protocol = _IPV4.unpack_from(data)
    if total_len < header_len:
        raise ParseError(f"IPv4 total length {total_len} below its header length {header_len}")
    if len(data) > total_len:
        raise ParseError("packet longer than its IPv4 total length")
    src = data[12:16]
    dst = data[16:20]
    if fragment_word & 0x1FFF:
        return _later_fragment(4, src, dst, protocol, header_len, total_len)
    fragment: Fragment = "first" if fragment_word & 0x2000 else "none"
    sport, dport, flags, seq, ack, payload_offset = read_transport(
        data, header_len, protocol, total_len, whole_datagram=fragment == "none"
    )
    return Packet(
        version=4,
        src=src,
        dst=dst,
        protocol=protocol,
        sport=sport,
        dport=dport,
        tcp_flags=flags,
        seq=seq,
        ack=ack,
        header_len=header_len,
        payload_offset=payload_offset,
        fragment=fragment,
        total_len=total_len,
    )


def _parse_ipv6(data: bytes, max_extension_headers: int) -> Packet:
    size = len(data)
    if size < IPV6_HEADER_LEN:
        raise ParseError("IPv6 header cut short")
    payload_len, next_header = _IPV6.unpack_from(data)
    total_len = IPV6_HEADER_LEN + payload_len
    if size > total_len:
        raise ParseError("packet longer than its IPv6 payload length")
    src = data[8:24]
    dst = data[24:40]
    offset = IPV6_HEADER_LEN
    fragment: Fragment = "none"
    seen_fragment_header = False
    walked = 0
    while next_header in _EXTENSION_HEADERS:
        walked += 1
        if walked > max_extension_headers:
            raise ParseError(f"more than {max_extension_headers} IPv6 extension headers")
        if next_header == FRAGMENT:
            if seen_fragment_header:
                raise ParseError("IPv6 fragment header repeated")
            seen_fragment_header = True
            end = offset + _FRAGMENT_HEADER_LEN
            if end > size:
                raise ParseError("IPv6 fragment header cut short")
            fragment_word = (data[offset + 2] << 8) | data[offset + 3]
            next_header = data[offset]
            offset = end
            if fragment_word & 0xFFF8:
                return _later_fragment(6, src, dst, next_header, offset, total_len)
            if fragment_word & 1:
                fragment = "first"
            continue
        if offset + 2 > size:
            raise ParseError("IPv6 extension header cut short")
        if next_header == AUTHENTICATION:
            end = offset + (data[offset + 1] + 2) * 4
            if end - offset < _AH_MIN_LEN:
                raise ParseError("IPv6 authentication header shorter than its fixed fields")
        else:
            if next_header == HOP_BY_HOP and offset != IPV6_HEADER_LEN:
                raise ParseError("IPv6 hop-by-hop options not right after the header")
            end = offset + (data[offset + 1] + 1) * 8
        if end > size:
            raise ParseError("IPv6 extension header cut short")
        next_header = data[offset]
        offset = end
    sport, dport, flags, seq, ack, payload_offset = read_transport(
        data, offset, next_header, total_len, whole_datagram=fragment == "none"
    )
    return Packet(
        version=6,
        src=src,
        dst=dst,
        protocol=next_header,
        sport=sport,
        dport=dport,
        tcp_flags=flags,
        seq=seq,
        ack=ack,
        header_len=offset,
        payload_offset=payload_offset,
        fragment=fragment,
        total_len=total_len,
    )


def _later_fragment(
    version: Literal[4, 6], src: bytes, dst: bytes, protocol: int, header_len: int, total_len: int
) -> Packet:
    """A fragment past offset 0: no transport header, so no ports, flags or sequence numbers."""
    return Packet(
        version=version,
        src=src,
        dst=dst,
        protocol=protocol,
        sport=0,
        dport=0,
        tcp_flags=0,
        seq=0,
        ack=0,
        header_len=header_len,
        payload_offset=header_len,
        fragment="later",
        total_len=total_len,
    )
