"""UDP packets around a new payload: ``udp_reply_for`` answers one, ``with_udp_payload`` edits one.

Both take a whole IPv4 or IPv6 packet carrying UDP, as NFQUEUE hands it over (a payload
cut by the queue's copy range does not matter: it is replaced), and return a new packet
whose lengths and checksums are all correct:

* ``udp_reply_for`` answers the packet (an agent's DNS query, say): addresses and ports
  swapped, the given payload. IPv4: a 20-byte header (options dropped), TOS 0, the
  query's identification, DF set, TTL 64. IPv6: traffic class and flow label 0, hop
  limit 64, no extension headers (next header = UDP).
* ``with_udp_payload`` keeps the packet as it is (addresses, ports, every IP header
  field, IPv4 options, IPv6 extension headers) and replaces its UDP payload; anything
  after the UDP datagram inside the IP packet goes with it. An IPv6 AH's ICV is kept
  too, so it no longer matches: the receiver drops such a packet, as it should.

The UDP checksum is computed for both families, a computed 0 sent as 0xFFFF (RFC 768,
RFC 8200 §8.1). Both raise ``ParseError`` if the packet does not parse, is not UDP or is a
fragment (first or later: the datagram's other fragments would not follow; an IPv6
atomic fragment is a whole datagram), or if the result would exceed ``MAX_IP_PACKET``
bytes. ``with_udp_payload`` also refuses a packet whose UDP checksum does not cover the
addresses in its IP header (it cannot compute the one its receiver checks): a source route
not yet complete (IPv4 LSRR or SSRR, an IPv6 routing header with segments left) or an
IPv6 home address option (RFC 6275 §6.3).
"""

from __future__ import annotations

import struct
from typing import Final

from gatewayd.errors import ParseError
from gatewayd.packets.checksum import checksum, transport_checksum
from gatewayd.packets.ip import (
    AUTHENTICATION,
    DESTINATION_OPTIONS,
    FRAGMENT,
    IPV4_HEADER_LEN,
    IPV6_HEADER_LEN,
    ROUTING,
    parse_packet,
)
from gatewayd.packets.packet import Packet
from gatewayd.packets.transport import PROTO_UDP, UDP_HEADER_LEN

MAX_IP_PACKET: Final = 0xFFFF
"""The largest packet either function returns, in bytes (the IPv4 total length bound)."""

REPLY_HOP_LIMIT: Final = 64
"""The TTL or hop limit of a reply from ``udp_reply_for``."""

_DONT_FRAGMENT: Final = 0x4000
_IPV6_VERSION_WORD: Final = 6 << 28

_IPV4_LSRR: Final = 131
_IPV4_SSRR: Final = 137
_IPV6_HOME_ADDRESS: Final = 0xC9

# version/IHL, TOS, total length, identification, flags/offset, TTL, protocol, checksum
_IPV4 = struct.Struct("!BBH2sHBBH4s4s")
# version/traffic class/flow label, payload length, next header, hop limit
_IPV6 = struct.Struct("!IHBB16s16s")
# sport, dport, length, checksum
_UDP = struct.Struct("!HHHH")


def udp_reply_for(query: bytes, payload: bytes) -> bytes:
    """A UDP packet carrying ``payload`` back to the sender of ``query``, as the module says."""
    packet = _udp_packet(query)
    ip_len = IPV4_HEADER_LEN if packet.version == 4 else IPV6_HEADER_LEN
    size = _checked_size(ip_len, payload)
    datagram = _datagram(packet.dst, packet.src, packet.dport, packet.sport, payload)
    if packet.version == 4:
        header = _IPV4.pack(
            0x45,
            0,
            size,
            query[4:6],
            _DONT_FRAGMENT,
            REPLY_HOP_LIMIT,
            PROTO_UDP,
            0,
            packet.dst,
            packet.src,
        )
        return _with_ipv4_checksum(header) + datagram
    header = _IPV6.pack(
        _IPV6_VERSION_WORD, len(datagram), PROTO_UDP, REPLY_HOP_LIMIT, packet.dst, packet.src
    )
    return header + datagram


def with_udp_payload(packet: bytes, payload: bytes) -> bytes:
    """``packet`` with its UDP payload replaced by ``payload``, as the module says."""
    parsed = _udp_packet(packet)
    header_len = parsed.header_len
    if _checksum_covers_other_addresses(packet, parsed):
        raise ParseError("UDP checksum covers addresses other than the IP header's")
    size = _checked_size(header_len, payload)
    datagram = _datagram(parsed.src, parsed.dst, parsed.sport, parsed.dport, payload)
    if parsed.version == 4:
        header = (
            packet[:2] + size.to_bytes(2, "big") + packet[4:10] + bytes(2) + packet[12:header_len]
        )
        return _with_ipv4_checksum(header) + datagram
    payload_len = (size - IPV6_HEADER_LEN).to_bytes(2, "big")
    return packet[:4] + payload_len + packet[6:header_len] + datagram


def _udp_packet(data: bytes) -> Packet:
    """``data`` parsed; ``ParseError`` unless it is a whole UDP datagram."""
    packet = parse_packet(data)
    if packet.protocol != PROTO_UDP:
        raise ParseError(f"not a UDP packet (protocol {packet.protocol})")
    if packet.fragment != "none":
        raise ParseError(f"a {packet.fragment} fragment is not a whole UDP datagram")
    return packet


def _checked_size(header_len: int, payload: bytes) -> int:
    """The length of a packet of ``header_len`` IP header bytes around ``payload``."""
    size = header_len + UDP_HEADER_LEN + len(payload)
    if size > MAX_IP_PACKET:
        raise ParseError(f"a packet of {size} bytes exceeds {MAX_IP_PACKET}")
    return size


def _datagram(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """The UDP header and ``payload``, with the checksum for ``src`` to ``dst``."""
    segment = _UDP.pack(sport, dport, UDP_HEADER_LEN + len(payload), 0) + payload
    udp_sum = transport_checksum(src, dst, PROTO_UDP, segment) or 0xFFFF
    return segment[:6] + udp_sum.to_bytes(2, "big") + segment[8:]


def _with_ipv4_checksum(header: bytes) -> bytes:
    """``header`` (checksum field zero) with its header checksum filled in."""
    return header[:10] + checksum(header).to_bytes(2, "big") + header[12:]


def _checksum_covers_other_addresses(data: bytes, packet: Packet) -> bool:
    """Whether the UDP pseudo-header of ``packet`` differs from its IP header's addresses."""
    if packet.version == 4:
        return _ipv4_source_route_pending(data[IPV4_HEADER_LEN : packet.header_len])
    return _ipv6_addresses_replaced(data, packet.header_len)


def _ipv4_source_route_pending(options: bytes) -> bool:
    """Whether ``options`` hold an LSRR or SSRR whose route is not complete (RFC 791)."""
    offset = 0
    while offset < len(options) and options[offset] != 0:
        kind = options[offset]
        if kind == 1:
            offset += 1
            continue
        if offset + 1 == len(options) or options[offset + 1] < 2:
            return False  # malformed: the kernel drops the packet anyway
        length = options[offset + 1]
        routes = kind in (_IPV4_LSRR, _IPV4_SSRR) and offset + 2 < len(options)
        if routes and options[offset + 2] <= length:
            return True
        offset += length
    return False


def _ipv6_addresses_replaced(data: bytes, header_len: int) -> bool:
    """Whether the extension headers route on (segments left) or carry a home address."""
    next_header = data[6]
    offset = IPV6_HEADER_LEN
    while offset < header_len:
        if next_header == ROUTING and data[offset + 3]:
            return True
        if next_header == DESTINATION_OPTIONS and _has_home_address(data, offset):
            return True
        if next_header == FRAGMENT:
            end = offset + 8
        elif next_header == AUTHENTICATION:
            end = offset + (data[offset + 1] + 2) * 4
        else:
            end = offset + (data[offset + 1] + 1) * 8
        next_header = data[offset]
        offset = end
    return False


def _has_home_address(data: bytes, offset: int) -> bool:
    """Whether the destination options header at ``offset`` holds a home address option."""
    end = offset + (data[offset + 1] + 1) * 8
    position = offset + 2
    while position < end:
        kind = data[position]
        if kind == _IPV6_HOME_ADDRESS:
            return True
        if kind == 0 or position + 1 == end:
            position += 1
        else:
            position += data[position + 1] + 2
    return False
