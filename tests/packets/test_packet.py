"""Packet, FlowKey and addresses as text."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.packets import FlowKey, flow_key, format_address, parse_packet

from .corpus import valid_corpus

CORPUS = valid_corpus()


def test_flow_key_of_a_syn() -> None:
    packet = parse_packet(CORPUS["tcp-syn-v4"])
    key = flow_key(packet)
    assert key == FlowKey(4, 6, bytes([10, 10, 0, 5]), 40000, bytes([93, 184, 216, 34]), 443)
    assert str(key) == "tcp 10.10.0.5:40000 -> 93.184.216.34:443"
    assert str(key.reply()) == "tcp 93.184.216.34:443 -> 10.10.0.5:40000"
    assert key.reply().reply() == key


def test_flow_key_of_ipv6_udp_and_later_fragments() -> None:
    assert str(flow_key(parse_packet(CORPUS["udp-v6"]))) == (
        "udp [fd00:10::5]:5353 -> [2001:db8::443]:4000"
    )
    later = flow_key(parse_packet(CORPUS["fragment-later-1-v4"]))
    assert (later.protocol, later.sport, later.dport) == (17, 0, 0)


def test_flow_keys_are_hashable_and_equal_per_flow() -> None:
    syn = parse_packet(CORPUS["tcp-syn-v6"])
    again = parse_packet(CORPUS["tcp-syn-v6"] + b"")
    cache = {flow_key(syn): "allow"}
    assert cache[flow_key(again)] == "allow"
    assert hash(syn) == hash(again)


def test_packet_is_immutable_and_slotted() -> None:
    packet = parse_packet(CORPUS["udp-v4"])
    assert not hasattr(packet, "__dict__")
    with pytest.raises(AttributeError):
        packet.sport = 1  # type: ignore[misc]


def test_addresses_as_objects() -> None:
    packet = parse_packet(CORPUS["tcp-syn-v6"])
    assert packet.src_ip == ipaddress.IPv6Address("fd00:10::5")
    assert packet.dst_ip == ipaddress.IPv6Address("2001:db8::443")
    assert parse_packet(CORPUS["udp-v4"]).dst_ip == ipaddress.IPv4Address("93.184.216.34")


@given(st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)))
def test_format_address_writes_as_ipaddress_does(packed: bytes) -> None:
    assert format_address(packed) == str(ipaddress.ip_address(packed))


@pytest.mark.parametrize("size", [0, 3, 5, 15, 17])
def test_format_address_refuses_other_lengths(size: int) -> None:
    with pytest.raises(ValueError, match="4 or 16 bytes"):
        format_address(bytes(size))
