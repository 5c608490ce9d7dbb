"""Real packets built with scapy, and scapy's own dissection of them as the reference.

scapy is a test dependency only: it crafts packets and, as an independent reader, says what
``parse_packet`` should find in them. The gateway never uses it.
"""

from __future__ import annotations

import socket
from typing import Any

from scapy.layers.inet import (
    ICMP,
    IP,
    TCP,
    UDP,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_RR,
    fragment,
)
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
    RouterAlert,
    fragment6,
)
from scapy.layers.ipsec import AH, ESP
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

AGENT4, SERVER4 = "10.10.0.5", "93.184.216.34"
AGENT6, SERVER6 = "fd00:10::5", "2001:db8::443"

SYN_OPTIONS = [
    ("MSS", 1460),
    ("SAckOK", b""),
    ("Timestamp", (123456, 0)),
    ("NOP", None),
    ("WScale", 7),
]

# IPv6 extension headers as parse_packet walks them (scapy classes), and their numbers.
EXTENSION_LAYERS = (
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    IPv6ExtHdrFragment,
    IPv6ExtHdrDestOpt,
    AH,
)
NEXT_HEADER = {
    IPv6ExtHdrHopByHop: 0,
    IPv6ExtHdrRouting: 43,
    IPv6ExtHdrFragment: 44,
    AH: 51,
    IPv6ExtHdrDestOpt: 60,
    TCP: 6,
    UDP: 17,
}
_LAYER = {number: layer for layer, number in NEXT_HEADER.items()}


def ah(next_layer: type[ScapyPacket], icv_len: int = 12) -> AH:
    """An AH header with its length set (scapy leaves it to the caller)."""
    return AH(nh=NEXT_HEADER[next_layer], payloadlen=(12 + icv_len) // 4 - 2, icv=bytes(icv_len))


def _fragments(packet: ScapyPacket) -> list[bytes]:
    if packet.version == 4:
        return [bytes(part) for part in fragment(packet, 1400)]
    return [bytes(part) for part in fragment6(packet, 1280)]


_UDP4_BIG = IP(src=AGENT4, dst=SERVER4) / UDP(sport=40001, dport=4433) / Raw(bytes(3000))
_UDP6_BIG = (
    IPv6(src=AGENT6, dst=SERVER6)
    / IPv6ExtHdrFragment(id=0x1234)
    / UDP(sport=40001, dport=4433)
    / Raw(bytes(3000))
)


def valid_corpus() -> dict[str, bytes]:
    """Named packets parse_packet accepts, each as the kernel would queue it."""
    tcp_syn = TCP(sport=40000, dport=443, seq=1000, flags="S", options=SYN_OPTIONS)
    cases: dict[str, ScapyPacket] = {
        "tcp-syn-v4": IP(src=AGENT4, dst=SERVER4, flags="DF") / tcp_syn,
        "tcp-syn-v6": IPv6(src=AGENT6, dst=SERVER6) / tcp_syn,
        "tcp-data-v4": IP(src=SERVER4, dst=AGENT4)
        / TCP(sport=443, dport=40000, seq=5, ack=9, flags="PA")
        / Raw(b"x" * 100),
        "tcp-syn-ack-ecn-v6": IPv6(src=SERVER6, dst=AGENT6, tc=2, fl=0xABCDE)
        / TCP(sport=443, dport=40000, seq=77, ack=1001, flags="SAE", options=[("MSS", 1220)]),
        "tcp-ae-flag-v4": IP(src=AGENT4, dst=SERVER4) / TCP(flags=0x112),
        "udp-v4": IP(src=AGENT4, dst=SERVER4) / UDP(sport=5353, dport=4000) / Raw(b"q" * 29),
        "udp-v6": IPv6(src=AGENT6, dst=SERVER6) / UDP(sport=5353, dport=4000) / Raw(b"q" * 29),
        "udp-empty-v4": IP(src=AGENT4, dst=SERVER4) / UDP(sport=1, dport=2),
        "ipv4-options": IP(
            src=AGENT4, dst=SERVER4, options=[IPOption_Router_Alert(), IPOption_NOP()]
        )
        / tcp_syn,
        "ipv4-record-route": IP(src=AGENT4, dst=SERVER4, options=[IPOption_RR(routers=["1.1.1.1"])])
        / UDP(sport=1234, dport=4000),
        "ipv6-hbh-dst-frag": IPv6(src=AGENT6, dst=SERVER6)
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 10)])
        / IPv6ExtHdrFragment(m=1, id=7)
        / tcp_syn,
        "ipv6-atomic-fragment": IPv6(src=AGENT6, dst=SERVER6)
        / IPv6ExtHdrFragment(id=8)
        / UDP(sport=1, dport=2),
        "ipv6-routing": IPv6(src=AGENT6, dst=SERVER6)
        / IPv6ExtHdrRouting(addresses=["2001:db8::1", "2001:db8::2"], segleft=0)
        / tcp_syn,
        "ipv6-ah": IPv6(src=AGENT6, dst=SERVER6) / ah(TCP) / tcp_syn,
        "ipv6-full-chain": IPv6(src=AGENT6, dst=SERVER6)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting(addresses=[SERVER6], segleft=0)
        / ah(IPv6ExtHdrFragment, icv_len=4)
        / IPv6ExtHdrFragment(m=1, id=9)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=1, dport=2)
        / Raw(b"u"),
        "ipv4-ah": IP(src=AGENT4, dst=SERVER4) / ah(TCP) / tcp_syn,
        "ipv6-esp": IPv6(src=AGENT6, dst=SERVER6) / ESP(spi=5, seq=1, data=b"\x00" * 16),
        "ipv6-no-next-header": IPv6(src=AGENT6, dst=SERVER6, nh=59),
        "icmp-v4": IP(src=AGENT4, dst=SERVER4) / ICMP(),
        "icmp-v6": IPv6(src=AGENT6, dst=SERVER6) / ICMPv6EchoRequest(),
    }
    corpus = {name: bytes(packet) for name, packet in cases.items()}
    for family, big in (("v4", _UDP4_BIG), ("v6", _UDP6_BIG)):
        first, *later = _fragments(big)
        corpus[f"fragment-first-{family}"] = first
        for index, part in enumerate(later, 1):
            corpus[f"fragment-later-{index}-{family}"] = part
    return corpus


def dissect(data: bytes) -> dict[str, Any]:
    """The ``Packet`` fields scapy's dissection of ``data`` gives (a reference reader)."""
    if data[0] >> 4 == 4:
        ip = IP(data)
        family, version = socket.AF_INET, 4
        protocol, header_len, total_len = ip.proto, ip.ihl * 4, ip.len
        fragment_state = "later" if ip.frag else "first" if ip.flags.MF else "none"
        upper = ip.payload
    else:
        ip = IPv6(data)
        family, version = socket.AF_INET6, 6
        protocol, total_len, fragment_state = ip.nh, 40 + ip.plen, "none"
        upper = ip.payload
        while isinstance(upper, EXTENSION_LAYERS):
            if isinstance(upper, IPv6ExtHdrFragment):
                if upper.offset:
                    fragment_state = "later"
                elif upper.m:
                    fragment_state = "first"
            protocol = upper.nh
            upper = upper.payload
            if isinstance(upper, Raw) and fragment_state != "later" and protocol in _LAYER:
                upper = _LAYER[protocol](upper.load)  # scapy stops dissecting after AH
        header_len = len(data) - len(bytes(upper))
    fields: dict[str, Any] = {
        "version": version,
        "src": socket.inet_pton(family, ip.src),
        "dst": socket.inet_pton(family, ip.dst),
        "protocol": protocol,
        "sport": 0,
        "dport": 0,
        "tcp_flags": 0,
        "seq": 0,
        "ack": 0,
        "header_len": header_len,
        "payload_offset": header_len,
        "fragment": fragment_state,
        "total_len": total_len,
    }
    if fragment_state != "later" and isinstance(upper, TCP):
        fields.update(
            sport=upper.sport,
            dport=upper.dport,
            tcp_flags=int(upper.flags),
            seq=upper.seq,
            ack=upper.ack,
            payload_offset=header_len + upper.dataofs * 4,
        )
    elif fragment_state != "later" and isinstance(upper, UDP):
        fields.update(sport=upper.sport, dport=upper.dport, payload_offset=header_len + 8)
    return fields
