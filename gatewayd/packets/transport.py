"""Transport headers: the TCP and UDP fields a verdict needs, and protocol names.

Only TCP and UDP carry ports here; any other protocol (ICMP, ESP, SCTP, …) is reported by
number with its ports left at 0. A TCP header must be whole, options included; a UDP header
must be whole and its length field sane. Checksums are not verified: the gateway forwards
what the agent sent, and the receiver checks them.
"""

from __future__ import annotations

import struct
from typing import Final

from gatewayd.errors import ParseError

PROTO_TCP: Final = 6
PROTO_UDP: Final = 17

# TCP flags as ``Packet.tcp_flags`` carries them: the flag byte, plus the AE bit (Accurate
# ECN; formerly NS) from the byte before it as bit 8.
TCP_FIN: Final = 0x001
TCP_SYN: Final = 0x002
TCP_RST: Final = 0x004
TCP_PSH: Final = 0x008
TCP_ACK: Final = 0x010
TCP_URG: Final = 0x020
TCP_ECE: Final = 0x040
TCP_CWR: Final = 0x080
TCP_AE: Final = 0x100

TCP_HEADER_LEN: Final = 20
UDP_HEADER_LEN: Final = 8

_PROTOCOL_NAMES: Final = {
    1: "icmp",
    PROTO_TCP: "tcp",
    PROTO_UDP: "udp",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    132: "sctp",
}

# sport, dport, seq, ack, data offset (4 bits) | reserved (3) | AE (1) | flags (8)
_TCP = struct.Struct("!HHIIH")
# sport, dport, length
_UDP = struct.Struct("!HHH")

# sport, dport, tcp_flags, seq, ack, payload offset
TransportFields = tuple[int, int, int, int, int, int]


def protocol_name(protocol: int) -> str:
    """``"tcp"``, ``"udp"`` and a few others by name (as nftables spells them), else the number."""
    return _PROTOCOL_NAMES.get(protocol) or str(protocol)


def read_transport(
    data: bytes, offset: int, protocol: int, ip_end: int, *, whole_datagram: bool
) -> TransportFields:
    """The transport fields of the header at ``offset``; ``ParseError`` if it is cut short.

    ``ip_end`` is where the IP packet ends by its own length field (the captured ``data``
    may stop earlier). ``whole_datagram`` is false for a first fragment, whose UDP length
    covers more than this packet.
    """
    if protocol == PROTO_TCP:
        if offset + TCP_HEADER_LEN > len(data):
            raise ParseError("TCP header cut short")
        sport, dport, seq, ack, word = _TCP.unpack_from(data, offset)
        data_offset = (word >> 12) * 4
        if data_offset < TCP_HEADER_LEN:
            raise ParseError(f"TCP data offset {data_offset} below {TCP_HEADER_LEN}")
        payload = offset + data_offset
        if payload > len(data):
            raise ParseError("TCP options cut short")
        return sport, dport, word & 0x1FF, seq, ack, payload
    if protocol == PROTO_UDP:
        payload = offset + UDP_HEADER_LEN
        if payload > len(data):
            raise ParseError("UDP header cut short")
        sport, dport, length = _UDP.unpack_from(data, offset)
        if length < UDP_HEADER_LEN:
            raise ParseError(f"UDP length {length} below {UDP_HEADER_LEN}")
        if whole_datagram and length > ip_end - offset:
            raise ParseError("UDP length beyond the end of the IP packet")
        return sport, dport, 0, 0, 0, payload
    return 0, 0, 0, 0, 0, offset
