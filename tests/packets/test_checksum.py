"""The Internet checksum against RFC 1071's loop and scapy's own checksums."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP

from gatewayd.packets import (
    checksum,
    ones_complement_sum,
    parse_packet,
    pseudo_header_sum,
    transport_checksum,
)

from .strategies import Built, packets


def reference_sum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 §4.1, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = initial
    for index in range(0, len(data), 2):
        total += (data[index] << 8) | data[index + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_rfc1071_example() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert checksum(data) == 0x220D


def test_zero_and_negative_zero() -> None:
    assert ones_complement_sum(b"") == ones_complement_sum(bytes(8)) == 0
    assert checksum(bytes(8)) == 0xFFFF
    assert ones_complement_sum(b"\xff\xff\x00\x00") == 0xFFFF
    assert ones_complement_sum(b"\x80\x00\x80\x00") == 0x0001


@given(st.binary(max_size=300), st.integers(0, 0x3FFFF))
def test_sum_matches_the_reference_loop(data: bytes, initial: int) -> None:
    assert ones_complement_sum(data, initial) == reference_sum(data, initial)
    assert checksum(data, initial) == 0xFFFF - reference_sum(data, initial)


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_sums_continue_across_even_splits(head: bytes, tail: bytes) -> None:
    head += b"\x00" * (len(head) % 2)
    assert ones_complement_sum(head + tail) == ones_complement_sum(tail, ones_complement_sum(head))


def test_a_correct_header_checksums_to_zero() -> None:
    header = bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=7) / TCP())[:20]
    assert checksum(header) == 0
    assert checksum(header[:10] + b"\x00\x00" + header[12:]) == int.from_bytes(header[10:12])


@given(packets())
@settings(max_examples=200, deadline=None)
def test_transport_checksum_matches_scapy(built: Built) -> None:
    packet = parse_packet(built.data)
    if packet.fragment != "none" or "ah" in built.extension_headers:
        return  # a fragment's checksum covers the whole datagram; scapy leaves it 0 behind AH
    segment = bytearray(built.data[packet.header_len :])
    field = 16 if packet.protocol == 6 else 6
    sent = int.from_bytes(segment[field : field + 2])
    segment[field : field + 2] = b"\x00\x00"
    computed = transport_checksum(packet.src, packet.dst, packet.protocol, bytes(segment))
    if packet.protocol == 17 and computed == 0:
        computed = 0xFFFF
    assert computed == sent


def test_pseudo_header_sums() -> None:
    v4 = pseudo_header_sum(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6, 20)
    assert v4 == reference_sum(bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20]))
    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    v6 = pseudo_header_sum(src, dst, 17, 70000)
    assert v6 == reference_sum(src + dst + (70000).to_bytes(4) + b"\x00\x00\x00\x11")


@pytest.mark.parametrize(("src", "dst"), [(bytes(4), bytes(16)), (bytes(5), bytes(5)), (b"", b"")])
def test_pseudo_header_refuses_mixed_or_odd_addresses(src: bytes, dst: bytes) -> None:
    with pytest.raises(ValueError, match="expected 4 or 16"):
        pseudo_header_sum(src, dst, 6, 20)


def test_udp_checksum_as_scapy_computes_it() -> None:
    data = bytes(IP(src="10.0.0.1", dst="192.0.2.9") / UDP(sport=53, dport=5353) / b"hello")
    segment = data[20:26] + b"\x00\x00" + data[28:]
    assert transport_checksum(data[12:16], data[16:20], 17, segment) == int.from_bytes(data[26:28])
