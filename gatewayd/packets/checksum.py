"""The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sums.

The ones' complement sum of 16-bit words is computed in one step: read the bytes as one
big-endian integer and reduce it modulo 0xFFFF (2**16 ≡ 1 modulo 0xFFFF, so every word
counts once). That keeps the loop in C instead of Python, whatever the length.
"""

from __future__ import annotations

_MODULUS = 0xFFFF


def ones_complement_sum(data: bytes, initial: int = 0) -> int:
    """The folded 16-bit ones' complement sum of ``data`` plus ``initial``.

    ``data`` is read as big-endian 16-bit words, an odd last byte padded with a zero byte.
    ``initial`` is a sum to continue from (a pseudo-header sum, another part of the
    segment), not negative. The result is 0 only when every word is zero, else 1..0xFFFF,
    as the carry-folding loop of RFC 1071 gives it.
    """
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    value += initial
    if value == 0:
        return 0
    return (value - 1) % _MODULUS + 1


def checksum(data: bytes, initial: int = 0) -> int:
    """The Internet checksum of ``data`` (continuing from the sum ``initial``).

    A header or segment whose checksum field is correct sums to 0xFFFF, so its
    ``checksum`` is 0.
    """
    return _MODULUS - ones_complement_sum(data, initial)


def pseudo_header_sum(src: bytes, dst: bytes, protocol: int, length: int) -> int:
    """The ones' complement sum of the TCP/UDP pseudo-header.

    IPv4 (RFC 9293 §3.1): source, destination, a zero byte, the protocol and the 16-bit
    segment length. IPv6 (RFC 8200 §8.1): source, destination, the 32-bit upper-layer
    length, three zero bytes and the next-header value. The family follows from the
    address length (4 or 16 bytes); ``ValueError`` for anything else.
    """
    if len(src) == 4 and len(dst) == 4:
        tail = bytes((0, protocol)) + length.to_bytes(2, "big")
    elif len(src) == 16 and len(dst) == 16:
        tail = length.to_bytes(4, "big") + bytes((0, 0, 0, protocol))
    else:
        raise ValueError(f"addresses of {len(src)} and {len(dst)} bytes; expected 4 or 16 both")
    return ones_complement_sum(src + dst + tail)


def transport_checksum(src: bytes, dst: bytes, protocol: int, segment: bytes) -> int:
    """The TCP or UDP checksum of ``segment`` (its checksum field zeroed) between two addresses.

    For UDP a computed 0 is sent as 0xFFFF (RFC 768); that is the caller's rule to apply.
    """
    return checksum(segment, pseudo_header_sum(src, dst, protocol, len(segment)))
