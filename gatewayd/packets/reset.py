"""``tcp_reset_for``: turn a reply packet of a denied TCP flow into a reset toward the agent.

The reset queue hands the engine packets travelling server → agent on flows it has denied.
Each one becomes a bare RST in the same direction, between the same addresses and ports,
that the agent's TCP accepts at once:

* sequence number = the input's. The agent has not received this segment, so its RCV.NXT
  is that number when the reply was in order, and a RST with SEG.SEQ == RCV.NXT resets
  the connection (RFC 9293 §3.10.7.4, RFC 5961 §3.2); an out-of-order reply gives a RST
  the agent answers with a challenge ACK, and the next reply gets another chance.
* ACK set, with the input's acknowledgment number, when the input had ACK set. In
  SYN-SENT (the input is a SYN-ACK) the agent only accepts a RST whose ACK acknowledges
  its SYN, which the input's does. Without ACK on the input the acknowledgment field is 0.
* no payload, no options, window 0, urgent pointer 0.
* IPv4: a 20-byte header (options dropped), the input's DSCP with ECN cleared,
  identification and TTL kept, DF set, fresh header checksum. IPv6: the input's traffic
  class (ECN cleared), flow label and hop limit, payload length 20, extension headers
  dropped (next header = TCP).
* a TCP checksum over the pseudo-header of the addresses written.
"""

from __future__ import annotations

import struct
from typing import Final

from gatewayd.errors import ParseError
from gatewayd.packets.checksum import checksum, transport_checksum
from gatewayd.packets.ip import IPV4_HEADER_LEN, parse_packet
from gatewayd.packets.transport import PROTO_TCP, TCP_ACK, TCP_HEADER_LEN, TCP_RST

_DONT_FRAGMENT: Final = 0x4000
_ECN_MASK: Final = 0x03

# version/IHL, TOS, total length, identification, flags/offset, TTL, protocol, checksum
_IPV4 = struct.Struct("!BBH2sHBBH4s4s")
# version/traffic class/flow label, payload length, next header, hop limit
_IPV6 = struct.Struct("!IHBB16s16s")
# sport, dport, seq, ack, data offset, flags, window, checksum, urgent pointer
_TCP = struct.Struct("!HHIIBBHHH")


def tcp_reset_for(data: bytes) -> bytes:
    """A RST that ends the flow of the TCP packet ``data``, in the same direction.

    ``ParseError`` if ``data`` does not parse, is not TCP or is a later fragment (which has
    no TCP header to take sequence numbers from). A payload cut short by the queue's copy
    range does not matter: none is sent.
    """
    packet = parse_packet(data)
    if packet.protocol != PROTO_TCP:
        raise ParseError(f"not a TCP packet (protocol {packet.protocol})")
    if packet.fragment == "later":
        raise ParseError("a later fragment has no TCP header")
    flags = TCP_RST | (packet.tcp_flags & TCP_ACK)
    ack = packet.ack if flags & TCP_ACK else 0
    segment = _TCP.pack(
        packet.sport, packet.dport, packet.seq, ack, (TCP_HEADER_LEN // 4) << 4, flags, 0, 0, 0
    )
    tcp_sum = transport_checksum(packet.src, packet.dst, PROTO_TCP, segment)
    segment = segment[:16] + tcp_sum.to_bytes(2, "big") + segment[18:]
    if packet.version == 4:
        header = _IPV4.pack(
            0x45,
            data[1] & ~_ECN_MASK & 0xFF,
            IPV4_HEADER_LEN + TCP_HEADER_LEN,
            data[4:6],
            _DONT_FRAGMENT,
            data[8],
            PROTO_TCP,
            0,
            packet.src,
            packet.dst,
        )
        header = header[:10] + checksum(header).to_bytes(2, "big") + header[12:]
    else:
        first_word = int.from_bytes(data[0:4], "big") & ~(_ECN_MASK << 20)
        header = _IPV6.pack(first_word, TCP_HEADER_LEN, PROTO_TCP, data[7], packet.src, packet.dst)
    return header + segment
