"""Packets: the IP and transport headers the verdict engine decides on, and resets it sends.

``parse_packet`` reads a raw IPv4 or IPv6 packet (as NFQUEUE delivers it: no link-layer
header, possibly cut at the copy range) into a ``Packet``: addresses, protocol, ports, TCP
flags and sequence numbers, header offsets and fragment position. It raises ``ParseError``
for anything it does not accept and nothing else, whatever the bytes. ``flow_key`` gives
the hashable 5-tuple caches and logs use. ``tcp_reset_for`` rewrites a reply packet of a
denied TCP flow into a RST toward the agent, with fresh checksums (``checksum``,
``pseudo_header_sum``).

IO boundary: none. This component is pure: it takes bytes and returns values, and the
NFQUEUE shell that receives packets and issues verdicts calls into it.
"""

from gatewayd.packets.checksum import (
    checksum,
    ones_complement_sum,
    pseudo_header_sum,
    transport_checksum,
)
from gatewayd.packets.ip import MAX_EXTENSION_HEADERS, parse_packet
from gatewayd.packets.packet import (
    FlowKey,
    Fragment,
    IPAddress,
    Packet,
    flow_key,
    format_address,
)
from gatewayd.packets.reset import tcp_reset_for
from gatewayd.packets.transport import (
    PROTO_TCP,
    PROTO_UDP,
    TCP_ACK,
    TCP_AE,
    TCP_CWR,
    TCP_ECE,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    TCP_URG,
    protocol_name,
)

__all__ = [
    "MAX_EXTENSION_HEADERS",
    "PROTO_TCP",
    "PROTO_UDP",
    "TCP_ACK",
    "TCP_AE",
    "TCP_CWR",
    "TCP_ECE",
    "TCP_FIN",
    "TCP_PSH",
    "TCP_RST",
    "TCP_SYN",
    "TCP_URG",
    "FlowKey",
    "Fragment",
    "IPAddress",
    "Packet",
    "checksum",
    "flow_key",
    "format_address",
    "ones_complement_sum",
    "parse_packet",
    "protocol_name",
    "pseudo_header_sum",
    "tcp_reset_for",
    "transport_checksum",
]
