"""AWS event-stream framing: the messages Bedrock streams, checked against botocore's own
decoder, CRC errors refused, oversize messages passed through within bounds."""

from __future__ import annotations

import pytest
from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.ai.eventstream import EventStreamDecoder, parse_headers
from gatewayd.ai.framing import Frame
from gatewayd.errors import ParseError
from tests.ai.corpus import eventstream, eventstream_message

BIG, EDGE = 1 << 20, 1 << 16


def decode(data: bytes, size: int, decoder: EventStreamDecoder | None = None) -> list[Frame]:
    decoder = decoder or EventStreamDecoder(BIG, EDGE)
    return [f for i in range(0, len(data), size) for f in decoder.feed(data[i:i + size])]


@pytest.mark.parametrize("name", ["bedrock_converse_stream.events.json",
                                  "bedrock_invoke_stream.events.json"])
def test_fixtures_decode_as_botocore_decodes_them(name: str) -> None:
    data = eventstream(name)
    reference = EventStreamBuffer()
    reference.add_data(data)
    theirs = [(m.headers[":event-type"], m.payload) for m in reference]
    assert [(f.name, f.data) for f in decode(data, 1000)] == theirs
    assert len(theirs) > 5


@given(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=5))
@settings(max_examples=50)
def test_pieces_do_not_matter(sizes: list[int]) -> None:
    data = eventstream("bedrock_converse_stream.events.json")
    for size in sizes:
        assert decode(data, size) == decode(data, len(data))


def test_exceptions_are_frames_of_their_own_kind() -> None:
    data = eventstream_message({":message-type": "exception",
                                ":exception-type": "throttlingException",
                                ":content-type": "application/json"},
                               b'{"message":"Too many requests"}')
    [frame] = decode(data, 7)
    assert (frame.kind, frame.name) == ("exception", "throttlingException")


@pytest.mark.parametrize("where", [2, 9, 20, -2])
def test_a_flipped_byte_is_refused(where: int) -> None:
    data = bytearray(eventstream_message({":event-type": "chunk"}, b'{"bytes":"e30="}'))
    data[where] ^= 0x01
    with pytest.raises(ParseError):
        decode(bytes(data), 5)


def test_an_oversize_message_passes_through_with_its_edges() -> None:
    payload = b'{"usage":' + b" " * 100_000 + b'{"inputTokens":1}}'
    data = eventstream_message({":event-type": "metadata"}, payload) + \
        eventstream_message({":event-type": "messageStop"}, b"{}")
    decoder = EventStreamDecoder(8192, 1024)
    frames = decode(data, 4000, decoder)
    assert [(f.name, f.oversize) for f in frames] == [("metadata", True), ("messageStop", False)]
    assert frames[0].data.startswith(b'{"usage":') and frames[0].tail.endswith(b":1}}")
    assert not decoder.close()


def test_an_oversize_message_with_a_bad_crc_is_refused() -> None:
    data = bytearray(eventstream_message({":event-type": "x"}, b"a" * 50_000))
    data[30_000] ^= 0xFF
    with pytest.raises(ParseError):
        decode(bytes(data), 4096, EventStreamDecoder(8192, 1024))


def test_a_stream_ending_inside_a_message_is_noticed() -> None:
    decoder = EventStreamDecoder(BIG, EDGE)
    data = eventstream("bedrock_converse_stream.events.json")
    decoder.feed(data[:-3])
    assert decoder.close()


def test_typed_headers_are_skipped() -> None:
    raw_headers = (b"\x05:flag\x00" + b"\x04size\x04\x00\x00\x00\x07" + b"\x02id\x09" + b"u" * 16
                   + b"\x03bin\x06\x00\x02ab" + b"\x0b:event-type\x07\x00\x05chunk")
    assert parse_headers(raw_headers) == {":event-type": "chunk"}
    with pytest.raises(ParseError):
        parse_headers(b"\x03bad\x0a")


@given(st.binary(max_size=400), st.integers(min_value=1, max_value=50))
@settings(max_examples=300)
def test_any_bytes_decode_or_raise_parse_error(data: bytes, size: int) -> None:
    try:
        whole = decode(data, len(data) + 1)
    except ParseError:
        with pytest.raises(ParseError):
            decode(data, size)
        return
    assert decode(data, size) == whole
