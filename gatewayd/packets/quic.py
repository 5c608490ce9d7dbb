"""``parse_quic_initial``: the CRYPTO data of a QUIC client's Initial packet, decrypted.

A QUIC client's ClientHello travels in CRYPTO frames inside Initial packets, encrypted with
keys anyone can derive from the packet's Destination Connection ID (RFC 9001 §5.2): they
protect against tampering off the path, not against reading. ``parse_quic_initial`` takes a
UDP payload, removes that protection from the Initial packet at its start and returns a
``QuicInitial``; ``client_hello_from_initials`` joins the CRYPTO pieces of one or more such
packets (a ClientHello with post-quantum key shares spans several datagrams) and reads the
ClientHello from them with ``parse_client_hello_message``. Whatever the bytes, the result
is a value or a ``ParseError``, whose reason names fields, lengths and numbers, never
payload text.

Header (RFC 9000 §17.2, §17.2.2). The first byte has the long-header bit set (else ``"not a
QUIC long header packet"``); the fixed bit is not checked, since RFC 9287 lets a client
clear it. The version is QUIC v1 (RFC 9000) or v2 (RFC 9369), anything else is refused by
its number, Version Negotiation (0) included; the packet type, whose encoding depends on
the version, is Initial. The Destination and Source Connection IDs are at most 20 bytes
each. Then the token (its length is reported, its bytes are not) and the Length field,
which must fit in the datagram: what follows the packet (further coalesced packets) is not
looked at, and ``size`` tells where the Initial ends. Neither the 1200-byte minimum of a
client's Initial datagram nor the 8-byte minimum of its first DCID (RFC 9000 §14.1, §7.2)
is enforced: the server enforces them, and a retried connection's DCID may be shorter.

Protection (RFC 9001 §5). ``initial_keys`` derives the client's key, IV and header
protection key: HKDF-Extract with SHA-256 over the DCID, salted by the version's initial
salt; HKDF-Expand-Label "client in", then "quic key", "quic iv" and "quic hp" (v2:
"quicv2 key", "quicv2 iv", "quicv2 hp"). The header protection mask is AES-128-ECB of the
16 bytes that start 4 bytes after the packet number field (§5.4.2); a packet too short for
that sample is refused. The payload is AES-128-GCM with the header as associated data and
the IV XOR the packet number as nonce. A packet that fails authentication, a server's
Initial (sealed with the server's keys) or random bytes, is ``"Initial packet does not
decrypt"``: every byte of the packet, header included, is covered, so a single changed byte
anywhere in it is caught. After removal the reserved header bits must be zero (§17.2).

The packet number is read as the truncated value on the wire: with no packet received yet,
RFC 9000 §A.3 decodes a client's first Initials (numbered from 0) to exactly that value.

Frames (RFC 9000 §12.4, Table 3). The payload holds at least one frame, every frame type in
its shortest encoding, and only the types an Initial packet may carry: PADDING (0x00) and
PING (0x01), skipped; ACK (0x02, 0x03), read and checked for packet numbers below zero
(§19.3); CRYPTO (0x06), whose offset plus length stays below 2^62 (§19.6); and
CONNECTION_CLOSE of the transport kind (0x1c). Any other type is refused by its number.
``crypto`` keeps each CRYPTO frame's (offset, data) in packet order, and ``frame_types``
the frame types present, in order of first appearance.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final, Literal, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from gatewayd.errors import ParseError
from gatewayd.packets.tls import (
    DEFAULT_MAX_CLIENT_HELLO,
    ClientHello,
    parse_client_hello_message,
)

QUIC_VERSION_1: Final = 0x00000001
"""QUIC version 1 (RFC 9000)."""

QUIC_VERSION_2: Final = 0x6B3343CF
"""QUIC version 2 (RFC 9369)."""

MAX_CONNECTION_ID: Final = 20
"""The longest connection ID QUIC v1 and v2 allow, in bytes."""

MAX_CRYPTO_OFFSET: Final = 2**62 - 1
"""The largest CRYPTO stream offset plus length a frame may reach (RFC 9000 §19.6)."""

CryptoPiece = tuple[int, bytes]
"""A CRYPTO frame's data and the stream offset it starts at: ``(offset, data)``."""

Sender = Literal["client", "server"]


class _VersionRules(NamedTuple):
    salt: bytes
    key_label: bytes
    iv_label: bytes
    hp_label: bytes
    packet_types: tuple[str, str, str, str]  # by the two type bits of the first byte


_VERSIONS: Final = {
    QUIC_VERSION_1: _VersionRules(
        salt=bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
        key_label=b"quic key",
        iv_label=b"quic iv",
        hp_label=b"quic hp",
        packet_types=("Initial", "0-RTT", "Handshake", "Retry"),
    ),
    QUIC_VERSION_2: _VersionRules(
        salt=bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
        key_label=b"quicv2 key",
        iv_label=b"quicv2 iv",
        hp_label=b"quicv2 hp",
        packet_types=("Retry", "Initial", "0-RTT", "Handshake"),
    ),
}

_LONG_HEADER: Final = 0x80
_RESERVED_BITS: Final = 0x0C
_PACKET_NUMBER_LENGTH: Final = 0x03
_SAMPLE_OFFSET: Final = 4  # the sample starts as if the packet number were 4 bytes
_SAMPLE_LENGTH: Final = 16
_TAG_LENGTH: Final = 16

FRAME_PADDING: Final = 0x00
FRAME_PING: Final = 0x01
FRAME_ACK: Final = 0x02
FRAME_ACK_ECN: Final = 0x03
FRAME_CRYPTO: Final = 0x06
FRAME_CONNECTION_CLOSE: Final = 0x1C

_NOT_PADDING: Final = re.compile(rb"[^\x00]")


class InitialKeys(NamedTuple):
    """One sender's Initial secret and the keys derived from it (RFC 9001 §5.1, §5.2)."""

    secret: bytes
    key: bytes
    iv: bytes
    hp: bytes


class QuicInitial(NamedTuple):
    """What ``parse_quic_initial`` read from the Initial packet at the start of a datagram.

    ``dcid`` and ``scid`` are the connection IDs; ``token_length`` is the length of the
    token a Retry or NEW_TOKEN gave the client (0 without one). ``packet_number`` is the
    truncated packet number as sent. ``crypto`` holds each CRYPTO frame's ``(offset, data)``
    in packet order; ``frame_types`` the frame types present, in order of first appearance.
    ``size`` is the number of datagram bytes the packet took.
    """

    version: int
    dcid: bytes
    scid: bytes
    token_length: int
    packet_number: int
    crypto: tuple[CryptoPiece, ...]
    frame_types: tuple[int, ...]
    size: int


@lru_cache(maxsize=64)
def initial_keys(
    dcid: bytes, version: int = QUIC_VERSION_1, sender: Sender = "client"
) -> InitialKeys:
    """The Initial keys ``sender`` protects its packets with, for a connection's first DCID.

    Raises ``ParseError`` for a version other than v1 and v2. Cached: the packets of one
    connection attempt share a DCID.
    """
    rules = _version_rules(version)
    initial_secret = hmac.digest(rules.salt, dcid, "sha256")  # HKDF-Extract (RFC 5869 §2.2)
    label = b"client in" if sender == "client" else b"server in"
    secret = _expand_label(initial_secret, label, 32)
    return InitialKeys(
        secret=secret,
        key=_expand_label(secret, rules.key_label, 16),
        iv=_expand_label(secret, rules.iv_label, 12),
        hp=_expand_label(secret, rules.hp_label, 16),
    )


def parse_quic_initial(datagram: bytes) -> QuicInitial:
    """The client Initial packet at the start of ``datagram``, decrypted; else ``ParseError``."""
    reader = _Reader(datagram, "datagram")
    first = reader.number(1, "first byte") if datagram else 0
    if not first & _LONG_HEADER:
        raise ParseError("not a QUIC long header packet")
    version = reader.number(4, "version")
    rules = _version_rules(version)
    packet_type = rules.packet_types[(first >> 4) & 0x03]
    if packet_type != "Initial":
        raise ParseError(f"not an Initial packet: a {packet_type} packet")
    dcid = _connection_id(reader, "destination")
    scid = _connection_id(reader, "source")
    token_length = reader.varint("token length")
    reader.take(token_length, "token")
    length = reader.varint("packet length")
    pn_offset = reader.offset
    end = pn_offset + length
    if end > len(datagram):
        raise ParseError(f"Initial packet length {length} runs past the end of the datagram")
    sample_start = pn_offset + _SAMPLE_OFFSET
    if sample_start + _SAMPLE_LENGTH > end:
        raise ParseError(f"Initial packet length {length} too short for a protection sample")

    keys = initial_keys(dcid, version)
    mask = _header_mask(keys.hp, datagram[sample_start : sample_start + _SAMPLE_LENGTH])
    first ^= mask[0] & 0x0F
    pn_length = (first & _PACKET_NUMBER_LENGTH) + 1
    pn_end = pn_offset + pn_length
    pn_mask = mask[1 : 1 + pn_length]
    pn_bytes = bytes(a ^ b for a, b in zip(datagram[pn_offset:pn_end], pn_mask, strict=True))
    packet_number = int.from_bytes(pn_bytes, "big")
    header = bytes((first,)) + datagram[1:pn_offset] + pn_bytes
    nonce = (int.from_bytes(keys.iv, "big") ^ packet_number).to_bytes(len(keys.iv), "big")
    try:
        payload = AESGCM(keys.key).decrypt(nonce, datagram[pn_end:end], header)
    except InvalidTag:
        raise ParseError("Initial packet does not decrypt") from None
    if first & _RESERVED_BITS:
        raise ParseError("Initial packet with reserved header bits set")
    crypto, frame_types = _read_frames(payload)
    return QuicInitial(
        version=version,
        dcid=dcid,
        scid=scid,
        token_length=token_length,
        packet_number=packet_number,
        crypto=crypto,
        frame_types=frame_types,
        size=end,
    )


def client_hello_from_initials(
    pieces: Iterable[CryptoPiece], max_size: int = DEFAULT_MAX_CLIENT_HELLO
) -> ClientHello | None:
    """The ClientHello in the CRYPTO stream these pieces make, ``None`` while incomplete.

    The pieces (``QuicInitial.crypto`` of one or more Initial packets, in any order, repeats
    allowed) are joined from offset 0 up to the first gap, and the contiguous bytes go to
    ``parse_client_hello_message``, whose outcomes this returns or raises. Pieces that
    overlap must agree on the bytes they share (RFC 9000 §2.2): two different versions of
    the same bytes are a ``ParseError``, since a server might read either. Only the first
    ``max_size`` bytes are joined and checked; the ClientHello cannot reach past them.
    """
    stream = bytearray()
    for offset, data in sorted(pieces, key=lambda piece: piece[0]):
        if offset > len(stream) or offset >= max_size:
            break  # a gap: every later piece starts past it too
        shared = min(len(stream) - offset, len(data))
        if stream[offset : offset + shared] != data[:shared]:
            raise ParseError(f"CRYPTO frames disagree on the bytes at offset {offset}")
        stream += data[shared : max_size - offset]
    return parse_client_hello_message(bytes(stream), max_size=max_size)


def _version_rules(version: int) -> _VersionRules:
    rules = _VERSIONS.get(version)
    if rules is None:
        raise ParseError(f"unsupported QUIC version 0x{version:08x}")
    return rules


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label with SHA-256 and an empty context (RFC 8446 §7.1)."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full_label),)) + full_label + b"\x00"
    return HKDFExpand(algorithm=SHA256(), length=length, info=info).derive(secret)


def _header_mask(hp_key: bytes, sample: bytes) -> bytes:
    """AES-based header protection: one block of AES-ECB over the sample (RFC 9001 §5.4.3)."""
    encryptor = Cipher(algorithms.AES(hp_key), modes.ECB()).encryptor()  # noqa: S305
    return encryptor.update(sample) + encryptor.finalize()


def _connection_id(reader: _Reader, which: str) -> bytes:
    length = reader.number(1, f"{which} connection ID length")
    if length > MAX_CONNECTION_ID:
        raise ParseError(f"{which} connection ID of {length} bytes over {MAX_CONNECTION_ID}")
    return reader.take(length, f"{which} connection ID")


def _read_frames(payload: bytes) -> tuple[tuple[CryptoPiece, ...], tuple[int, ...]]:
    """The CRYPTO pieces and the frame types of a decrypted Initial packet's payload."""
    if not payload:
        raise ParseError("Initial packet without frames")
    reader = _Reader(payload, "Initial packet")
    crypto: list[CryptoPiece] = []
    types: dict[int, None] = {}  # ordered, and a set
    while reader.remaining:
        start = reader.offset
        kind = reader.varint("frame type")
        if reader.offset - start != _varint_size(kind):
            raise ParseError(f"frame type 0x{kind:02x} not in its shortest encoding")
        types[kind] = None
        if kind == FRAME_PADDING:
            reader.skip_padding()
        elif kind == FRAME_PING:
            pass
        elif kind in (FRAME_ACK, FRAME_ACK_ECN):
            _read_ack(reader, ecn=kind == FRAME_ACK_ECN)
        elif kind == FRAME_CRYPTO:
            offset = reader.varint("CRYPTO offset")
            length = reader.varint("CRYPTO length")
            if offset + length > MAX_CRYPTO_OFFSET:
                raise ParseError("CRYPTO frame data past offset 2^62-1")
            crypto.append((offset, reader.take(length, "CRYPTO data")))
        elif kind == FRAME_CONNECTION_CLOSE:
            reader.varint("CONNECTION_CLOSE error code")
            reader.varint("CONNECTION_CLOSE frame type")
            reader.take(reader.varint("reason phrase length"), "reason phrase")
        else:
            raise ParseError(f"frame type 0x{kind:02x} not allowed in an Initial packet")
    return tuple(crypto), tuple(types)


def _read_ack(reader: _Reader, *, ecn: bool) -> None:
    """Skip an ACK frame, refusing ranges that reach below packet number 0 (RFC 9000 §19.3.1)."""
    largest = reader.varint("largest acknowledged")
    reader.varint("ACK delay")
    range_count = reader.varint("ACK range count")
    smallest = _acknowledged(largest - reader.varint("first ACK range"))
    for _ in range(range_count):  # each range takes at least 2 bytes: the payload bounds it
        largest = _acknowledged(smallest - reader.varint("ACK gap") - 2)
        smallest = _acknowledged(largest - reader.varint("ACK range length"))
    if ecn:
        for what in ("ECT0 count", "ECT1 count", "ECN-CE count"):
            reader.varint(what)


def _acknowledged(packet_number: int) -> int:
    if packet_number < 0:
        raise ParseError("ACK frame acknowledges a packet number below 0")
    return packet_number


def _varint_size(value: int) -> int:
    """The length of the shortest variable-length integer encoding of ``value``."""
    if value < 2**6:
        return 1
    if value < 2**14:
        return 2
    if value < 2**30:
        return 4
    return 8


class _Reader:
    """Reads a byte string front to back; a field past its end is a ``ParseError``."""

    __slots__ = ("data", "offset", "scope")

    def __init__(self, data: bytes, scope: str) -> None:
        self.data = data
        self.offset = 0
        self.scope = scope

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, count: int, what: str) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise ParseError(f"{what} runs past the end of the {self.scope}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def number(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def varint(self, what: str) -> int:
        """A variable-length integer (RFC 9000 §16): 1, 2, 4 or 8 bytes, by its top 2 bits."""
        if self.offset >= len(self.data):
            raise ParseError(f"{what} runs past the end of the {self.scope}")
        size = 1 << (self.data[self.offset] >> 6)
        return self.number(size, what) & ((1 << (8 * size - 2)) - 1)

    def skip_padding(self) -> None:
        """Move past a run of PADDING (zero) bytes."""
        found = _NOT_PADDING.search(self.data, self.offset)
        self.offset = found.start() if found else len(self.data)
