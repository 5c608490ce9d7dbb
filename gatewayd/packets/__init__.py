"""Packets: the IP and transport headers the verdict engine decides on, and resets it sends.

``parse_packet`` reads a raw IPv4 or IPv6 packet (as NFQUEUE delivers it: no link-layer
header, possibly cut at the copy range) into a ``Packet``: addresses, protocol, ports, TCP
flags and sequence numbers, header offsets and fragment position. It raises ``ParseError``
for anything it does not accept and nothing else, whatever the bytes. ``flow_key`` gives
the hashable 5-tuple caches and logs use. ``tcp_reset_for`` rewrites a reply packet of a
denied TCP flow into a RST toward the agent, with fresh checksums (``checksum``,
``pseudo_header_sum``). ``parse_dns_message`` reads the DNS messages agents exchange (over
TCP once ``split_tcp_dns`` has framed them) for the names, addresses and TTLs they resolve,
and ``build_negative_answer`` writes the NXDOMAIN or REFUSED reply for a name policy denies
(to a response too, through the query ``query_answered_by`` gives).
``udp_reply_for`` wraps a payload (such as that reply) in a UDP packet answering the query's,
and ``with_udp_payload`` replaces a UDP packet's payload, both with fresh lengths and checksums.
``parse_client_hello`` reads a TLS client's first bytes, as they arrive, into a
``ClientHello`` (SNI, ALPN, versions, offers) once it is complete, ``None`` until then, and
``ja4`` fingerprints it. ``parse_quic_initial`` decrypts a QUIC client's Initial packet (v1
or v2) for the CRYPTO frames it carries, and ``client_hello_from_initials`` reads the
ClientHello they make up, over one datagram or several, with ``parse_client_hello_message``.

IO boundary: none. This component is pure: it takes bytes and returns values, and the
NFQUEUE shell that receives packets and issues verdicts calls into it.
"""

from gatewayd.packets.checksum import (
    checksum,
    ones_complement_sum,
    pseudo_header_sum,
    transport_checksum,
)
from gatewayd.packets.dns import (
    DNS_CLASS_IN,
    DNS_RCODE_NOERROR,
    DNS_RCODE_NXDOMAIN,
    DNS_RCODE_REFUSED,
    DNS_TYPE_A,
    DNS_TYPE_AAAA,
    DNS_TYPE_CNAME,
    DNS_TYPE_OPT,
    DNS_TYPE_TXT,
    MAX_CNAME_CHAIN,
    MAX_DNS_MESSAGE_SIZE,
    MAX_DNS_POINTER_JUMPS,
    MAX_DNS_RECORDS_PER_SECTION,
    MAX_DNS_TOTAL_RECORDS,
    MAX_TCP_DNS_FRAME,
    DnsFlags,
    DnsMessage,
    DnsName,
    Edns,
    EdnsOption,
    Question,
    Resolution,
    ResourceRecord,
    parse_dns_message,
    split_tcp_dns,
)
from gatewayd.packets.dns_build import NegativeRcode, build_negative_answer, query_answered_by
from gatewayd.packets.ip import MAX_EXTENSION_HEADERS, parse_packet
from gatewayd.packets.ja4 import Transport, ja4, ja4_raw
from gatewayd.packets.packet import (
    FlowKey,
    Fragment,
    IPAddress,
    Packet,
    flow_key,
    format_address,
)
from gatewayd.packets.quic import (
    QUIC_VERSION_1,
    QUIC_VERSION_2,
    CryptoPiece,
    InitialKeys,
    QuicInitial,
    client_hello_from_initials,
    initial_keys,
    parse_quic_initial,
)
from gatewayd.packets.reset import tcp_reset_for
from gatewayd.packets.tls import (
    DEFAULT_MAX_CLIENT_HELLO,
    MAX_CLIENT_HELLO_RECORDS,
    ClientHello,
    ClientHelloTooLarge,
    is_grease,
    parse_client_hello,
    parse_client_hello_message,
)
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
from gatewayd.packets.udp_build import udp_reply_for, with_udp_payload

__all__ = [
    "DEFAULT_MAX_CLIENT_HELLO",
    "DNS_CLASS_IN",
    "DNS_RCODE_NOERROR",
    "DNS_RCODE_NXDOMAIN",
    "DNS_RCODE_REFUSED",
    "DNS_TYPE_A",
    "DNS_TYPE_AAAA",
    "DNS_TYPE_CNAME",
    "DNS_TYPE_OPT",
    "DNS_TYPE_TXT",
    "MAX_CLIENT_HELLO_RECORDS",
    "MAX_CNAME_CHAIN",
    "MAX_DNS_MESSAGE_SIZE",
    "MAX_DNS_POINTER_JUMPS",
    "MAX_DNS_RECORDS_PER_SECTION",
    "MAX_DNS_TOTAL_RECORDS",
    "MAX_EXTENSION_HEADERS",
    "MAX_TCP_DNS_FRAME",
    "PROTO_TCP",
    "PROTO_UDP",
    "QUIC_VERSION_1",
    "QUIC_VERSION_2",
    "TCP_ACK",
    "TCP_AE",
    "TCP_CWR",
    "TCP_ECE",
    "TCP_FIN",
    "TCP_PSH",
    "TCP_RST",
    "TCP_SYN",
    "TCP_URG",
    "ClientHello",
    "ClientHelloTooLarge",
    "CryptoPiece",
    "DnsFlags",
    "DnsMessage",
    "DnsName",
    "Edns",
    "EdnsOption",
    "FlowKey",
    "Fragment",
    "IPAddress",
    "InitialKeys",
    "NegativeRcode",
    "Packet",
    "Question",
    "QuicInitial",
    "Resolution",
    "ResourceRecord",
    "Transport",
    "build_negative_answer",
    "checksum",
    "client_hello_from_initials",
    "flow_key",
    "format_address",
    "initial_keys",
    "is_grease",
    "ja4",
    "ja4_raw",
    "ones_complement_sum",
    "parse_client_hello",
    "parse_client_hello_message",
    "parse_dns_message",
    "parse_packet",
    "parse_quic_initial",
    "protocol_name",
    "pseudo_header_sum",
    "query_answered_by",
    "split_tcp_dns",
    "tcp_reset_for",
    "transport_checksum",
    "udp_reply_for",
    "with_udp_payload",
]
