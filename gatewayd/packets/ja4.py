"""``ja4``: the JA4 fingerprint of a TLS client, computed from its ``ClientHello``.

As FoxIO specifies it (https://github.com/FoxIO-LLC/ja4, ``technical_details/JA4.md``):
``t13d1516h2_8daaf6152771_e5627efa2ab1`` is three parts joined by ``_``.

* a: the transport (``t`` TLS over TCP, ``q`` QUIC); the TLS version, from the highest
  non-GREASE value in supported_versions if that extension is present, else the
  ClientHello's legacy version (``13``, ``12``, …, ``00`` if unknown); ``d`` if a
  server_name extension is present, else ``i``; the number of cipher suites and of
  extensions, GREASE left out, two digits each, at most 99; then the first and last
  characters of the first ALPN protocol (``00`` without ALPN). When either of those two
  bytes is not an ASCII letter or digit, the first and last characters of the protocol's
  hex form stand instead.
* b: the first 12 hex digits of the SHA-256 of the cipher suites, GREASE left out, as
  4-digit lower-case hex, sorted, joined by commas.
* c: the same over the extension types, GREASE, server_name (0000) and ALPN (0010) left
  out, sorted; followed, when the signature_algorithms list is not empty, by ``_`` and the
  signature algorithms (GREASE left out) in the client's order.

An empty list hashes to ``000000000000``, not to the SHA-256 of nothing. ``ja4_raw`` is
the same fingerprint with the lists in place of their hashes (FoxIO's ``ja4_r``).
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

from gatewayd.packets.tls import EXT_ALPN, EXT_SERVER_NAME, ClientHello, is_grease

Transport = Literal["tcp", "quic"]

_TRANSPORT_CODES: Final[dict[Transport, str]] = {"tcp": "t", "quic": "q"}
_VERSION_CODES: Final = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}
_UNKNOWN_VERSION: Final = "00"
_NO_ALPN: Final = "00"
_EMPTY_HASH: Final = "000000000000"
_MAX_COUNT: Final = 99
_HASH_DIGITS: Final = 12


def ja4(hello: ClientHello, *, transport: Transport = "tcp") -> str:
    """The JA4 fingerprint of ``hello``, e.g. ``t13d1516h2_8daaf6152771_e5627efa2ab1``."""
    prefix, ciphers, extensions = _parts(hello, transport)
    return f"{prefix}_{_hash12(ciphers)}_{_hash12(extensions)}"


def ja4_raw(hello: ClientHello, *, transport: Transport = "tcp") -> str:
    """The JA4 fingerprint of ``hello`` with its sorted lists written out instead of hashed."""
    return "_".join(_parts(hello, transport))


def _parts(hello: ClientHello, transport: Transport) -> tuple[str, str, str]:
    """The prefix (JA4_a), and the strings whose hashes make JA4_b and JA4_c."""
    ciphers = [value for value in hello.cipher_suites if not is_grease(value)]
    extensions = [value for value in hello.extensions if not is_grease(value)]
    algorithms = [value for value in hello.signature_algorithms if not is_grease(value)]
    prefix = (
        _TRANSPORT_CODES[transport]
        + _version_code(hello)
        + ("d" if EXT_SERVER_NAME in extensions else "i")
        + f"{min(len(ciphers), _MAX_COUNT):02d}"
        + f"{min(len(extensions), _MAX_COUNT):02d}"
        + _alpn_code(hello.alpn)
    )
    hashed_extensions = _hex_list(
        sorted(value for value in extensions if value not in (EXT_SERVER_NAME, EXT_ALPN))
    )
    if algorithms:
        hashed_extensions += "_" + _hex_list(algorithms)
    return prefix, _hex_list(sorted(ciphers)), hashed_extensions


def _version_code(hello: ClientHello) -> str:
    if hello.supported_versions:
        offered = [value for value in hello.supported_versions if not is_grease(value)]
        if not offered:
            return _UNKNOWN_VERSION
        version = max(offered)
    else:
        version = hello.legacy_version
    return _VERSION_CODES.get(version, _UNKNOWN_VERSION)


def _alpn_code(protocols: tuple[bytes, ...]) -> str:
    if not protocols or not protocols[0]:
        return _NO_ALPN
    first = protocols[0]
    ends = chr(first[0]) + chr(first[-1])
    if ends.isascii() and ends.isalnum():
        return ends
    digits = first.hex()
    return digits[0] + digits[-1]


def _hex_list(values: list[int]) -> str:
    return ",".join(f"{value:04x}" for value in values)


def _hash12(text: str) -> str:
    if not text:
        return _EMPTY_HASH
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:_HASH_DIGITS]
