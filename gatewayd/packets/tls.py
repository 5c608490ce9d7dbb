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

``parse_client_hello_message`` reads the same message without record framing, as QUIC
carries it in CRYPTO frames (RFC 9001 §4.1.3: TLS records are not used there), with the
same three outcomes and the same ClientHello rules; ``max_size`` bounds the message, and
``size`` is then the message's length, its 4-byte handshake header included.

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

import re
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
_DECODED_EXTENSIONS: Final = frozenset(
    (
        EXT_SERVER_NAME,
        EXT_ALPN,
        EXT_SUPPORTED_VERSIONS,
        EXT_SIGNATURE_ALGORITHMS,
        EXT_SUPPORTED_GROUPS,
        EXT_KEY_SHARE,
    )
)

_HOST_NAME_TYPE: Final = 0
_HOST_CHARACTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_HOST_NAME: Final = re.compile(rb"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")
"""A lower-cased host name of allowed characters in labels of 1 to 63 (not its length)."""
_GREASE: Final = frozenset(range(0x0A0A, 0x10000, 0x1010))
_RECORD_HEADER: Final = struct.Struct("!BHH").unpack_from
"""A record's content type, legacy version and length."""
_EXTENSION_HEADER: Final = struct.Struct("!HH").unpack_from
"""An extension's type and payload length."""
_U16_LISTS: Final = tuple(struct.Struct(f"!{count}H").unpack_from for count in range(128))
"""Readers of lists of 16-bit values by their count, for the usual counts."""


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
    bytes the ClientHello's records took, record headers included (for a bare message from
    ``parse_client_hello_message``, the message's bytes).
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
    return value in _GREASE


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
        if offset >= available:
            return None
        if len(spans) == max_records:
            raise ClientHelloTooLarge(f"ClientHello spread over more than {max_records} records")
        fragment = offset + RECORD_HEADER_LEN
        if fragment > available:  # refuse what has arrived of the header, or wait for the rest
            _check_record_header(data[offset:], first=not spans)
            return None
        content_type, version, length = _RECORD_HEADER(data, offset)
        if (
            content_type != CONTENT_TYPE_HANDSHAKE
            or not MIN_RECORD_VERSION <= version <= MAX_RECORD_VERSION
            or not 0 < length <= MAX_RECORD_LENGTH
        ):
            _check_record_header(data[offset:fragment], first=not spans)
        end = fragment + length
        if not needed and collected + min(end, available) - fragment >= HANDSHAKE_HEADER_LEN:
            start = data[fragment : fragment + HANDSHAKE_HEADER_LEN]
            if spans:  # the header began in the records before
                start = b"".join(data[a:b] for a, b in spans) + start
            needed = _read_handshake_header(start, max_size)
        if needed and collected + end - fragment > needed:
            raise ParseError("handshake record runs past the end of the ClientHello")
        if end > available:
            return None
        spans.append((fragment, end))
        collected += end - fragment
        offset = end
    if len(spans) == 1 and type(data) is bytes:  # read in place: no copy
        return _read_client_hello(data, RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN, offset, offset)
    message = b"".join(data[a:b] for a, b in spans)
    return _read_client_hello(message, HANDSHAKE_HEADER_LEN, len(message), offset)


def parse_client_hello_message(
    data: bytes, *, max_size: int = DEFAULT_MAX_CLIENT_HELLO
) -> ClientHello | None:
    """The ClientHello message at the start of ``data``, without records; as above otherwise."""
    if not data:
        return None
    if data[0] != HANDSHAKE_CLIENT_HELLO:  # refused from its first byte
        raise ParseError(f"handshake type {data[0]}, expected ClientHello (1)")
    if len(data) < HANDSHAKE_HEADER_LEN:
        return None
    size = _read_handshake_header(data[:HANDSHAKE_HEADER_LEN], max_size)
    if len(data) < size:
        return None
    message = data if type(data) is bytes else bytes(data[:size])
    return _read_client_hello(message, HANDSHAKE_HEADER_LEN, size, size)


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


# The readers below take a buffer and the bounds of the part they read, ``data[pos:stop]``,
# and work with offsets into it: no slice is taken but of the bytes they return. A field
# past ``stop`` is a ParseError "<field> runs past the end of the <scope>".


def _past(what: str, scope: str) -> ParseError:
    return ParseError(f"{what} runs past the end of the {scope}")


def _vector_end(
    data: bytes, pos: int, stop: int, length_size: int, what: str, scope: str, minimum: int = 0
) -> int:
    """The end of the field at ``pos``: a 1- or 2-byte length, then at least ``minimum`` bytes."""
    start = pos + length_size
    if start > stop:
        raise _past(f"{what} length", scope)
    length = data[pos] if length_size == 1 else (data[pos] << 8) | data[pos + 1]
    if length < minimum:
        raise ParseError(f"{what} of {length} bytes, at least {minimum} required")
    end = start + length
    if end > stop:
        raise _past(what, scope)
    return end


def _check_end(pos: int, stop: int, scope: str) -> None:
    """Refuse bytes left between ``pos`` and the end of the scope."""
    if pos < stop:
        raise ParseError(f"{stop - pos} bytes after the end of the {scope}")


def _numbers(data: bytes, start: int, end: int, what: str) -> tuple[int, ...]:
    """The list of 16-bit values in ``data[start:end]``."""
    length = end - start
    if length % 2:
        raise ParseError(f"{what} of odd length {length}")
    count = length >> 1
    if count < len(_U16_LISTS):
        return _U16_LISTS[count](data, start)
    return struct.unpack_from(f"!{count}H", data, start)


def _read_client_hello(data: bytes, pos: int, stop: int, size: int) -> ClientHello:
    """The ClientHello whose body, after its handshake header, is ``data[pos:stop]``."""
    legacy_version, cipher_suites, end = _read_fixed_fields(data, pos, stop)
    extensions: dict[int, None] = {}  # ordered, and a set for the repeat check
    sni: str | None = None
    alpn: tuple[bytes, ...] = ()
    supported_versions: tuple[int, ...] = ()
    signature_algorithms: tuple[int, ...] = ()
    supported_groups: tuple[int, ...] = ()
    key_share_groups: tuple[int, ...] = ()
    if end < stop:
        pos = end + 2
        end = _vector_end(data, end, stop, 2, "extensions", "ClientHello")
        _check_end(end, stop, "ClientHello")
        while pos < end:
            if end - pos < 4:
                raise _cut_extension_header(data, pos, end)
            kind, length = _EXTENSION_HEADER(data, pos)
            start = pos + 4
            pos = start + length
            if pos > end:
                raise _past(f"extension 0x{kind:04x}", "extensions")
            if kind in extensions:
                raise ParseError(f"extension 0x{kind:04x} repeated")
            if EXT_PRE_SHARED_KEY in extensions:
                raise ParseError("pre_shared_key extension not last")
            extensions[kind] = None
            if kind not in _DECODED_EXTENSIONS:
                continue
            if kind == EXT_SERVER_NAME:
                sni = _read_server_name(data, start, pos)
            elif kind == EXT_ALPN:
                alpn = _read_alpn(data, start, pos)
            elif kind == EXT_SUPPORTED_VERSIONS:
                supported_versions = _read_list(data, start, pos, 1, "supported_versions")
            elif kind == EXT_SIGNATURE_ALGORITHMS:
                signature_algorithms = _read_list(data, start, pos, 2, "signature_algorithms")
            elif kind == EXT_SUPPORTED_GROUPS:
                supported_groups = _read_list(data, start, pos, 2, "supported_groups")
            else:
                key_share_groups = _read_key_share(data, start, pos)
    return ClientHello(  # by position: a NamedTuple takes keywords at twice the cost
        legacy_version,
        sni,
        alpn,
        supported_versions,
        cipher_suites,
        tuple(extensions),
        signature_algorithms,
        supported_groups,
        key_share_groups,
        EXT_ENCRYPTED_CLIENT_HELLO in extensions,
        size,
    )


def _read_fixed_fields(data: bytes, pos: int, stop: int) -> tuple[int, tuple[int, ...], int]:
    """The legacy version, the cipher suites, and the offset past the compression methods."""
    scope = "ClientHello"
    if pos + 2 > stop:
        raise _past("legacy_version", scope)
    legacy_version = (data[pos] << 8) | data[pos + 1]
    if legacy_version >> 8 != 3:
        raise ParseError(f"ClientHello version 0x{legacy_version:04x}, expected 0x03xx")
    pos += 2 + 32
    if pos > stop:
        raise _past("random", scope)
    end = _vector_end(data, pos, stop, 1, "session id", scope)
    if end - pos - 1 > MAX_SESSION_ID:
        raise ParseError(f"session id of {end - pos - 1} bytes over {MAX_SESSION_ID}")
    pos = _vector_end(data, end, stop, 2, "cipher suites", scope, minimum=2)
    cipher_suites = _numbers(data, end + 2, pos, "cipher suites")
    end = _vector_end(data, pos, stop, 1, "compression methods", scope, minimum=1)
    if data.find(0, pos + 1, end) < 0:
        raise ParseError("compression methods without null")
    return legacy_version, cipher_suites, end


def _cut_extension_header(data: bytes, pos: int, stop: int) -> ParseError:
    """Why an extension header of fewer than 4 bytes, at ``pos`` before ``stop``, is refused."""
    if pos + 2 > stop:
        return _past("extension type", "extensions")
    return _past(f"extension 0x{(data[pos] << 8) | data[pos + 1]:04x} length", "extensions")


def _read_list(data: bytes, pos: int, stop: int, length_size: int, name: str) -> tuple[int, ...]:
    """A non-empty list of 16-bit values behind a ``length_size``-byte length, filling it all."""
    scope = f"{name} extension"
    end = _vector_end(data, pos, stop, length_size, name, scope, minimum=2)
    values = _numbers(data, pos + length_size, end, name)
    _check_end(end, stop, scope)
    return values


def _read_server_name(data: bytes, pos: int, stop: int) -> str:
    scope = "server_name extension"
    end = _vector_end(data, pos, stop, 2, "server name list", scope, minimum=1)
    _check_end(end, stop, scope)
    name_type = data[pos + 2]
    if name_type != _HOST_NAME_TYPE:
        raise ParseError(f"server name type {name_type}, expected host_name (0)")
    name_end = _vector_end(data, pos + 3, end, 2, "host name", "server name list", minimum=1)
    if name_end < end:
        raise ParseError("more than one server name")
    return _host_name(data[pos + 5 : name_end])


def _host_name(raw: bytes) -> str:
    """``raw`` lower-cased, if it is a host name by the rules; else the first rule it breaks."""
    lowered = raw.lower()
    if len(raw) <= MAX_HOST_NAME and _HOST_NAME.fullmatch(lowered):
        return lowered.decode("ascii")
    if not raw.isascii():
        raise ParseError("non-ASCII server name")
    if len(raw) > MAX_HOST_NAME:
        raise ParseError(f"server name of {len(raw)} bytes over {MAX_HOST_NAME}")
    name = lowered.decode("ascii")
    if not _HOST_CHARACTERS.issuperset(name):
        raise ParseError("server name with a character outside letters, digits, '-', '_', '.'")
    for label in name.split("."):
        if not label:
            raise ParseError("server name with an empty label")
        if len(label) > MAX_LABEL:
            raise ParseError(f"server name label of {len(label)} bytes over {MAX_LABEL}")
    raise AssertionError(f"host name {name!r} refused by no rule")  # unreachable


def _read_alpn(data: bytes, pos: int, stop: int) -> tuple[bytes, ...]:
    scope = "ALPN extension"
    end = _vector_end(data, pos, stop, 2, "ALPN protocol list", scope, minimum=2)
    _check_end(end, stop, scope)
    pos += 2
    protocols: list[bytes] = []
    while pos < end:  # so the name's 1-byte length is there
        start = pos + 1
        pos = start + data[pos]
        if pos == start:
            raise ParseError("ALPN protocol name of 0 bytes, at least 1 required")
        if pos > end:
            raise _past("ALPN protocol name", "ALPN protocol list")
        protocols.append(data[start:pos])
    return tuple(protocols)


def _read_key_share(data: bytes, pos: int, stop: int) -> tuple[int, ...]:
    scope = "key_share extension"
    end = _vector_end(data, pos, stop, 2, "client shares", scope)
    _check_end(end, stop, scope)
    pos += 2
    groups: dict[int, None] = {}  # ordered, and a set for the repeat check
    while pos < end:
        if pos + 2 > end:
            raise _past("key share group", "client shares")
        group = (data[pos] << 8) | data[pos + 1]
        pos = _vector_end(data, pos + 2, end, 2, "key exchange", "client shares", minimum=1)
        if group in groups:
            raise ParseError(f"two key shares for group 0x{group:04x}")
        groups[group] = None
    return tuple(groups)
