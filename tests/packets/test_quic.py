"""parse_quic_initial and client_hello_from_initials: RFC samples, real Initials, crafted, mangled.

The RFC 9001 and RFC 9369 sample packets (``quic_vectors.py``) pin the key schedule and the
packet protection; ``quic_corpus/`` holds aioquic client Initials replayed as files, and
further ones are made fresh by aioquic here (``quic_clients.py``), which also opens them as
an independent reader and seals the crafted packets below. aioquic is a test dependency
only: the gateway never uses it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.errors import ParseError
from gatewayd.packets import (
    DEFAULT_MAX_CLIENT_HELLO,
    QUIC_VERSION_1,
    QUIC_VERSION_2,
    ClientHello,
    ClientHelloTooLarge,
    QuicInitial,
    client_hello_from_initials,
    initial_keys,
    ja4,
    parse_client_hello,
    parse_client_hello_message,
    parse_quic_initial,
)

from .quic_clients import client_initials, decrypt_initial, protect_initial
from .quic_vectors import (
    CLIENT_CRYPTO_FRAME,
    CLIENT_PAYLOAD_LENGTH,
    DCID,
    RFC9001,
    RFC9369,
)

CORPUS_DIR = Path(__file__).parent / "quic_corpus"
TLS_CORPUS_DIR = Path(__file__).parent / "tls_corpus"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VECTORS = {"rfc9001": RFC9001, "rfc9369": RFC9369}
INITIAL_TYPE_BITS = {QUIC_VERSION_1: 0, QUIC_VERSION_2: 1}
RFC_CLIENT_HELLO = CLIENT_CRYPTO_FRAME[4:]  # after the frame type, offset and length
EXTRA_ALPN = tuple(f"x-clawgress-padding-{index:03d}" for index in range(40))


def corpus_groups() -> dict[str, list[bytes]]:
    """The corpus files by connection attempt: ``NAME.bin``, or ``NAME.1.bin``, ``NAME.2.bin``."""
    groups: dict[str, list[tuple[int, bytes]]] = {}
    for path in CORPUS_DIR.glob("*.bin"):
        name, _, index = path.stem.partition(".")
        groups.setdefault(name, []).append((int(index or 0), path.read_bytes()))
    return {name: [data for _, data in sorted(parts)] for name, parts in sorted(groups.items())}


CORPUS = corpus_groups()
ALL_INITIALS = [
    RFC9001.client_initial,
    RFC9369.client_initial,
    *(data for datagrams in CORPUS.values() for data in datagrams),
]


# --- building Initial packets --------------------------------------------------------------


def varint(value: int, size: int | None = None) -> bytes:
    """``value`` as a QUIC variable-length integer, in its shortest form unless ``size``."""
    if size is None:
        size = next(n for n in (1, 2, 4, 8) if value < 1 << (8 * n - 2))
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}[size] << (8 * size - 2)
    return (prefix | value).to_bytes(size, "big")


def initial(
    payload: bytes,
    *,
    version: int = QUIC_VERSION_1,
    dcid: bytes = DCID,
    scid: bytes = b"",
    token: bytes = b"",
    packet_number: int = 0,
    pn_length: int = 1,
    reserved: int = 0,
) -> bytes:
    """A client Initial carrying ``payload`` (its frames), sealed by aioquic."""
    first = 0xC0 | INITIAL_TYPE_BITS[version] << 4 | reserved << 2 | (pn_length - 1)
    header = (
        bytes((first,))
        + version.to_bytes(4, "big")
        + bytes((len(dcid),))
        + dcid
        + bytes((len(scid),))
        + scid
        + varint(len(token))
        + token
        + varint(pn_length + len(payload) + 16, 2)
        + packet_number.to_bytes(pn_length, "big")
    )
    return protect_initial(header, payload, packet_number, dcid, version=version)


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def padded(frames: bytes) -> bytes:
    """Frames followed by enough PADDING for a header protection sample."""
    return frames + bytes(max(0, 4 - len(frames)))


# --- key schedule and the RFC sample packets -----------------------------------------------


@pytest.mark.parametrize("name", VECTORS)
@pytest.mark.parametrize("sender", ["client", "server"])
def test_initial_keys_match_the_rfc(name: str, sender: str) -> None:
    vectors = VECTORS[name]
    expected = vectors.client if sender == "client" else vectors.server
    keys = initial_keys(DCID, vectors.version, sender)
    assert keys.secret == expected.secret
    assert keys.key == expected.key
    assert keys.iv == expected.iv
    assert keys.hp == expected.hp


def test_initial_keys_refuse_other_versions() -> None:
    with pytest.raises(ParseError, match=r"^unsupported QUIC version 0xff00001d$"):
        initial_keys(DCID, 0xFF00001D)


@pytest.mark.parametrize("name", VECTORS)
def test_rfc_client_initial(name: str) -> None:
    vectors = VECTORS[name]
    packet = parse_quic_initial(vectors.client_initial)
    assert packet == QuicInitial(
        version=vectors.version,
        dcid=DCID,
        scid=b"",
        token_length=0,
        packet_number=2,
        crypto=((0, RFC_CLIENT_HELLO),),
        frame_types=(0x06, 0x00),
        size=1200,
    )
    hello = client_hello_from_initials(packet.crypto)
    assert hello is not None
    assert hello.sni == "example.com"
    assert hello.alpn == (b"alpn",)
    assert hello.size == len(RFC_CLIENT_HELLO)
    assert ja4(hello, transport="quic").startswith("q13d0211an_")


@pytest.mark.parametrize("name", VECTORS)
def test_the_builder_seals_the_rfc_packet(name: str) -> None:
    """The test's packet builder (aioquic's sealing) reproduces the RFC's client Initial."""
    vectors = VECTORS[name]
    payload = CLIENT_CRYPTO_FRAME + bytes(CLIENT_PAYLOAD_LENGTH - len(CLIENT_CRYPTO_FRAME))
    sealed = initial(payload, version=vectors.version, packet_number=2, pn_length=4)
    assert sealed == vectors.client_initial


@pytest.mark.parametrize("name", VECTORS)
def test_a_server_initial_does_not_decrypt(name: str) -> None:
    with pytest.raises(ParseError, match=r"^Initial packet does not decrypt$"):
        parse_quic_initial(VECTORS[name].server_initial)


@pytest.mark.parametrize("name", VECTORS)
def test_coalesced_packets_after_the_initial_are_not_read(name: str) -> None:
    vectors = VECTORS[name]
    alone = parse_quic_initial(vectors.client_initial)
    for tail in (vectors.server_initial, b"\xff" * 40, bytes(100)):
        assert parse_quic_initial(vectors.client_initial + tail) == alone


def test_every_changed_byte_of_the_rfc_packet_is_refused() -> None:
    """Header and payload are all authenticated: no byte of the packet can change unnoticed."""
    packet = RFC9001.client_initial
    for index in range(len(packet)):
        for flip in (0x01, 0x40, 0x80):
            mangled = bytearray(packet)
            mangled[index] ^= flip
            with pytest.raises(ParseError):
                parse_quic_initial(bytes(mangled))


# --- header rules --------------------------------------------------------------------------


def _with_first_byte(packet: bytes, first: int) -> bytes:
    return bytes((first,)) + packet[1:]


V1 = RFC9001.client_initial
V2 = RFC9369.client_initial
HEADER_CASES = {
    "empty": (b"", r"not a QUIC long header packet"),
    "short header": (_with_first_byte(V1, 0x40), r"not a QUIC long header packet"),
    "no version": (b"\xc0\x00\x00", r"version runs past the end of the datagram"),
    "version negotiation": (V1[:1] + bytes(4) + V1[5:], r"unsupported QUIC version 0x00000000"),
    "draft-29": (V1[:1] + b"\xff\x00\x00\x1d" + V1[5:], r"unsupported QUIC version 0xff00001d"),
    "v1 0-RTT": (_with_first_byte(V1, 0xD0), r"not an Initial packet: a 0-RTT packet"),
    "v1 Handshake": (_with_first_byte(V1, 0xE0), r"not an Initial packet: a Handshake packet"),
    "v1 Retry": (_with_first_byte(V1, 0xF0), r"not an Initial packet: a Retry packet"),
    "v2 Retry": (_with_first_byte(V2, 0xC0), r"not an Initial packet: a Retry packet"),
    "v2 Handshake": (_with_first_byte(V2, 0xF0), r"not an Initial packet: a Handshake packet"),
    "long DCID": (
        V1[:5] + b"\x15" + bytes(21) + b"\x00\x00",
        r"destination connection ID of 21 bytes over 20",
    ),
    "long SCID": (V1[:14] + b"\x15" + bytes(30), r"source connection ID of 21 bytes over 20"),
    "cut DCID": (V1[:10], r"destination connection ID runs past the end of the datagram"),
    "cut token": (V1[:15] + b"\x40\x64" + bytes(20), r"token runs past the end of the datagram"),
    "cut length": (V1[:16] + b"\x44", r"packet length runs past the end of the datagram"),
    "cut packet": (V1[:-1], r"Initial packet length 1182 runs past the end of the datagram"),
    "no sample": (
        V1[:16] + b"\x40\x13" + bytes(19),
        r"Initial packet length 19 too short for a protection sample",
    ),
    "garbage payload": (V1[:18] + bytes(1182), r"Initial packet does not decrypt"),
}


@pytest.mark.parametrize("case", HEADER_CASES)
def test_header_refusals(case: str) -> None:
    data, expected = HEADER_CASES[case]
    with pytest.raises(ParseError, match=f"^{expected}$"):
        parse_quic_initial(data)


def test_reserved_bits_are_refused_after_decryption() -> None:
    packet = initial(padded(b"\x01"), reserved=0b10)
    with pytest.raises(ParseError, match=r"^Initial packet with reserved header bits set$"):
        parse_quic_initial(packet)


def test_connection_ids_token_and_packet_number_are_reported() -> None:
    dcid, scid = bytes(range(20)), b"\xaa" * 20
    packet = initial(
        crypto_frame(0, b"\x01"),
        dcid=dcid,
        scid=scid,
        token=b"t" * 70,
        packet_number=0x1234,
        pn_length=2,
    )
    parsed = parse_quic_initial(packet)
    assert (parsed.dcid, parsed.scid, parsed.token_length) == (dcid, scid, 70)
    assert parsed.packet_number == 0x1234
    assert parsed.size == len(packet)


def test_empty_connection_ids_are_accepted() -> None:
    parsed = parse_quic_initial(initial(padded(b"\x01"), dcid=b""))
    assert (parsed.dcid, parsed.scid) == (b"", b"")


# --- frame rules ---------------------------------------------------------------------------

ACK = b"\x02" + varint(5) + varint(0) + varint(1) + varint(1) + varint(0) + varint(1)
ACK_ECN = b"\x03" + varint(9) + varint(3) + varint(0) + varint(9) + varint(1) * 3
CLOSE = b"\x1c" + varint(0x0A) + varint(0x06) + varint(3) + b"bad"

ALLOWED_FRAMES: dict[str, tuple[bytes, tuple[tuple[int, bytes], ...], tuple[int, ...]]] = {
    "ping": (padded(b"\x01"), (), (0x01, 0x00)),
    "padding then crypto": (bytes(30) + crypto_frame(0, b"\x01\x00"), ((0, b"\x01\x00"),), (0, 6)),
    "two crypto": (
        crypto_frame(100, b"later") + b"\x01" + crypto_frame(0, b"first"),
        ((100, b"later"), (0, b"first")),
        (0x06, 0x01),
    ),
    "empty crypto": (padded(crypto_frame(7, b"")), ((7, b""),), (0x06, 0x00)),
    "ack": (ACK + crypto_frame(0, b"x"), ((0, b"x"),), (0x02, 0x06)),
    "ack with ecn": (ACK_ECN, (), (0x03,)),
    "connection close": (CLOSE, (), (0x1C,)),
    "padding and ping interleaved": (b"\x00\x01" * 50, (), (0x00, 0x01)),
    "crypto at the largest offset": (
        b"\x06" + varint(2**62 - 1, 8) + varint(0),
        ((2**62 - 1, b""),),
        (0x06,),
    ),
}


@pytest.mark.parametrize("case", ALLOWED_FRAMES)
def test_frames_an_initial_may_carry(case: str) -> None:
    payload, crypto, frame_types = ALLOWED_FRAMES[case]
    parsed = parse_quic_initial(initial(payload))
    assert parsed.crypto == crypto
    assert parsed.frame_types == frame_types


# RFC 9000 §12.4, Table 3: every other type, including application CONNECTION_CLOSE (0x1d).
FORBIDDEN_TYPES = [*range(0x04, 0x06), *range(0x07, 0x1C), *range(0x1D, 0x40), 0x4000, 2**40]


@pytest.mark.parametrize("kind", FORBIDDEN_TYPES)
def test_frames_an_initial_may_not_carry(kind: int) -> None:
    packet = initial(padded(b"\x01" + varint(kind) + bytes(8)))
    with pytest.raises(ParseError, match=f"^frame type 0x{kind:02x} not allowed in an Initial"):
        parse_quic_initial(packet)


FRAME_REFUSALS = {
    "padding, long form": (b"\x40\x00\x00\x00", r"frame type 0x00 not in its shortest encoding"),
    "crypto, long form": (
        b"\x80\x00\x00\x06" + varint(0) + varint(1) + b"x",
        r"frame type 0x06 not in its shortest encoding",
    ),
    "cut crypto data": (b"\x06\x00\x10abc", r"CRYPTO data runs past the end of the Initial packet"),
    "cut crypto offset": (
        b"\x01\x01\x06\x80",
        r"CRYPTO offset runs past the end of the Initial packet",
    ),
    "crypto past 2^62": (
        b"\x06" + varint(2**62 - 1, 8) + varint(1) + b"x",
        r"CRYPTO frame data past offset 2\^62-1",
    ),
    "ack, first range below 0": (
        b"\x02" + varint(3) + varint(0) + varint(0) + varint(4),
        r"ACK frame acknowledges a packet number below 0",
    ),
    "ack, gap below 0": (
        b"\x02" + varint(3) + varint(0) + varint(1) + varint(0) + varint(2) + varint(0),
        r"ACK frame acknowledges a packet number below 0",
    ),
    "ack, range below 0": (
        b"\x02" + varint(9) + varint(0) + varint(1) + varint(0) + varint(0) + varint(8),
        r"ACK frame acknowledges a packet number below 0",
    ),
    "ack, cut ranges": (
        b"\x02" + varint(9) + varint(0) + varint(2**30) + varint(0) + b"\x00",
        r"ACK range length runs past the end of the Initial packet",
    ),
    "ack, cut ecn counts": (
        b"\x03" + varint(9) + varint(0) + varint(0) + varint(0) + varint(1),
        r"ECT1 count runs past the end of the Initial packet",
    ),
    "close, cut reason": (
        b"\x1c" + varint(1) + varint(0) + varint(9) + b"ab",
        r"reason phrase runs past the end of the Initial packet",
    ),
}


@pytest.mark.parametrize("case", FRAME_REFUSALS)
def test_frame_refusals(case: str) -> None:
    payload, expected = FRAME_REFUSALS[case]
    with pytest.raises(ParseError, match=f"^{expected}$"):
        parse_quic_initial(initial(payload))


def test_a_packet_without_frames_is_refused() -> None:
    with pytest.raises(ParseError, match=r"^Initial packet without frames$"):
        parse_quic_initial(initial(b"", pn_length=4))


# --- joining CRYPTO pieces -----------------------------------------------------------------


def test_no_pieces_is_incomplete() -> None:
    assert client_hello_from_initials([]) is None


def test_every_prefix_of_the_stream_is_incomplete() -> None:
    for end in range(len(RFC_CLIENT_HELLO)):
        assert client_hello_from_initials([(0, RFC_CLIENT_HELLO[:end])]) is None


def test_a_gap_leaves_the_stream_incomplete_until_filled() -> None:
    head, middle, tail = RFC_CLIENT_HELLO[:50], RFC_CLIENT_HELLO[50:90], RFC_CLIENT_HELLO[90:]
    assert client_hello_from_initials([(0, head), (90, tail)]) is None
    hello = client_hello_from_initials([(90, tail), (0, head), (50, middle)])
    assert hello is not None and hello.sni == "example.com"


def test_overlapping_pieces_must_agree() -> None:
    changed = RFC_CLIENT_HELLO[40:60].replace(RFC_CLIENT_HELLO[45:46], b"\xee")
    assert changed != RFC_CLIENT_HELLO[40:60]
    pieces = [(0, RFC_CLIENT_HELLO), (40, changed)]
    with pytest.raises(ParseError, match=r"^CRYPTO frames disagree on the bytes at offset 40$"):
        client_hello_from_initials(pieces)
    with pytest.raises(ParseError, match=r"^CRYPTO frames disagree on the bytes at offset "):
        client_hello_from_initials(reversed(pieces))


def test_pieces_past_the_bound_are_not_joined() -> None:
    far = [(DEFAULT_MAX_CLIENT_HELLO, b"x" * 10), (2**62 - 5, b"y")]
    hello = client_hello_from_initials([(0, RFC_CLIENT_HELLO), *far])
    assert hello is not None and hello.sni == "example.com"


def test_the_size_bound() -> None:
    with pytest.raises(ClientHelloTooLarge, match=r"ClientHello of 241 bytes over the 200-byte"):
        client_hello_from_initials([(0, RFC_CLIENT_HELLO[:10])], max_size=200)
    assert client_hello_from_initials([(0, RFC_CLIENT_HELLO)], max_size=241) is not None


def test_a_stream_that_is_not_a_client_hello() -> None:
    with pytest.raises(ParseError, match=r"^handshake type 2, expected ClientHello \(1\)$"):
        client_hello_from_initials([(0, b"\x02")])


@given(st.data())
@FUZZ
def test_pieces_in_any_order_and_cut_any_way(data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(1, len(RFC_CLIENT_HELLO) - 1), max_size=8)))
    bounds = [0, *cuts, len(RFC_CLIENT_HELLO)]
    pieces = [(a, RFC_CLIENT_HELLO[a:b]) for a, b in pairwise(bounds)]
    repeats = data.draw(st.lists(st.sampled_from(pieces), max_size=4))
    shuffled = data.draw(st.permutations(pieces + repeats))
    assert client_hello_from_initials(shuffled) == client_hello_from_initials(
        [(0, RFC_CLIENT_HELLO)]
    )


# --- real clients: aioquic, fresh and from the corpus --------------------------------------


def read_datagrams(datagrams: Sequence[bytes]) -> tuple[list[QuicInitial], ClientHello | None]:
    packets = [parse_quic_initial(data) for data in datagrams]
    pieces = [piece for packet in packets for piece in packet.crypto]
    return packets, client_hello_from_initials(pieces)


def agrees_with_aioquic(datagram: bytes, packet: QuicInitial) -> bool:
    """aioquic, opening the packet as a server, finds the same packet number and CRYPTO data."""
    payload, packet_number, size = decrypt_initial(datagram)
    return (
        packet_number == packet.packet_number
        and size == packet.size
        and all(data in payload for _, data in packet.crypto)
    )


@pytest.mark.parametrize("version", [QUIC_VERSION_1, QUIC_VERSION_2])
@pytest.mark.parametrize(
    "sni", ["www.example.com", "a.b", "xn--bcher-kva.example", "api-1.internal.example.net"]
)
def test_aioquic_client_initials(sni: str, version: int) -> None:
    datagrams = client_initials(sni, ["h3"], version=version)
    packets, hello = read_datagrams(datagrams)
    assert [packet.version for packet in packets] == [version] * len(packets)
    assert all(agrees_with_aioquic(d, p) for d, p in zip(datagrams, packets, strict=True))
    assert hello is not None
    assert hello.sni == sni
    assert hello.alpn == (b"h3",)
    assert ja4(hello, transport="quic").startswith("q13d")


def test_aioquic_without_a_server_name() -> None:
    _, hello = read_datagrams(client_initials(None, ["h3", "h3-29"]))
    assert hello is not None
    assert hello.sni is None
    assert hello.alpn == (b"h3", b"h3-29")
    assert ja4(hello, transport="quic").startswith("q13i")


def test_a_client_hello_over_two_initial_packets() -> None:
    alpn = ["h3", *EXTRA_ALPN]
    datagrams = client_initials("big.example.com", alpn)
    assert len(datagrams) == 2
    first, second = (parse_quic_initial(data) for data in datagrams)
    assert first.dcid == second.dcid
    assert (first.packet_number, second.packet_number) == (0, 1)
    assert client_hello_from_initials(first.crypto) is None  # cut short
    assert client_hello_from_initials(second.crypto) is None  # no start
    for pieces in (first.crypto + second.crypto, second.crypto + first.crypto):
        hello = client_hello_from_initials(pieces)
        assert hello is not None
        assert hello.sni == "big.example.com"
        assert hello.alpn == tuple(name.encode() for name in alpn)
        assert ja4(hello, transport="quic").startswith("q13d")


def test_a_client_hello_over_many_initial_packets() -> None:
    alpn = ["h3", *(f"{name}-{copy}" for copy in range(5) for name in EXTRA_ALPN)]
    datagrams = client_initials("huge.example.com", alpn)
    assert len(datagrams) >= 5
    packets, hello = read_datagrams(datagrams)
    assert hello is not None and len(hello.alpn) == len(alpn)
    pieces = [piece for packet in packets for piece in packet.crypto]
    with pytest.raises(ClientHelloTooLarge):
        client_hello_from_initials(pieces, max_size=4096)


class Expected:
    """What a corpus connection attempt's ClientHello carries (see the corpus README)."""

    def __init__(self, sni: str | None, alpn: Sequence[bytes], version: int, datagrams: int):
        self.sni, self.alpn, self.version, self.datagrams = sni, tuple(alpn), version, datagrams


EXPECTED = {
    "aioquic-h3": Expected("www.example.com", [b"h3"], QUIC_VERSION_1, 1),
    "aioquic-alpn-list": Expected(
        "api.example.net", [b"h3", b"h3-29", b"hq-interop"], QUIC_VERSION_1, 1
    ),
    "aioquic-no-sni": Expected(None, [b"h3"], QUIC_VERSION_1, 1),
    "aioquic-v2": Expected("v2.example.org", [b"h3"], QUIC_VERSION_2, 1),
    "aioquic-two-datagrams": Expected(
        "big.example.com", [b"h3", *(name.encode() for name in EXTRA_ALPN)], QUIC_VERSION_1, 2
    ),
}


def test_the_corpus_is_the_expected_one() -> None:
    assert sorted(CORPUS) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    expected, datagrams = EXPECTED[name], CORPUS[name]
    assert len(datagrams) == expected.datagrams
    packets, hello = read_datagrams(datagrams)
    assert {packet.version for packet in packets} == {expected.version}
    assert len({packet.dcid for packet in packets}) == 1
    assert [packet.packet_number for packet in packets] == list(range(len(packets)))
    assert all(agrees_with_aioquic(d, p) for d, p in zip(datagrams, packets, strict=True))
    assert hello is not None
    assert (hello.sni, hello.alpn) == (expected.sni, expected.alpn)
    assert ja4(hello, transport="quic").startswith("q13d" if expected.sni else "q13i")


# --- bare ClientHello messages (parse_client_hello_message) --------------------------------


def without_records(stream: bytes) -> bytes:
    """The handshake bytes of a TLS stream's records, their 5-byte headers taken out."""
    message, offset = b"", 0
    while offset < len(stream):
        length = int.from_bytes(stream[offset + 3 : offset + 5], "big")
        message += stream[offset + 5 : offset + 5 + length]
        offset += 5 + length
    return message


@pytest.mark.parametrize("path", sorted(TLS_CORPUS_DIR.glob("*.bin")), ids=lambda path: path.stem)
def test_a_bare_message_reads_as_its_records_do(path: Path) -> None:
    stream = path.read_bytes()
    framed = parse_client_hello(stream)
    message = without_records(stream)
    assert framed is not None
    assert parse_client_hello_message(message) == framed._replace(size=len(message))
    assert parse_client_hello_message(message + b"\x16\x03\x03") == framed._replace(
        size=len(message)
    )
    for end in range(0, len(message), 7):
        assert parse_client_hello_message(message[:end]) is None


def test_a_bare_message_refusals() -> None:
    with pytest.raises(ParseError, match=r"^handshake type 22, expected ClientHello \(1\)$"):
        parse_client_hello_message(b"\x16\x03")
    with pytest.raises(ClientHelloTooLarge):
        parse_client_hello_message(b"\x01\x01\x00\x00", max_size=1000)


# --- properties ----------------------------------------------------------------------------


def parses_or_refuses(data: bytes) -> QuicInitial | None:
    """The packet, or ``None`` for a ParseError with a one-line ASCII reason; nothing else."""
    try:
        return parse_quic_initial(data)
    except ParseError as err:
        reason = str(err)
    assert re.fullmatch(r"[\x20-\x7e]+", reason)
    return None


@given(st.binary(max_size=1500))
@FUZZ
def test_random_bytes(data: bytes) -> None:
    result = parses_or_refuses(data)
    assert result is None or isinstance(result, QuicInitial)


@given(
    st.sampled_from(
        [b"\xc0\x00\x00\x00\x01", b"\xd0\x6b\x33\x43\xcf", b"\xc3\x00\x00\x00\x01\x08"]
    ),
    st.binary(max_size=1300),
)
@FUZZ
def test_random_bytes_behind_an_initial_header(prefix: bytes, rest: bytes) -> None:
    with pytest.raises(ParseError):
        parse_quic_initial(prefix + rest)


@given(st.sampled_from(ALL_INITIALS), st.data())
@FUZZ
def test_mutated_initials(packet: bytes, data: st.DataObject) -> None:
    mutated = bytearray(packet)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated)))
        action = data.draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
        if action == "replace" and at < len(mutated):
            mutated[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del mutated[at : at + data.draw(st.integers(1, 8))]
        else:
            del mutated[at:]
    parses_or_refuses(bytes(mutated))


@given(st.sampled_from(ALL_INITIALS), st.data())
@FUZZ
def test_any_changed_byte_of_a_packet_is_refused(packet: bytes, data: st.DataObject) -> None:
    size = parse_quic_initial(packet).size
    index = data.draw(st.integers(0, size - 1))
    mangled = bytearray(packet)
    mangled[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ParseError):
        parse_quic_initial(bytes(mangled))


def _crypto(piece: tuple[int, bytes]) -> tuple[bytes, int, tuple[int, bytes] | None]:
    return crypto_frame(*piece), 0x06, piece


# Each drawn frame: its bytes, its type, and the CRYPTO piece it carries.
FRAMES = st.one_of(
    st.integers(1, 40).map(lambda run: (bytes(run), 0x00, None)),
    st.sampled_from([(b"\x01", 0x01, None), (ACK, 0x02, None), (ACK_ECN, 0x03, None)]),
    st.just((CLOSE, 0x1C, None)),
    st.tuples(st.integers(0, 2**62 - 100), st.binary(max_size=60)).map(_crypto),
)


@given(st.lists(FRAMES, min_size=1, max_size=12), st.integers(1, 4))
@SLOW_FUZZ
def test_frames_round_trip(
    frames: list[tuple[bytes, int, tuple[int, bytes] | None]], pn_length: int
) -> None:
    payload = b"".join(frame for frame, _, _ in frames)
    parsed = parse_quic_initial(initial(padded(payload), pn_length=pn_length, packet_number=7))
    assert parsed.crypto == tuple(piece for _, _, piece in frames if piece is not None)
    expected_types = dict.fromkeys(kind for _, kind, _ in frames)
    if len(payload) < 4:
        expected_types[0x00] = None
    assert parsed.frame_types == tuple(expected_types)
    assert parsed.packet_number == 7


@given(st.binary(min_size=4, max_size=300), st.sampled_from([QUIC_VERSION_1, QUIC_VERSION_2]))
@SLOW_FUZZ
def test_random_frames_in_a_sealed_packet(payload: bytes, version: int) -> None:
    parses_or_refuses(initial(payload, version=version))
