"""Stream framing: SSE as the WHATWG rules read it, JSON lines, streamed JSON arrays —
each the same fed whole or in any pieces, and each bounded in memory."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.ai.framing import Clip, Frame, JsonArrayDecoder, LineDecoder, SseDecoder
from gatewayd.errors import ParseError
from tests.ai.corpus import raw

BIG, EDGE = 1 << 20, 1 << 16


def sse(data: bytes, pieces: list[int] | None = None) -> tuple[list[Frame], bool]:
    decoder = SseDecoder(BIG, EDGE)
    out: list[Frame] = []
    if pieces is None:
        out += decoder.feed(data)
    else:
        start = 0
        for size in pieces:
            out += decoder.feed(data[start:start + size])
            start += size
        out += decoder.feed(data[start:])
    return out, decoder.close()


def test_sse_events_names_and_multiline_data() -> None:
    frames, pending = sse(b"event: a\ndata: one\ndata:two\n\n: comment\nid: 7\nretry: 10\n"
                          b"data\n\ndata: x\n\n")
    assert [(f.name, f.data) for f in frames] == [("a", b"one\ntwo"), (None, b""),
                                                  (None, b"x")]
    assert not pending


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_sse_line_ends(eol: bytes) -> None:
    frames, _ = sse(b"data: a" + eol + b"data: b" + eol + eol)
    assert [f.data for f in frames] == [b"a\nb"]


def test_sse_bom_and_blank_lines_without_data() -> None:
    frames, _ = sse(b"\xef\xbb\xbfdata: a\n\n\n\nevent: x\n\ndata: b\n\n")
    assert [(f.name, f.data) for f in frames] == [(None, b"a"), (None, b"b")]


def test_sse_event_cut_at_the_end_is_not_dispatched() -> None:
    frames, pending = sse(b"data: a\n\ndata: {\"half\":")
    assert [f.data for f in frames] == [b"a"]
    assert pending


def test_sse_oversize_event_keeps_its_edges() -> None:
    decoder = SseDecoder(4096, 512)
    data = b"data: " + b"<" + b"x" * 100_000 + b">\n\n"
    frames = [f for i in range(0, len(data), 333) for f in decoder.feed(data[i:i + 333])]
    assert len(frames) == 1 and frames[0].oversize
    assert frames[0].data.startswith(b"<xxx") and frames[0].tail.endswith(b"xx>")
    assert len(frames[0].data) <= 512 and len(frames[0].tail) == 512


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=60))
@settings(max_examples=200)
def test_sse_pieces_do_not_matter(pieces: list[int]) -> None:
    data = raw("anthropic_stream.sse") + raw("gemini_stream.sse") + b"data: x\r\rdata: y\r\n"
    assert sse(data, pieces) == sse(data)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=40), max_size=20))
@settings(max_examples=300)
def test_sse_any_bytes_in_any_pieces(data: bytes, pieces: list[int]) -> None:
    assert sse(data, pieces) == sse(data)


def lines(data: bytes, size: int) -> list[Frame]:
    decoder = LineDecoder(BIG, EDGE)
    out = [f for i in range(0, len(data), size) for f in decoder.feed(data[i:i + size])]
    return out + decoder.close()


def test_json_lines_including_a_last_line_without_newline() -> None:
    data = b'{"a":1}\n\n{"b":2}\r\n{"c":3}'
    assert [f.data for f in lines(data, 100)] == [b'{"a":1}', b'{"b":2}\r', b'{"c":3}']
    assert lines(data, 1) == lines(data, 100)


def array(data: bytes, size: int) -> tuple[list[Frame], bool]:
    decoder = JsonArrayDecoder(BIG, EDGE)
    out = [f for i in range(0, len(data), size) for f in decoder.feed(data[i:i + size])]
    return out, decoder.close()


def test_json_array_elements_with_strings_holding_brackets() -> None:
    elements = [{"a": "}]\\\"[{", "b": [1, {"c": "\\\\"}]}, {"d": "\u00e9\\n"}, [1, 2]]
    data = b" [ " + b" ,\r\n".join(json.dumps(e).encode() for e in elements) + b"]"
    for size in (1, 2, 3, 7, 1000):
        frames, left_open = array(data, size)
        assert [json.loads(f.data) for f in frames] == elements
        assert not left_open


def test_json_array_gemini_fixture_and_open_end() -> None:
    data = raw("gemini_stream.json")
    frames, left_open = array(data, 50)
    assert len(frames) == 3 and not left_open
    frames, left_open = array(data[:-10], 50)
    assert len(frames) == 2 and left_open


def test_json_array_that_is_not_an_array() -> None:
    with pytest.raises(ParseError):
        array(b'{"error": {}}', 5)


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=30))
@settings(max_examples=300)
def test_json_array_any_bytes(data: bytes, size: int) -> None:
    try:
        whole = array(data, len(data) + 1)
    except ParseError:
        with pytest.raises(ParseError):
            array(data, size)
        return
    assert array(data, size) == whole


def test_clip_keeps_edges_within_its_bound() -> None:
    clip = Clip(100, 10)
    for i in range(1000):
        clip.add(bytes([65 + i % 26]) * 7)
    assert clip.over and clip.size == 7000
    assert len(clip.head) == 10 and len(clip.tail) == 10
    assert len(clip._buf) <= 20
