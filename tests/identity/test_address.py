from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.identity import address_key, leasable, normalize, to_address


@given(st.ip_addresses())
def test_every_form_gives_the_same_key(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    key = addr.packed
    assert address_key(addr) == key
    assert address_key(str(addr)) == key
    assert address_key(addr.exploded) == key
    assert address_key(key) == key
    assert address_key(bytearray(key)) == key
    assert to_address(normalize(addr.exploded.upper())) == addr


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_keys_differ(addr: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{addr}")
    assert address_key(mapped) != address_key(addr)
    assert address_key(str(mapped)) != address_key(str(addr))


@pytest.mark.parametrize(
    ("text", "normal"),
    [("10.0.0.5", "10.0.0.5"), ("FD00:0:0::5", "fd00::5"), ("2001:DB8::1", "2001:db8::1")],
)
def test_normalize(text: str, normal: str) -> None:
    assert normalize(text) == normal


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 10.0.0.5",
        "10.0.0.5 ",
        "10.0.0.05",
        "10.0.0",
        "10.0.0.256",
        "10.0.0.0/8",
        "::/0",
        "fe80::1%2",
        "0x0a000005",
        "167772165",
        "localhost",
    ],
)
def test_refused_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid IP address"):
        to_address(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.9", "loopback"),
        ("::1", "loopback"),
        ("239.1.2.3", "multicast"),
        ("ff05::2", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("::ffff:192.0.2.1", "lease the IPv4 address 192.0.2.1 instead"),
    ],
)
def test_not_leasable(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"cannot lease {text}: .*{why}"):
        leasable(text)


@pytest.mark.parametrize("text", ["10.0.0.5", "192.0.2.1", "fe80::1", "2001:db8::5", "fd00::1"])
def test_leasable(text: str) -> None:
    assert str(leasable(text)) == text
