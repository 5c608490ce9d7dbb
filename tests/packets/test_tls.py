"""parse_client_hello on real ClientHellos, against scapy's reading, cut, split and mangled.

The corpus in ``tls_corpus/`` holds real clients' first bytes (see its README); the
builders below write ClientHellos field by field, for the rules the corpus cannot show and
for the property tests. scapy is a test dependency only: it reads the corpus as an
independent dissector.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scapy.layers.tls import extensions as scapy_ext
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.keyexchange_tls13 import TLS_Ext_KeyShare_CH
from scapy.layers.tls.record import TLS

from gatewayd.errors import ParseError
from gatewayd.packets import (
    DEFAULT_MAX_CLIENT_HELLO,
    MAX_CLIENT_HELLO_RECORDS,
    ClientHello,
    ClientHelloTooLarge,
    is_grease,
    parse_client_hello,
)

CORPUS_DIR = Path(__file__).parent / "tls_corpus"
CORPUS = {path.stem: path.read_bytes() for path in sorted(CORPUS_DIR.glob("*.bin"))}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

H2_HTTP11 = (b"h2", b"http/1.1")
TLS13_DOWN_TO_10 = (0x0304, 0x0303, 0x0302, 0x0301)


@dataclass(frozen=True)
class Expected:
    """What a corpus file's ClientHello carries, as its client was asked to send it."""

    sni: str | None
    alpn: tuple[bytes, ...]
    supported_versions: tuple[int, ...]
    records: int
    ech: bool = False
    legacy_version: int = 0x0303


EXPECTED = {
    "chrome136": Expected("www.example.com", H2_HTTP11, (0xFAFA, 0x0304, 0x0303), 1, ech=True),
    "crafted-ech-grease-two-records": Expected(
        "public.ech.example", H2_HTTP11, (0xEAEA, 0x0304, 0x0303), 2, ech=True
    ),
    "crafted-tls1.0-no-extensions": Expected(None, (), (), 1, legacy_version=0x0301),
    "curl-h2": Expected("api.example.com", H2_HTTP11, TLS13_DOWN_TO_10, 1),
    "curl-http1.1": Expected("api.example.com", (b"http/1.1",), TLS13_DOWN_TO_10, 1),
    "curl-ip-no-sni": Expected(None, H2_HTTP11, TLS13_DOWN_TO_10, 1),
    "firefox135": Expected("mail.example.net", H2_HTTP11, (0x0304, 0x0303), 1, ech=True),
    "openssl-ffdhe8192-records": Expected("big.example.com", (), (0x0304,), 3),
    "openssl-tls1.2": Expected("legacy.example.com", (), (), 1),
    "openssl-tls1.3": Expected("files.example.org", H2_HTTP11, (0x0304,), 1),
    "python-ssl": Expected("pypi.example.org", (), TLS13_DOWN_TO_10, 1),
}


# --- building ClientHellos -----------------------------------------------------------------


def vector(length_size: int, body: bytes) -> bytes:
    """``body`` behind its length."""
    return len(body).to_bytes(length_size, "big") + body


def u16s(*values: int) -> bytes:
    return b"".join(value.to_bytes(2, "big") for value in values)


def extension(kind: int, body: bytes = b"") -> bytes:
    return kind.to_bytes(2, "big") + vector(2, body)


def server_name(host: bytes, name_type: int = 0) -> bytes:
    return extension(0x0000, vector(2, bytes((name_type,)) + vector(2, host)))


def alpn(*protocols: bytes) -> bytes:
    return extension(0x0010, vector(2, b"".join(vector(1, name) for name in protocols)))


def supported_versions(*versions: int) -> bytes:
    return extension(0x002B, vector(1, u16s(*versions)))


def signature_algorithms(*algorithms: int) -> bytes:
    return extension(0x000D, vector(2, u16s(*algorithms)))


def supported_groups(*groups: int) -> bytes:
    return extension(0x000A, vector(2, u16s(*groups)))


def key_share(*shares: tuple[int, bytes]) -> bytes:
    entries = b"".join(u16s(group) + vector(2, key) for group, key in shares)
    return extension(0x0033, vector(2, entries))


def hello_message(
    *extensions: bytes,
    version: int = 0x0303,
    session_id: bytes = b"",
    ciphers: Sequence[int] = (0x1301,),
    compression: bytes = b"\x00",
    no_extensions_block: bool = False,
) -> bytes:
    """A ClientHello handshake message, its 4-byte header included."""
    body = (
        version.to_bytes(2, "big")
        + bytes(range(32))
        + vector(1, session_id)
        + vector(2, u16s(*ciphers))
        + vector(1, compression)
    )
    if not no_extensions_block:
        body += vector(2, b"".join(extensions))
    return b"\x01" + vector(3, body)


def records(message: bytes, sizes: Sequence[int] = (), *, version: int = 0x0301) -> bytes:
    """``message`` in handshake records whose fragments are ``sizes`` long, then the rest."""
    fragments, offset = [], 0
    for size in sizes:
        fragments.append(message[offset : offset + size])
        offset += size
    if offset < len(message):
        fragments.append(message[offset:])
    return b"".join(b"\x16" + version.to_bytes(2, "big") + vector(2, part) for part in fragments)


def stream(*extensions: bytes, **fields: Any) -> bytes:
    """A ClientHello in one record."""
    return records(hello_message(*extensions, **fields))


def handshake_message(data: bytes) -> bytes:
    """The handshake bytes of a stream of complete records."""
    message, offset = b"", 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        message += data[offset + 5 : offset + 5 + length]
        offset += 5 + length
    return message


def record_count(data: bytes) -> int:
    count, offset = 0, 0
    while offset < len(data):
        offset += 5 + int.from_bytes(data[offset + 3 : offset + 5], "big")
        count += 1
    return count


# --- the corpus ----------------------------------------------------------------------------


def test_every_corpus_file_has_expectations() -> None:
    assert set(CORPUS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_carries_what_its_client_sent(name: str) -> None:
    data, expected = CORPUS[name], EXPECTED[name]
    hello = parse_client_hello(data)
    assert hello is not None
    assert hello.sni == expected.sni
    assert hello.alpn == expected.alpn
    assert hello.supported_versions == expected.supported_versions
    assert hello.legacy_version == expected.legacy_version
    assert hello.ech is expected.ech
    assert hello.size == len(data)
    assert record_count(data) == expected.records


def dissect(data: bytes) -> dict[str, Any]:
    """The ClientHello fields scapy reads from ``data`` (its records joined into one)."""
    message = handshake_message(data)
    hello = TLS(b"\x16\x03\x01" + vector(2, message)).msg[0]
    assert isinstance(hello, TLSClientHello)
    found: dict[str, Any] = {
        "legacy_version": hello.version,
        "cipher_suites": tuple(hello.ciphers or ()),
        "extensions": tuple(ext.type for ext in hello.ext or ()),
        "sni": None,
        "alpn": (),
        "supported_versions": (),
        "signature_algorithms": (),
        "supported_groups": (),
        "key_share_groups": (),
    }
    for ext in hello.ext or ():
        if isinstance(ext, scapy_ext.TLS_Ext_ServerName):
            (entry,) = ext.servernames
            found["sni"] = entry.servername.decode().lower()
        elif isinstance(ext, scapy_ext.TLS_Ext_ALPN):
            found["alpn"] = tuple(protocol.protocol for protocol in ext.protocols)
        elif isinstance(ext, scapy_ext.TLS_Ext_SupportedVersion_CH):
            found["supported_versions"] = tuple(ext.versions)
        elif isinstance(ext, scapy_ext.TLS_Ext_SignatureAlgorithms):
            found["signature_algorithms"] = tuple(ext.sig_algs)
        elif isinstance(ext, scapy_ext.TLS_Ext_SupportedGroups):
            found["supported_groups"] = tuple(ext.groups)
        elif isinstance(ext, TLS_Ext_KeyShare_CH):
            found["key_share_groups"] = tuple(share.group for share in ext.client_shares)
    return found


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_parses_as_scapy_dissects_it(name: str) -> None:
    hello = parse_client_hello(CORPUS[name])
    assert hello is not None
    fields = hello._asdict()
    del fields["size"], fields["ech"]
    assert fields == dissect(CORPUS[name])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_cut_anywhere_is_incomplete(name: str) -> None:
    data = CORPUS[name]
    for length in range(len(data)):
        assert parse_client_hello(data[:length]) is None, length


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_in_other_records_is_the_same_hello(name: str) -> None:
    data = CORPUS[name]
    hello = parse_client_hello(data)
    assert hello is not None
    message = handshake_message(data)
    for sizes in ([len(message)], [1] * 15, [4, 1, 100], [len(message) // 2]):
        split = records(message, sizes, version=0x0303)
        assert parse_client_hello(split) == hello._replace(size=len(split)), sizes


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_ignores_what_follows_the_hello(name: str) -> None:
    data = CORPUS[name]
    change_cipher_spec = b"\x14\x03\x03\x00\x01\x01"
    assert parse_client_hello(data + change_cipher_spec + b"\x17\x03\x03") == parse_client_hello(
        data
    )


def test_corpus_covers_the_cases_it_is_for() -> None:
    hellos = {name: parse_client_hello(data) for name, data in CORPUS.items()}
    assert all(hello is not None for hello in hellos.values())
    parsed = [hello for hello in hellos.values() if hello is not None]
    assert any(hello.sni is None and hello.extensions for hello in parsed)
    assert any(hello.ech for hello in parsed)
    assert any(0x11EC in hello.key_share_groups for hello in parsed)  # X25519MLKEM768
    assert any(hello.size > 1500 for hello in parsed)  # more than one Ethernet MTU
    assert sum(record_count(data) > 1 for data in CORPUS.values()) >= 2
    assert any(any(map(is_grease, hello.cipher_suites)) for hello in parsed)
    assert any(not hello.supported_versions and hello.extensions for hello in parsed)  # TLS 1.2


def test_grease_values_are_kept_in_order() -> None:
    hello = parse_client_hello(CORPUS["crafted-ech-grease-two-records"])
    assert hello is not None
    assert hello.cipher_suites[0] == 0x3A3A
    assert (hello.extensions[0], hello.extensions[-1]) == (0x6A6A, 0x9A9A)
    assert hello.supported_groups[0] == hello.key_share_groups[0] == 0xDADA
    assert hello.signature_algorithms[0] == 0x2A2A


# --- the rules, one by one -----------------------------------------------------------------


def _hello_with_body_tail(tail: bytes) -> bytes:
    """A ClientHello whose body after the compression methods is ``tail``."""
    body = b"\x03\x03" + bytes(32) + b"\x00" + vector(2, u16s(0x1301)) + b"\x01\x00" + tail
    return records(b"\x01" + vector(3, body))


_MESSAGE = hello_message(server_name(b"example.com"))
_SSLV2_HELLO = bytes.fromhex("802b0103010012000000100700c0030080010080060040040080020080")

INVALID: dict[str, tuple[bytes, str]] = {
    "HTTP request": (b"GET / HTTP/1.1\r\n", "not TLS"),
    "SSLv2 hello": (_SSLV2_HELLO, "not TLS"),
    "alert first": (b"\x15\x03\x01\x00\x02\x02\x28", "not TLS"),
    "record version 0x0300": (b"\x16\x03\x00", "record version 0x0300 outside"),
    "record version 0x0304": (b"\x16\x03\x04\x00\x10", "record version 0x0304 outside"),
    "record version 0xfeff": (b"\x16\xfe\xff", "record version 0xfeff outside"),
    "empty record": (b"\x16\x03\x01\x00\x00", "empty handshake record"),
    "record over 2^14": (b"\x16\x03\x01\x40\x01", "record length 16385 over 16384"),
    "ServerHello": (b"\x16\x03\x03\x00\x04\x02\x00\x00\x26", "handshake type 2, expected"),
    "alert between records": (
        records(_MESSAGE, [10])[:15] + b"\x15\x03\x03\x00\x02\x02\x28",
        "content type 21 record inside the ClientHello",
    ),
    "ChangeCipherSpec between records": (
        records(_MESSAGE, [3])[:8] + b"\x14\x03\x03\x00\x01\x01",
        "content type 20 record inside the ClientHello",
    ),
    "empty record between records": (
        records(_MESSAGE, [3])[:8] + b"\x16\x03\x03\x00\x00",
        "empty handshake record",
    ),
    "record runs past the hello": (
        b"\x16\x03\x01" + vector(2, _MESSAGE + b"\x00"),
        "handshake record runs past the end of the ClientHello",
    ),
    "second handshake message in the record": (
        b"\x16\x03\x01" + vector(2, _MESSAGE + b"\x14\x00\x00\x00"),
        "handshake record runs past the end of the ClientHello",
    ),
    "later record runs past the hello": (
        records(_MESSAGE, [10])[:15] + b"\x16\x03\x03\x01\x00",
        "handshake record runs past the end of the ClientHello",
    ),
    "handshake length zero": (b"\x16\x03\x01\x00\x04\x01\x00\x00\x00", "legacy_version runs past"),
    "legacy version 0x0200": (stream(version=0x0200), "ClientHello version 0x0200, expected"),
    "legacy version 0xfefd": (stream(version=0xFEFD), "ClientHello version 0xfefd, expected"),
    "random cut short": (records(b"\x01" + vector(3, b"\x03\x03" + bytes(31))), "random runs"),
    "session id of 33 bytes": (stream(session_id=bytes(33)), "session id of 33 bytes over 32"),
    "session id past the end": (
        records(b"\x01" + vector(3, b"\x03\x03" + bytes(32) + b"\x20")),
        "session id runs past the end of the ClientHello",
    ),
    "no cipher suites": (stream(ciphers=()), "cipher suites of 0 bytes, at least 2 required"),
    "odd cipher suites": (
        records(b"\x01" + vector(3, b"\x03\x03" + bytes(33) + b"\x00\x03\x13\x01\x13\x01\x00")),
        "cipher suites of odd length 3",
    ),
    "no compression methods": (stream(compression=b""), "compression methods of 0 bytes"),
    "compression without null": (stream(compression=b"\x01"), "compression methods without null"),
    "one byte for the extensions length": (
        _hello_with_body_tail(b"\x00"),
        "extensions length runs past the end of the ClientHello",
    ),
    "extensions longer than the hello": (
        _hello_with_body_tail(b"\x00\x05" + extension(0x0017)),
        "extensions runs past the end of the ClientHello",
    ),
    "bytes after the extensions": (
        _hello_with_body_tail(b"\x00\x00\x00"),
        "1 bytes after the end of the ClientHello",
    ),
    "extension header cut": (
        _hello_with_body_tail(vector(2, b"\x00\x17\x00")),
        "extension 0x0017 length runs past the end of the extensions",
    ),
    "extension body past the block": (
        _hello_with_body_tail(vector(2, b"\x00\x17\x00\x01")),
        "extension 0x0017 runs past the end of the extensions",
    ),
    "extension repeated": (stream(extension(0x0017), extension(0x0017)), "0x0017 repeated"),
    "GREASE extension repeated": (stream(extension(0x0A0A), extension(0x0A0A)), "repeated"),
    "server_name repeated": (
        stream(server_name(b"a.example"), server_name(b"b.example")),
        "extension 0x0000 repeated",
    ),
    "pre_shared_key not last": (
        stream(extension(0x0029, b"\x00"), extension(0x0017)),
        "pre_shared_key extension not last",
    ),
    "server_name empty": (stream(extension(0x0000)), "server name list length runs past"),
    "server name list empty": (
        stream(extension(0x0000, vector(2, b""))),
        "server name list of 0 bytes",
    ),
    "server name empty": (stream(server_name(b"")), "host name of 0 bytes"),
    "server name type 1": (stream(server_name(b"a", name_type=1)), "server name type 1"),
    "two server names": (
        stream(extension(0x0000, vector(2, b"\x00" + vector(2, b"a") + b"\x00" + vector(2, b"b")))),
        "more than one server name",
    ),
    "bytes after the server name list": (
        stream(extension(0x0000, vector(2, b"\x00" + vector(2, b"a")) + b"\x00")),
        "1 bytes after the end of the server_name extension",
    ),
    "host name past the list": (
        stream(extension(0x0000, vector(2, b"\x00\x00\x05abc"))),
        "host name runs past the end of the server name list",
    ),
    "non-ASCII server name": (stream(server_name("bücher.de".encode())), "non-ASCII server"),
    "server name with a space": (stream(server_name(b"a b.example")), "a character outside"),
    "server name with a NUL": (stream(server_name(b"evil.com\x00.example")), "a character"),
    "wildcard server name": (stream(server_name(b"*.example.com")), "a character outside"),
    "trailing dot": (stream(server_name(b"example.com.")), "server name with an empty label"),
    "leading dot": (stream(server_name(b".example.com")), "server name with an empty label"),
    "double dot": (stream(server_name(b"a..example")), "server name with an empty label"),
    "label of 64": (stream(server_name(b"a" * 64 + b".com")), "label of 64 bytes over 63"),
    "server name of 254": (
        stream(server_name(b".".join([b"a" * 63] * 3) + b"." + b"b" * 62)),
        "server name of 254 bytes over 253",
    ),
    "ALPN empty": (stream(extension(0x0010)), "ALPN protocol list length runs past"),
    "ALPN list empty": (stream(extension(0x0010, vector(2, b""))), "ALPN protocol list of 0"),
    "ALPN empty protocol": (stream(alpn(b"h2", b"")), "ALPN protocol name of 0 bytes"),
    "ALPN protocol past the list": (
        stream(extension(0x0010, vector(2, b"\x05h2"))),
        "ALPN protocol name runs past the end of the ALPN protocol list",
    ),
    "supported_versions empty": (stream(supported_versions()), "supported_versions of 0 bytes"),
    "supported_versions odd": (
        stream(extension(0x002B, vector(1, b"\x03\x04\x03"))),
        "supported_versions of odd length 3",
    ),
    "signature_algorithms empty": (
        stream(signature_algorithms()),
        "signature_algorithms of 0 bytes",
    ),
    "supported_groups odd": (
        stream(extension(0x000A, vector(2, b"\x00\x1d\x00"))),
        "supported_groups of odd length 3",
    ),
    "bytes after supported_groups": (
        stream(extension(0x000A, vector(2, u16s(0x1D)) + b"\x00")),
        "1 bytes after the end of the supported_groups extension",
    ),
    "key share with an empty key": (stream(key_share((0x1D, b""))), "key exchange of 0 bytes"),
    "two key shares for a group": (
        stream(key_share((0x1D, bytes(32)), (0x1D, bytes(32)))),
        "two key shares for group 0x001d",
    ),
    "key share entry cut": (
        stream(extension(0x0033, vector(2, b"\x00\x1d\x00\x20" + bytes(8)))),
        "key exchange runs past the end of the client shares",
    ),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_input_is_refused_with_a_reason(name: str) -> None:
    data, reason = INVALID[name]
    with pytest.raises(ParseError, match=reason) as refused:
        parse_client_hello(data)
    assert not isinstance(refused.value, ClientHelloTooLarge)
    assert_grows_consistently(data)


def test_empty_input_is_incomplete() -> None:
    assert parse_client_hello(b"") is None
    assert parse_client_hello(b"\x16") is None
    assert parse_client_hello(b"\x16\x03\x01\x02\x00\x01") is None


def test_host_names_at_the_bounds_are_accepted() -> None:
    longest = b".".join([b"a" * 63] * 3) + b"." + b"b" * 61
    hello = parse_client_hello(stream(server_name(longest)))
    assert hello is not None and hello.sni == longest.decode()
    hello = parse_client_hello(stream(server_name(b"_Acme-1.EXAMPLE.com")))
    assert hello is not None and hello.sni == "_acme-1.example.com"
    hello = parse_client_hello(stream(server_name(b"x")))
    assert hello is not None and hello.sni == "x"


def test_hello_without_extensions_block() -> None:
    data = stream(no_extensions_block=True, version=0x0301)
    hello = parse_client_hello(data)
    assert hello == ClientHello(0x0301, None, (), (), (0x1301,), (), (), (), (), False, len(data))


def test_empty_extensions_block_and_empty_key_share_list() -> None:
    assert parse_client_hello(stream()) is not None
    hello = parse_client_hello(stream(key_share()))
    assert hello is not None and hello.key_share_groups == ()


def test_unknown_extensions_are_carried_by_type() -> None:
    hello = parse_client_hello(stream(extension(0x1234, b"anything"), extension(0xFE0D, b"")))
    assert hello is not None
    assert hello.extensions == (0x1234, 0xFE0D)
    assert hello.ech


def test_pre_shared_key_last_is_accepted() -> None:
    hello = parse_client_hello(stream(extension(0x0017), extension(0x0029, b"\x00")))
    assert hello is not None and hello.extensions == (0x0017, 0x0029)


@pytest.mark.parametrize("version", [0x0301, 0x0302, 0x0303])
def test_each_legacy_record_version_is_accepted(version: int) -> None:
    hello = parse_client_hello(records(_MESSAGE, [5], version=version))
    assert hello is not None and hello.sni == "example.com"


def test_is_grease_matches_rfc_8701_exactly() -> None:
    grease = {0x0A0A + 0x1010 * step for step in range(16)}
    assert {value for value in range(0x10000) if is_grease(value)} == grease


# --- bounds --------------------------------------------------------------------------------


def _padded_hello(size: int) -> bytes:
    """A ClientHello message of exactly ``size`` bytes, header included."""
    base = hello_message(extension(0x0015, b""))
    return hello_message(extension(0x0015, bytes(size - len(base))))


def test_size_bound_is_a_parameter_and_counts_the_header() -> None:
    message = _padded_hello(1000)
    assert len(message) == 1000
    assert parse_client_hello(records(message), max_size=1000) is not None
    with pytest.raises(ClientHelloTooLarge, match="ClientHello of 1000 bytes over the 999-byte"):
        parse_client_hello(records(message)[:9], max_size=999)


def test_default_size_bound() -> None:
    message = _padded_hello(DEFAULT_MAX_CLIENT_HELLO)
    assert parse_client_hello(records(message, [2**14])) is not None
    oversized = _padded_hello(DEFAULT_MAX_CLIENT_HELLO + 1)
    with pytest.raises(ClientHelloTooLarge):
        parse_client_hello(records(oversized, [2**14])[:9])


def test_record_bound_is_a_parameter() -> None:
    message = _padded_hello(200)
    split = records(message, [10] * (MAX_CLIENT_HELLO_RECORDS - 1))
    assert record_count(split) == MAX_CLIENT_HELLO_RECORDS
    assert parse_client_hello(split) is not None
    split = records(message, [10] * MAX_CLIENT_HELLO_RECORDS)
    with pytest.raises(ClientHelloTooLarge, match="more than 16 records"):
        parse_client_hello(split)
    with pytest.raises(ClientHelloTooLarge, match="more than 2 records"):
        parse_client_hello(records(message, [100, 50]), max_records=2)


def test_one_byte_records_are_refused_early() -> None:
    data = records(_padded_hello(5000), [1] * 5000)
    with pytest.raises(ClientHelloTooLarge):
        parse_client_hello(data[: 6 * (MAX_CLIENT_HELLO_RECORDS + 1)])


@given(st.binary(max_size=400), st.integers(4, 300), st.integers(1, 6))
@FUZZ
def test_incomplete_input_stays_within_the_bounds(data: bytes, size: int, count: int) -> None:
    data = b"\x16\x03\x01" + data
    try:
        hello = parse_client_hello(data, max_size=size, max_records=count)
    except ParseError:
        return
    if hello is None:
        assert len(data) < size + 5 * count
    else:
        assert len(handshake_message(data[: hello.size])) <= size
        assert record_count(data[: hello.size]) <= count


# --- the fuzz invariant --------------------------------------------------------------------


def parse_or_refuse(data: bytes) -> ClientHello | None:
    """The fuzz invariant: a ClientHello consistent with ``data``, ``None``, or ParseError."""
    try:
        hello = parse_client_hello(data)
    except ParseError as err:
        event(f"refused: {re.sub(r'0x[0-9a-f]+|[0-9]+', 'N', str(err))}")
        return None
    if hello is None:
        event("incomplete")
        return None
    event("parsed")
    assert 0 < hello.size <= len(data)
    assert parse_client_hello(data[: hello.size]) == hello
    assert hello.ech is (0xFE0D in hello.extensions)
    assert (hello.sni is not None) is (0x0000 in hello.extensions)
    return hello


def assert_grows_consistently(data: bytes) -> None:
    """Fed one byte more at a time: ``None`` until a result, then that same result."""
    settled: ClientHello | str | None = None
    for length in range(len(data) + 1):
        try:
            result: ClientHello | str | None = parse_client_hello(data[:length])
        except ParseError as err:
            result = f"{type(err).__name__}: {err}"
        if settled is None:
            settled = result
        else:
            assert result == settled, length


@given(st.binary(max_size=300))
@FUZZ
def test_random_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@given(st.binary(max_size=300))
@FUZZ
def test_bytes_behind_a_handshake_record_header(data: bytes) -> None:
    parse_or_refuse(b"\x16\x03\x01" + data)
    parse_or_refuse(b"\x16\x03\x03\x01\x00\x01" + data)


# --- generated ClientHellos ----------------------------------------------------------------

_HOST_LABEL = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", max_size=12
)
U16 = st.integers(0, 0xFFFF)
GREASE = st.sampled_from([0x0A0A + 0x1010 * step for step in range(16)])
# Extension types the parser decodes (built above when drawn) or wants last (0x0029).
_DECODED = frozenset((0x0000, 0x000A, 0x000D, 0x0010, 0x0029, 0x002B, 0x0033, 0xFE0D))


@dataclass(frozen=True)
class Built:
    """A ClientHello message and the ``ClientHello`` fields it must parse to (but ``size``)."""

    message: bytes
    expected: dict[str, Any]


@st.composite
def client_hellos(draw: st.DrawFn) -> Built:
    """A valid ClientHello with random offers, extensions in random order and GREASE."""
    expected: dict[str, Any] = {
        "legacy_version": draw(st.integers(0x0300, 0x03FF)),
        "sni": None,
        "alpn": (),
        "supported_versions": (),
        "cipher_suites": tuple(draw(st.lists(st.one_of(U16, GREASE), min_size=1, max_size=40))),
        "signature_algorithms": (),
        "supported_groups": (),
        "key_share_groups": (),
        "ech": False,
    }
    pieces: list[tuple[int, bytes]] = []
    if draw(st.booleans()):
        labels = draw(st.lists(_HOST_LABEL.filter(bool), min_size=1, max_size=4))
        host = ".".join(labels)
        pieces.append((0x0000, server_name(host.encode())))
        expected["sni"] = host.lower()
    if draw(st.booleans()):
        names = tuple(draw(st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=4)))
        pieces.append((0x0010, alpn(*names)))
        expected["alpn"] = names
    for kind, field, build in (
        (0x002B, "supported_versions", supported_versions),
        (0x000D, "signature_algorithms", signature_algorithms),
        (0x000A, "supported_groups", supported_groups),
    ):
        if draw(st.booleans()):
            values = tuple(draw(st.lists(st.one_of(U16, GREASE), min_size=1, max_size=20)))
            pieces.append((kind, build(*values)))
            expected[field] = values
    if draw(st.booleans()):
        groups = draw(st.lists(st.one_of(U16, GREASE), unique=True, max_size=4))
        keys = [
            draw(st.one_of(st.binary(min_size=1, max_size=48), st.just(bytes(1216))))
            for _ in groups
        ]
        pieces.append((0x0033, key_share(*zip(groups, keys, strict=True))))
        expected["key_share_groups"] = tuple(groups)
    if draw(st.booleans()):
        pieces.append((0xFE0D, extension(0xFE0D, draw(st.binary(max_size=64)))))
        expected["ech"] = True
    others = draw(
        st.lists(
            st.one_of(U16, GREASE).map(lambda kind: kind ^ 0x4000 if kind in _DECODED else kind),
            unique=True,
            max_size=8,
        )
    )
    pieces += [(kind, extension(kind, draw(st.binary(max_size=16)))) for kind in others]
    pieces = draw(st.permutations(pieces))
    if draw(st.booleans()):
        pieces.append((0x0029, extension(0x0029, draw(st.binary(min_size=1, max_size=40)))))
    no_block = not pieces and draw(st.booleans())
    message = hello_message(
        *(piece for _, piece in pieces),
        version=expected["legacy_version"],
        session_id=draw(st.binary(max_size=32)),
        ciphers=expected["cipher_suites"],
        compression=draw(st.sampled_from([b"\x00", b"\x01\x00", b"\x00\x01\x40"])),
        no_extensions_block=no_block,
    )
    expected["extensions"] = tuple(kind for kind, _ in pieces)
    return Built(message, expected)


@st.composite
def record_splits(draw: st.DrawFn, message: bytes) -> bytes:
    """``message`` in up to 16 records of random lengths and versions."""
    cuts = sorted(draw(st.lists(st.integers(1, len(message) - 1), unique=True, max_size=15)))
    bounds = [0, *cuts, len(message)]
    return b"".join(
        b"\x16"
        + draw(st.integers(0x0301, 0x0303)).to_bytes(2, "big")
        + vector(2, message[start:end])
        for start, end in pairwise(bounds)
    )


def _corpus_or_generated() -> st.SearchStrategy[bytes]:
    corpus_messages = [handshake_message(data) for data in CORPUS.values()]
    return st.one_of(
        st.sampled_from(corpus_messages),
        client_hellos().map(lambda built: built.message),
    )


@given(client_hellos(), st.data())
@FUZZ
def test_generated_hellos_parse_to_what_was_built(built: Built, data: st.DataObject) -> None:
    split = data.draw(record_splits(built.message))
    hello = parse_client_hello(split)
    assert hello is not None
    fields = hello._asdict()
    assert fields.pop("size") == len(split)
    assert fields == built.expected


@given(_corpus_or_generated(), st.data())
@SLOW_FUZZ
def test_any_split_cut_anywhere_is_incomplete_then_the_same_hello(
    message: bytes, data: st.DataObject
) -> None:
    whole = parse_client_hello(records(message))
    assert whole is not None
    split = data.draw(record_splits(message))
    for length in range(len(split)):
        assert parse_client_hello(split[:length]) is None, length
    assert parse_client_hello(split) == whole._replace(size=len(split))


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """A valid ClientHello stream with bytes flipped, cut, inserted or appended."""
    message = draw(_corpus_or_generated())
    data = bytearray(records(message, [draw(st.integers(1, len(message)))]))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "flip", "flip", "cut", "insert", "append"]))
        if action == "flip" and data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif action == "insert":
            index = draw(st.integers(0, len(data)))
            data[index:index] = draw(st.binary(min_size=1, max_size=16))
        elif action == "append":
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@given(mutated_streams())
@FUZZ
def test_mutated_hellos_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@given(mutated_streams())
@SLOW_FUZZ
def test_mutated_hellos_grow_consistently(data: bytes) -> None:
    assert_grows_consistently(data)


@given(st.binary(max_size=120))
@FUZZ
def test_random_bytes_grow_consistently(data: bytes) -> None:
    assert_grows_consistently(b"\x16\x03\x01\x00" + data)
