"""Transport header fields: TCP flags and offsets, UDP lengths, protocol names."""

from __future__ import annotations

import pytest
from scapy.layers.inet import TCP, UDP

from gatewayd.errors import ParseError
from gatewayd.packets import TCP_ACK, TCP_AE, TCP_SYN, protocol_name
from gatewayd.packets.transport import read_transport

PREFIX = bytes(7)  # the header sits at an offset, as behind an IP header


def test_tcp_fields_and_the_ae_flag() -> None:
    header = bytes(TCP(sport=1, dport=2, seq=3, ack=4, flags=TCP_AE | TCP_ACK | TCP_SYN))
    data = PREFIX + header + b"payload"
    fields = read_transport(data, 7, 6, len(data), whole_datagram=True)
    assert fields == (1, 2, TCP_AE | TCP_ACK | TCP_SYN, 3, 4, 27)


def test_tcp_reserved_bits_are_not_flags() -> None:
    header = bytearray(bytes(TCP(flags="S")))
    header[12] |= 0x0E
    assert read_transport(bytes(header), 0, 6, 20, whole_datagram=True)[2] == TCP_SYN


def test_tcp_options_move_the_payload() -> None:
    header = bytes(TCP(options=[("MSS", 1460), ("WScale", 7)]))
    assert len(header) == 28
    assert read_transport(header, 0, 6, 28, whole_datagram=True)[5] == 28


def test_udp_fields() -> None:
    data = PREFIX + bytes(UDP(sport=53, dport=5353) / b"abc")
    assert read_transport(data, 7, 17, len(data), whole_datagram=True) == (53, 5353, 0, 0, 0, 15)


def test_udp_length_is_checked_against_the_ip_packet_only_when_whole() -> None:
    data = bytes(UDP(sport=1, dport=2) / bytes(100))[:40]
    with pytest.raises(ParseError, match="UDP length beyond"):
        read_transport(data, 0, 17, 40, whole_datagram=True)
    assert read_transport(data, 0, 17, 40, whole_datagram=False)[:2] == (1, 2)


def test_other_protocols_carry_no_ports() -> None:
    assert read_transport(bytes(30), 10, 132, 30, whole_datagram=True) == (0, 0, 0, 0, 0, 10)


@pytest.mark.parametrize(
    ("number", "name"),
    [(6, "tcp"), (17, "udp"), (1, "icmp"), (58, "icmpv6"), (50, "esp"), (0, "0"), (253, "253")],
)
def test_protocol_names(number: int, name: str) -> None:
    assert protocol_name(number) == name
