"""Source addresses as the identity registry keys them.

Text is normalised with ``ipaddress`` (IPv6 compressed and lower-case), packets give packed
bytes (4 or 16), and both meet in ``address_key``. Nothing is repaired: surrounding spaces,
leading zeros, prefixes (``/32``) and IPv6 zone indexes (``%eth0``) are refused.

IPv4-mapped IPv6 addresses (``::ffff:10.0.0.5``) stay distinct from IPv4 ones: a packet with
that IPv6 source is not the IPv4 host, so it never resolves to an IPv4 lease, and such an
address cannot be leased (lease the IPv4 address instead).
"""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressLike: TypeAlias = str | IPAddress | bytes

_EXPECTED = "expected one IPv4 or IPv6 address such as 10.0.0.5 or fd00::5"
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def to_address(value: AddressLike) -> IPAddress:
    """The single address ``value`` names; ``ValueError`` if it names anything else."""
    if isinstance(value, bytes | bytearray | memoryview):
        packed = bytes(value)
        if len(packed) not in (4, 16):
            raise ValueError(f"a packed address is 4 or 16 bytes, got {len(packed)}")
        return ipaddress.ip_address(packed)
    if isinstance(value, str):
        if "/" in value:
            raise ValueError(f"invalid IP address {value!r}: that is a network; {_EXPECTED}")
        if "%" in value:
            raise ValueError(f"invalid IP address {value!r}: zone indexes are not accepted")
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"invalid IP address {value!r}: {_EXPECTED}") from None
        return addr
    return value


def address_key(value: AddressLike) -> bytes:
    """The packed form (4 or 16 bytes) the lease table is keyed by."""
    if type(value) is bytes and len(value) in (4, 16):
        return value
    return to_address(value).packed


def normalize(value: AddressLike) -> str:
    """The text form stored in the registry (``FD00::0005`` → ``fd00::5``)."""
    return str(to_address(value))


def leasable(value: AddressLike) -> IPAddress:
    """``value`` as an address a lease may bind; ``ValueError`` says why one may not.

    A lease names a unicast source address that packets can carry: not the unspecified
    address, loopback, multicast, the IPv4 broadcast address or an IPv4-mapped address.
    """
    addr = to_address(value)
    why = None
    if addr.is_unspecified:
        why = "the unspecified address is never a packet's source"
    elif addr.is_loopback:
        why = "loopback addresses never arrive on a workload interface"
    elif addr.is_multicast:
        why = "multicast addresses are never a packet's source"
    elif addr == _BROADCAST:
        why = "the broadcast address is never a packet's source"
    elif isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        why = f"an IPv4-mapped IPv6 address; lease the IPv4 address {addr.ipv4_mapped} instead"
    if why:
        raise ValueError(f"cannot lease {value if isinstance(value, str) else addr}: {why}")
    return addr
