"""The response meter: every provider's answers, whole and streamed, read to the usage,
tool calls and model they carry — and the same whatever pieces the stream arrives in."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.ai import Analyzer, Bounds, ResponseStatus, Usage
from tests.ai.corpus import ANSWERS, JSON, SSE, STREAMED, Answer, raw, read_answer

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("name", list(ANSWERS))
def test_each_answer_reads_its_usage_calls_and_model(analyzer: Analyzer, name: str) -> None:
    case = ANSWERS[name]
    got = read_answer(analyzer, case)
    assert got.status is ResponseStatus.COMPLETE, got.detail
    assert got.usage == case.usage
    assert tuple((c.name, c.arguments) for c in got.tool_calls) == case.calls
    if case.model is not None:
        assert got.model == case.model
    assert got.error is None


@pytest.mark.parametrize("name", STREAMED)
def test_a_stream_read_byte_by_byte_reads_as_whole(analyzer: Analyzer, name: str) -> None:
    case = ANSWERS[name]
    data = case.body()
    assert read_answer(analyzer, case, [data[i:i + 1] for i in range(len(data))]) == \
        read_answer(analyzer, case)


@pytest.mark.parametrize("name", STREAMED)
@FUZZ
@given(cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_a_stream_in_random_pieces_reads_as_whole(analyzer: Analyzer, name: str,
                                                  cuts: list[int]) -> None:
    case = ANSWERS[name]
    assert read_answer(analyzer, case, split(case.body(), cuts)) == read_answer(analyzer, case)


@FUZZ
@given(cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_a_gzip_stream_in_random_pieces_reads_as_whole(analyzer: Analyzer,
                                                      cuts: list[int]) -> None:
    case = ANSWERS["anthropic-stream"]
    squeezed = Answer(case.request, case.host, case.path, case.answer,
                      [*SSE, (b"content-encoding", b"gzip")], case.usage, case.calls)
    data = gzip.compress(case.body())
    got = read_answer(analyzer, squeezed, split(data, cuts))
    assert got.usage == case.usage
    assert got.status is ResponseStatus.COMPLETE


def test_a_stream_without_usage_still_estimates_its_output(analyzer: Analyzer) -> None:
    got = read_answer(analyzer, ANSWERS["openai-chat-stream-no-usage"])
    assert got.usage is None
    assert 5 <= got.output_tokens_estimate <= 20
    assert got.output_tokens == got.output_tokens_estimate


def test_the_estimate_of_a_streamed_text_is_near_its_reported_usage(analyzer: Analyzer,
                                                                   ) -> None:
    got = read_answer(analyzer, ANSWERS["openai-chat-stream"])
    assert got.usage is not None
    assert abs(got.output_tokens_estimate - got.usage.output_tokens) <= 2


@pytest.mark.parametrize("name", STREAMED)
def test_a_stream_cut_short_is_truncated(analyzer: Analyzer, name: str) -> None:
    case = ANSWERS[name]
    data = case.body()
    got = read_answer(analyzer, case, [data[:len(data) * 2 // 3]])
    assert got.status is ResponseStatus.TRUNCATED


def test_a_json_answer_cut_short_is_malformed(analyzer: Analyzer) -> None:
    case = ANSWERS["openai-chat"]
    got = read_answer(analyzer, case, [case.body()[:-40]])
    assert got.status is ResponseStatus.MALFORMED
    assert got.usage is None


def test_an_http_error_is_an_error_with_its_type(analyzer: Analyzer) -> None:
    case = ANSWERS["anthropic"]
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                  "message": "Overloaded"}}).encode()
    got = read_answer(analyzer, case, [body], status=529)
    assert got.status is ResponseStatus.ERROR
    assert got.error == "overloaded_error"
    assert "Overloaded" not in json.dumps(got.as_dict())


def test_an_error_event_in_a_stream_is_an_error(analyzer: Analyzer) -> None:
    case = ANSWERS["anthropic-stream"]
    data = raw(case.answer).split(b"event: message_delta")[0]
    data += b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",' \
            b'"message":"Overloaded"}}\n\n'
    got = read_answer(analyzer, case, [data])
    assert got.status is ResponseStatus.ERROR
    assert got.error == "overloaded_error"


def test_an_unknown_content_encoding_is_unreadable(analyzer: Analyzer) -> None:
    case = ANSWERS["openai-chat"]
    meter = analyzer.response(case.ask(analyzer), 200, [*JSON, (b"content-encoding", b"br")])
    meter.feed(b"\x1b\x00\x00")
    got = meter.close()
    assert got.status is ResponseStatus.UNREADABLE
    assert got.usage is None


def test_an_empty_answer_is_complete(analyzer: Analyzer) -> None:
    mcp = analyzer.request("POST", "tools.internal", "/mcp", JSON,
                           b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert mcp is not None
    got = analyzer.response(mcp, 202, []).close()
    assert got.status is ResponseStatus.COMPLETE
    assert got.usage is None


def test_a_large_json_answer_is_read_from_its_edges() -> None:
    """An embeddings answer larger than the body bound: model and usage are found in its
    first and last bytes."""
    small = Analyzer(Bounds(max_json_body_bytes=64 * 1024, edge_bytes=4096))
    case = ANSWERS["openai-embeddings"]
    vectors = [{"object": "embedding", "index": i, "embedding": [0.0123456789] * 256}
               for i in range(100)]
    body = json.dumps({"object": "list", "data": vectors, "model": "text-embedding-3-small",
                       "usage": {"prompt_tokens": 999, "total_tokens": 999}}).encode()
    assert len(body) > 64 * 1024
    got = read_answer(small, case, [body[i:i + 1000] for i in range(0, len(body), 1000)])
    assert got.status is ResponseStatus.COMPLETE
    assert got.usage == Usage(999, 0)
    assert got.model == "text-embedding-3-small"


def test_an_oversize_event_gives_the_usage_in_its_tail() -> None:
    """A ``response.completed`` event larger than the event bound still gives the usage."""
    small = Analyzer(Bounds(max_event_bytes=16 * 1024, edge_bytes=2048))
    case = ANSWERS["openai-responses-stream"]
    events = raw(case.answer).split(b"\n\n")
    last = json.loads(events[-2].split(b"data: ", 1)[1])
    last["response"]["output"].append({"type": "message", "id": "m", "role": "assistant",
                                       "status": "completed", "content": [
                                           {"type": "output_text", "annotations": [],
                                            "text": "x" * 50_000}]})
    last["response"]["usage"] = last["response"].pop("usage")  # usage stays last
    body = b"\n\n".join(events[:-2]) + b"\n\nevent: response.completed\ndata: " + \
        json.dumps(last).encode() + b"\n\n"
    got = read_answer(small, case, [body])
    assert got.status is ResponseStatus.COMPLETE
    assert got.usage == case.usage


def test_the_meter_holds_bounded_memory_on_an_endless_line() -> None:
    """A stream that never ends its line is held to the event bound's edges."""
    bounds = Bounds(max_event_bytes=8192, edge_bytes=1024)
    small = Analyzer(bounds)
    case = ANSWERS["openai-chat-stream"]
    meter = small.response(case.ask(small), 200, SSE)
    meter.feed(b"data: ")
    for _ in range(2000):
        meter.feed(b"a" * 4096)
    assert meter._decoder is not None
    line = meter._decoder._line  # type: ignore[union-attr]
    assert len(line._buf) <= 2 * bounds.edge_bytes
    assert meter.close().status is ResponseStatus.TRUNCATED


def test_tools_listed_by_an_mcp_server_are_read(analyzer: Analyzer) -> None:
    ask = analyzer.request("POST", "mcp.internal", "/mcp", JSON,
                           raw("mcp_tools_list_request.json"))
    assert ask is not None
    for name, headers in (("mcp_tools_list_response.json", JSON),
                          ("mcp_tools_list_response.sse", SSE)):
        meter = analyzer.response(ask, 200, headers)
        meter.feed(raw(name))
        got = meter.close()
        assert got.status is ResponseStatus.COMPLETE
        assert got.mcp_tools == ("get_weather", "query_database", "delete_records")


def test_an_mcp_tool_call_answered_over_sse_completes(analyzer: Analyzer) -> None:
    ask = analyzer.request("POST", "mcp.internal", "/mcp", JSON,
                           raw("mcp_tools_call_request.json"))
    assert ask is not None
    meter = analyzer.response(ask, 200, SSE)
    meter.feed(raw("mcp_tools_call_response.sse"))
    got = meter.close()
    assert got.status is ResponseStatus.COMPLETE
    assert got.events == 2


def test_bytes_after_a_gzip_stream_are_not_held(analyzer: Analyzer) -> None:
    case = ANSWERS["openai-chat"]
    meter = analyzer.response(case.ask(analyzer), 200, [*JSON, (b"content-encoding", b"gzip")])
    meter.feed(gzip.compress(case.body()))
    for _ in range(64):
        meter.feed(b"\x00" * 65536)
    assert meter._inflate is not None and len(meter._inflate.unused_data) == 0
    got = meter.close()
    assert got.usage == case.usage
