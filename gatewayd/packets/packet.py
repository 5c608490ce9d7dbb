"""What a parsed packet is: ``Packet``, its ``FlowKey``, and addresses as text.

A ``Packet`` holds numbers and the two packed addresses, nothing else; ``ipaddress``
objects and text are made on demand, for the slow paths (policy on CIDRs, logs).
"""

from __future__ import annotations

import ipaddress
from typing import Literal, NamedTuple

from gatewayd.packets.transport import protocol_name

Fragment = Literal["none", "first", "later"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Packet(NamedTuple):
    """The headers of one IP packet, as ``parse_packet`` read them.

    Offsets count from the start of the packet. ``header_len`` is the length of the IP
    header with its options or IPv6 extension headers: where the transport header starts.
    ``payload_offset`` is where the transport payload starts (after the TCP header with its
    options or the UDP header; equal to ``header_len`` for other protocols and later
    fragments). ``total_len`` is the packet's length by its IP header (IPv6: 40 plus the
    payload length), which may exceed the bytes captured.

    ``fragment`` is ``"first"`` for the fragment at offset 0 of a fragmented datagram (its
    transport header is read), ``"later"`` for any other fragment (it has no transport
    header: ports, flags, seq and ack are 0), and ``"none"`` for a whole datagram, including
    an IPv6 atomic fragment (a Fragment header with offset 0 and no more fragments).
    """

    version: Literal[4, 6]
    src: bytes
    dst: bytes
    protocol: int
    sport: int
    dport: int
    tcp_flags: int
    seq: int
    ack: int
    header_len: int
    payload_offset: int
    fragment: Fragment
    total_len: int

    @property
    def src_ip(self) -> IPAddress:
        """The source address as an ``ipaddress`` object."""
        return ipaddress.ip_address(self.src)

    @property
    def dst_ip(self) -> IPAddress:
        """The destination address as an ``ipaddress`` object."""
        return ipaddress.ip_address(self.dst)


class FlowKey(NamedTuple):
    """A flow by its 5-tuple and family, as caches and logs key it (packed addresses)."""

    version: int
    protocol: int
    src: bytes
    sport: int
    dst: bytes
    dport: int

    def reply(self) -> FlowKey:
        """The key of the same flow's packets in the other direction."""
        return FlowKey(self.version, self.protocol, self.dst, self.dport, self.src, self.sport)

    def __str__(self) -> str:
        """``tcp 10.0.0.5:40000 -> 93.184.216.34:443``; IPv6 addresses in brackets."""
        return (
            f"{protocol_name(self.protocol)} {_endpoint(self.src, self.sport)}"
            f" -> {_endpoint(self.dst, self.dport)}"
        )


def flow_key(packet: Packet) -> FlowKey:
    """The flow ``packet`` belongs to (ports 0 for protocols without them, later fragments)."""
    return FlowKey(
        packet.version, packet.protocol, packet.src, packet.sport, packet.dst, packet.dport
    )


def format_address(packed: bytes) -> str:
    """A packed address (4 or 16 bytes) as text, as ``ipaddress`` writes it.

    ``ValueError`` for any other length.
    """
    if len(packed) == 4:
        return f"{packed[0]}.{packed[1]}.{packed[2]}.{packed[3]}"
    if len(packed) == 16:
        return str(ipaddress.IPv6Address(packed))
    raise ValueError(f"a packed address is 4 or 16 bytes, got {len(packed)}")


def _endpoint(packed: bytes, port: int) -> str:
    text = format_address(packed)
    return f"[{text}]:{port}" if len(packed) == 16 else f"{text}:{port}"
