"""``parse_client_hello``: a TLS client's first bytes, read up to the end of its ClientHello.

Input is the client's TCP stream from its first byte: the payloads of its segments after the
handshake, joined in order, as much of them as has arrived. There are three outcomes:

* ``None``: the ClientHello is not complete yet; call again when more bytes arrive. Every
  strict prefix of a valid ClientHello gives ``None``, however the stream was cut.
* a ``ClientHello``: the message is complete; ``size`` is how many bytes of ``data`` its
  records took. Bytes after them (a ChangeCipherSpec, early data) are not looked at.
* ``ParseError``: the bytes are not a TLS ClientHello or break one of the rules below. More
  bytes cannot change that: once a prefix is refused, every longer input is refused too,
  for the same reason. The reason names fields, lengths and numbers, never payload text.

An incomplete ClientHello costs a walk over its record headers, not a copy, so feeding a
stream one small segment at a time costs little more than feeding it whole.

Records (RFC 8446 §5.1). Content type handshake (22) with a legacy record version from
0x0301 to 0x0303; anything else in the first byte, SSLv2-style hellos included, is
``"not TLS"``. A record is at most 2^14 bytes and never empty. The ClientHello may be split
over several records, all handshake records; the last one ends where the ClientHello ends.
A ClientHello over ``max_size`` bytes (its 4-byte handshake header included), or spread
over more than ``max_records`` records, raises ``ClientHelloTooLarge`` as soon as its
header, or the record past the bound, says so. While the result is ``None``, ``data`` is
shorter than ``max_size + RECORD_HEADER_LEN * max_records`` bytes: a caller buffering the
stream needs no other bound.

ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). Handshake type 1; legacy version 0x03xx;
a session id of at most 32 bytes; a non-empty list of cipher suites; compression methods
that include null (0); then either nothing or an extensions block that fills the rest of
the message exactly. Each extension appears at most once, pre_shared_key only last. The
extensions the verdict reads are decoded and checked against their RFC's length rules:

* server_name (RFC 6066 §3): exactly one name, of type host_name: 1 to 253 ASCII letters,
  digits, hyphens and underscores in dot-separated labels of 1 to 63 (no empty label, so
  no leading, trailing or double dot). Kept lower-cased.
* application_layer_protocol_negotiation (RFC 7301 §3.1): a non-empty list of non-empty
  protocol names.
* supported_versions, signature_algorithms, supported_groups (RFC 8446 §4.2): non-empty
  lists of 16-bit values.
* key_share (RFC 8446 §4.2.8): entries of a group and a non-empty key, no group twice; the
  list itself may be empty.

encrypted_client_hello (0xfe0d) is only noted: its payload is encrypted, so ``sni`` is
then the outer, public name. Every other extension is carried by type and not decoded.
GREASE values (RFC 8701) are kept wherever they appear; ``is_grease`` tells them apart.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from gatewayd.errors import ParseError

DEFAULT_MAX_CLIENT_HELLO: Final = 16 * 1024
"""Default bound on a ClientHello's size in bytes, its handshake header included."""

MAX_CLIENT_HELLO_RECORDS: Final = 16
"""Default bound on the number of records a ClientHello may be split over."""

RECORD_HEADER_LEN: Final = 5
HANDSHAKE_HEADER_LEN: Final = 4
MAX_RECORD_LENGTH: Final = 2**14
MAX_SESSION_ID: Final = 32
MAX_HOST_NAME: Final = 253
MAX_LABEL: Final = 63

CONTENT_TYPE_HANDSHAKE: Final = 22
HANDSHAKE_CLIENT_HELLO: Final = 1
MIN_RECORD_VERSION: Final = 0x0301
MAX_RECORD_VERSION: Final = 0x0303

EXT_SERVER_NAME: Final = 0x0000
EXT_SUPPORTED_GROUPS: Final = 0x000A
EXT_SIGNATURE_ALGORITHMS: Final = 0x000D
EXT_ALPN: Final = 0x0010
EXT_PRE_SHARED_KEY: Final = 0x0029
EXT_SUPPORTED_VERSIONS: Final = 0x002B
EXT_KEY_SHARE: Final = 0x0033
EXT_ENCRYPTED_CLIENT_HELLO: Final = 0xFE0D

_HOST_NAME_TYPE: Final = 0
_HOST_CHARACTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class ClientHelloTooLarge(ParseError):
    """A ClientHello over the size or record bound: an inspect-window condition, not garbage."""


class ClientHello(NamedTuple):
    """What a TLS client offered in its ClientHello, as ``parse_client_hello`` read it.

    Lists keep the client's order and its GREASE values. ``sni`` is the host name from
    server_name, lower-cased, or ``None`` without that extension; with ``ech`` set it is the
    outer name, not the one the client is really after. ``alpn`` holds the protocol names
    as bytes (``b"h2"``, ``b"http/1.1"``). ``supported_versions``, ``signature_algorithms``,
    ``supported_groups`` and ``key_share_groups`` are empty when their extension is absent.
    ``extensions`` lists every extension type in order. ``size`` is the number of stream
    bytes the ClientHello's records took, record headers included.
    """

    legacy_version: int
    sni: str | None
    alpn: tuple[bytes, ...]
    supported_versions: tuple[int, ...]
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    supported_groups: tuple[int, ...]
    key_share_groups: tuple[int, ...]
    ech: bool
    size: int


def is_grease(value: int) -> bool:
    """Whether a 16-bit cipher suite, extension, group, version or algorithm is GREASE.

    RFC 8701 reserves 0x0A0A, 0x1A1A, …, 0xFAFA: both bytes equal, low nibble 0xA.
    """
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def parse_client_hello(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_CLIENT_HELLO,
    max_records: int = MAX_CLIENT_HELLO_RECORDS,
) -> ClientHello | None:
    """The ClientHello at the start of ``data``, ``None`` if incomplete; else ``ParseError``."""
    available = len(data)
    spans: list[tuple[int, int]] = []  # where each record's fragment lies in ``data``
    collected = 0  # handshake bytes in the records walked so far
    needed = 0  # the ClientHello's length with its header, once that header is read
    offset = 0
    while not needed or collected < needed:
        header_end = offset + RECORD_HEADER_LEN
        header = data[offset:header_end]
        if not header:
            return None
        if len(spans) == max_records:
            raise ClientHelloTooLarge(f"ClientHello spread over more than {max_records} records")
        _check_record_header(header, first=not spans)
        if len(header) < RECORD_HEADER_LEN:
            return None
        length = (header[3] << 8) | header[4]
        end = header_end + length
        if not needed and collected + min(end, available) - header_end >= HANDSHAKE_HEADER_LEN:
            start = b"".join(data[a:b] for a, b in spans) + data[header_end:end]
            needed = _read_handshake_header(start, max_size)
        if needed and collected + length > needed:
            raise ParseError("handshake record runs past the end of the ClientHello")
        if end > available:
            return None
        spans.append((header_end, end))
        collected += length
        offset = end
    message = b"".join(data[a:b] for a, b in spans)
    return _read_client_hello(memoryview(message)[HANDSHAKE_HEADER_LEN:], offset)


def _check_record_header(header: bytes, *, first: bool) -> None:
    """Refuse a record header by the bytes of it that have arrived (at least one)."""
    if header[0] != CONTENT_TYPE_HANDSHAKE:
        if first:
            raise ParseError("not TLS")
        raise ParseError(f"content type {header[0]} record inside the ClientHello")
    if len(header) >= 3:
        version = (header[1] << 8) | header[2]
        if not MIN_RECORD_VERSION <= version <= MAX_RECORD_VERSION:
            raise ParseError(f"record version 0x{version:04x} outside 0x0301 to 0x0303")
    if len(header) == RECORD_HEADER_LEN:
        length = (header[3] << 8) | header[4]
        if length == 0:
            raise ParseError("empty handshake record")
        if length > MAX_RECORD_LENGTH:
            raise ParseError(f"record length {length} over {MAX_RECORD_LENGTH}")


def _read_handshake_header(start: bytes, max_size: int) -> int:
    """The ClientHello's length, header included, from the first 4 handshake bytes."""
    if start[0] != HANDSHAKE_CLIENT_HELLO:
        raise ParseError(f"handshake type {start[0]}, expected ClientHello (1)")
    size = HANDSHAKE_HEADER_LEN + int.from_bytes(start[1:4], "big")
    if size > max_size:
        raise ClientHelloTooLarge(f"ClientHello of {size} bytes over the {max_size}-byte bound")
    return size


class _Reader:
    """Reads a byte string front to back; a field past its end is a ``ParseError``."""

    __slots__ = ("data", "offset", "scope")

    def __init__(self, data: memoryview, scope: str) -> None:
        self.data = data
        self.offset = 0
        self.scope = scope

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, count: int, what: str) -> memoryview:
        end = self.offset + count
        if end > len(self.data):
            raise ParseError(f"{what} runs past the end of the {self.scope}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def number(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(self, length_size: int, what: str, *, minimum: int = 0) -> memoryview:
        """A length-prefixed field of at least ``minimum`` bytes."""
        length = self.number(length_size, f"{what} length")
        if length < minimum:
            raise ParseError(f"{what} of {length} bytes, at least {minimum} required")
        return self.take(length, what)

    def end(self) -> None:
        if self.remaining:
            raise ParseError(f"{self.remaining} bytes after the end of the {self.scope}")


def _read_client_hello(body: memoryview, size: int) -> ClientHello:
    reader = _Reader(body, "ClientHello")
    legacy_version = reader.number(2, "legacy_version")
    if legacy_version >> 8 != 3:
        raise ParseError(f"ClientHello version 0x{legacy_version:04x}, expected 0x03xx")
    reader.take(32, "random")
    session_id = reader.vector(1, "session id")
    if len(session_id) > MAX_SESSION_ID:
        raise ParseError(f"session id of {len(session_id)} bytes over {MAX_SESSION_ID}")
    cipher_suites = _numbers(reader.vector(2, "cipher suites", minimum=2), "cipher suites")
    if 0 not in reader.vector(1, "compression methods", minimum=1):
        raise ParseError("compression methods without null")
    extensions: list[int] = []
    seen: set[int] = set()
    decoded = _Extensions()
    if reader.remaining:
        block = _Reader(reader.vector(2, "extensions"), "extensions")
        reader.end()
        while block.remaining:
            kind = block.number(2, "extension type")
            payload = block.vector(2, f"extension 0x{kind:04x}")
            if kind in seen:
                raise ParseError(f"extension 0x{kind:04x} repeated")
            if EXT_PRE_SHARED_KEY in seen:
                raise ParseError("pre_shared_key extension not last")
            seen.add(kind)
            extensions.append(kind)
            decoded.read(kind, payload)
    return ClientHello(
        legacy_version=legacy_version,
        sni=decoded.sni,
        alpn=decoded.alpn,
        supported_versions=decoded.supported_versions,
        cipher_suites=cipher_suites,
        extensions=tuple(extensions),
        signature_algorithms=decoded.signature_algorithms,
        supported_groups=decoded.supported_groups,
        key_share_groups=decoded.key_share_groups,
        ech=EXT_ENCRYPTED_CLIENT_HELLO in seen,
        size=size,
    )


class _Extensions:
    """The decoded contents of the extensions ``ClientHello`` carries."""

    def __init__(self) -> None:
        self.sni: str | None = None
        self.alpn: tuple[bytes, ...] = ()
        self.supported_versions: tuple[int, ...] = ()
        self.signature_algorithms: tuple[int, ...] = ()
        self.supported_groups: tuple[int, ...] = ()
        self.key_share_groups: tuple[int, ...] = ()

    def read(self, kind: int, payload: memoryview) -> None:
        if kind == EXT_SERVER_NAME:
            self.sni = _read_server_name(payload)
        elif kind == EXT_ALPN:
            self.alpn = _read_alpn(payload)
        elif kind == EXT_SUPPORTED_VERSIONS:
            self.supported_versions = _read_list(payload, 1, "supported_versions")
        elif kind == EXT_SIGNATURE_ALGORITHMS:
            self.signature_algorithms = _read_list(payload, 2, "signature_algorithms")
        elif kind == EXT_SUPPORTED_GROUPS:
            self.supported_groups = _read_list(payload, 2, "supported_groups")
        elif kind == EXT_KEY_SHARE:
            self.key_share_groups = _read_key_share(payload)


def _numbers(data: memoryview, what: str) -> tuple[int, ...]:
    """A list of 16-bit values."""
    if len(data) % 2:
        raise ParseError(f"{what} of odd length {len(data)}")
    return struct.unpack(f"!{len(data) // 2}H", data)


def _read_list(payload: memoryview, length_size: int, name: str) -> tuple[int, ...]:
    reader = _Reader(payload, f"{name} extension")
    values = _numbers(reader.vector(length_size, name, minimum=2), name)
    reader.end()
    return values


def _read_server_name(payload: memoryview) -> str:
    reader = _Reader(payload, "server_name extension")
    names = _Reader(reader.vector(2, "server name list", minimum=1), "server name list")
    reader.end()
    name_type = names.number(1, "server name type")
    if name_type != _HOST_NAME_TYPE:
        raise ParseError(f"server name type {name_type}, expected host_name (0)")
    raw = bytes(names.vector(2, "host name", minimum=1))
    if names.remaining:
        raise ParseError("more than one server name")
    if not raw.isascii():
        raise ParseError("non-ASCII server name")
    if len(raw) > MAX_HOST_NAME:
        raise ParseError(f"server name of {len(raw)} bytes over {MAX_HOST_NAME}")
    name = raw.decode("ascii").lower()
    if not _HOST_CHARACTERS.issuperset(name):
        raise ParseError("server name with a character outside letters, digits, '-', '_', '.'")
    for label in name.split("."):
        if not label:
            raise ParseError("server name with an empty label")
        if len(label) > MAX_LABEL:
            raise ParseError(f"server name label of {len(label)} bytes over {MAX_LABEL}")
    return name


def _read_alpn(payload: memoryview) -> tuple[bytes, ...]:
    reader = _Reader(payload, "ALPN extension")
    names = _Reader(reader.vector(2, "ALPN protocol list", minimum=2), "ALPN protocol list")
    reader.end()
    protocols: list[bytes] = []
    while names.remaining:
        protocols.append(bytes(names.vector(1, "ALPN protocol name", minimum=1)))
    return tuple(protocols)


def _read_key_share(payload: memoryview) -> tuple[int, ...]:
    reader = _Reader(payload, "key_share extension")
    entries = _Reader(reader.vector(2, "client shares"), "client shares")
    reader.end()
    groups: dict[int, None] = {}  # ordered, and a set for the repeat check
    while entries.remaining:
        group = entries.number(2, "key share group")
        entries.vector(2, "key exchange", minimum=1)
        if group in groups:
            raise ParseError(f"two key shares for group 0x{group:04x}")
        groups[group] = None
    return tuple(groups)
