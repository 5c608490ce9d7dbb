"""parse_client_hello_message (a ClientHello without TLS records, as QUIC carries it) reads
the same ClientHello as parse_client_hello reads from records, for every real client and
every cut."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.errors import ParseError
from gatewayd.packets import parse_client_hello
from gatewayd.packets.tls import parse_client_hello_message

CORPUS = {
    p.stem: p.read_bytes() for p in sorted((Path(__file__).parent / "tls_corpus").glob("*.bin"))
}


def message_of(stream: bytes) -> bytes:
    """The handshake bytes of a record stream: every record's payload, joined."""
    out, offset = b"", 0
    while offset < len(stream):
        length = int.from_bytes(stream[offset + 3 : offset + 5], "big")
        out += stream[offset + 5 : offset + 5 + length]
        offset += 5 + length
    return out


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_same_hello_with_or_without_records(name: str) -> None:
    stream = CORPUS[name]
    message = message_of(stream)
    from_records = parse_client_hello(stream)
    bare = parse_client_hello_message(message)
    assert from_records is not None and bare is not None
    assert bare._replace(size=0) == from_records._replace(size=0)
    assert bare.size == len(message)
    for cut in range(len(message)):
        assert parse_client_hello_message(message[:cut]) is None
    assert parse_client_hello_message(message + b"trailing") == bare


def test_not_a_client_hello_is_refused_from_its_first_byte() -> None:
    with pytest.raises(ParseError, match="handshake type 2"):
        parse_client_hello_message(b"\x02")


@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_client_hello_message(b"\x01" + data)
