"""Hostile input: random and mutated bodies never make the analyzer or the meter raise,
and an answer reads the same fed whole or in pieces, whatever its bytes."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.ai import AiRequest, Analyzer, Bounds, Status, filter_tools_list
from gatewayd.errors import ParseError
from tests.ai.corpus import (
    ANSWERS,
    EVENTSTREAM,
    JSON,
    NDJSON,
    SSE,
    eventstream_message,
    load,
    raw,
)

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
# Small bounds, so that hostile input meets them often.
SMALL = Bounds(max_items=8, max_tools=4, max_tool_calls=4, max_argument_bytes=64,
               summary_chars=32, max_name_chars=16, max_json_body_bytes=1024,
               max_event_bytes=512, edge_bytes=128, output_sample_chars=64,
               exact_token_chars=256, token_windows=4, max_parse_bytes=4096)

ROUTES = [(case.host, case.path, case.request) for case in ANSWERS.values()] + [
    ("mcp.internal", "/mcp", "mcp_tools_call_request.json"),
    ("mcp.internal", "/mcp", "mcp_batch_request.json"),
    ("api.openai.com", "/v1/embeddings", "openai_embeddings_request.json"),
    ("contoso.openai.azure.com", "/openai/deployments/d/chat/completions",
     "azure_chat_request.json"),
    ("example.com", "/v1/responses", "openai_responses_request.json"),
    ("example.com", "/api/generate", "ollama_chat_request.json"),
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20)


def check(request: AiRequest | None) -> None:
    if request is not None:
        assert isinstance(request.status, Status)
        assert request.prompt_tokens_estimate >= 0
        json.dumps(request.as_dict())


def replace_somewhere(obj: Any, data: st.DataObject, value: object) -> Any:
    """``obj`` with one value, reached by a random path, replaced."""
    if isinstance(obj, dict) and obj and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(obj)))
        obj[key] = replace_somewhere(obj[key], data, value)
        return obj
    if isinstance(obj, list) and obj and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(obj) - 1))
        obj[i] = replace_somewhere(obj[i], data, value)
        return obj
    return value


@FUZZ
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=300))
def test_random_request_bodies(route: tuple[str, str, str], body: bytes) -> None:
    host, path, _ = route
    for analyzer in (Analyzer(SMALL), Analyzer()):
        check(analyzer.request("POST", host, path, JSON, body))
        check(analyzer.request("POST", host, path, JSON, body, complete=False))


@FUZZ
@given(route=st.sampled_from(ROUTES), data=st.data(), value=json_values)
def test_requests_with_a_value_of_the_wrong_type(route: tuple[str, str, str],
                                                 data: st.DataObject, value: object) -> None:
    host, path, fixture = route
    body = replace_somewhere(copy.deepcopy(load(fixture)), data, value)
    encoded = json.dumps(body).encode()
    check(Analyzer(SMALL).request("POST", host, path, JSON, encoded))
    check(Analyzer().request("POST", host, path, JSON, encoded))


@FUZZ
@given(route=st.sampled_from(ROUTES), data=st.data())
def test_requests_with_flipped_and_cut_bytes(route: tuple[str, str, str],
                                            data: st.DataObject) -> None:
    host, path, fixture = route
    body = bytearray(raw(fixture))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    check(Analyzer(SMALL).request("POST", host, path, JSON, bytes(body[:cut])))


def read(analyzer: Analyzer, name: str, headers: list[tuple[bytes, bytes]], status: int,
         pieces: list[bytes]) -> Any:
    case = ANSWERS[name]
    meter = analyzer.response(case.ask(analyzer), status, headers)
    for piece in pieces:
        meter.feed(piece)
    return meter.close()


HEADERS = [JSON, SSE, EVENTSTREAM, NDJSON, [*JSON, (b"content-encoding", b"gzip")],
           [*SSE, (b"content-encoding", b"deflate")]]


@FUZZ
@given(name=st.sampled_from(sorted(ANSWERS)), headers=st.sampled_from(HEADERS),
       status=st.sampled_from([200, 429, 500]), body=st.binary(max_size=400),
       size=st.integers(1, 50))
def test_random_answers_in_any_pieces(name: str, headers: list[tuple[bytes, bytes]],
                                      status: int, body: bytes, size: int) -> None:
    analyzer = Analyzer(SMALL)
    whole = read(analyzer, name, headers, status, [body])
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    assert read(analyzer, name, headers, status, pieces) == whole
    json.dumps(whole.as_dict())


@FUZZ
@given(name=st.sampled_from(sorted(ANSWERS)), data=st.data(), size=st.integers(1, 64))
def test_mutated_answers_in_any_pieces(name: str, data: st.DataObject, size: int) -> None:
    case = ANSWERS[name]
    body = bytearray(case.body())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.sampled_from(b'{}[]",:\\\n 0aZ\x00\xff'))
    for analyzer in (Analyzer(SMALL), Analyzer()):
        whole = read(analyzer, name, case.headers, 200, [bytes(body)])
        pieces = [bytes(body[i:i + size]) for i in range(0, len(body), size)]
        assert read(analyzer, name, case.headers, 200, pieces) == whole


@FUZZ
@given(name=st.sampled_from(sorted(ANSWERS)), size=st.integers(1, 97))
def test_small_bounds_read_every_answer_the_same_in_pieces(name: str, size: int) -> None:
    """Every fixture through bounds it overflows: oversize events and bodies are read from
    their edges, identically in any pieces."""
    case = ANSWERS[name]
    body = case.body()
    analyzer = Analyzer(SMALL)
    whole = read(analyzer, name, case.headers, 200, [body])
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    assert read(analyzer, name, case.headers, 200, pieces) == whole


def mutated_answer(name: str, data: st.DataObject, value: object) -> bytes:
    """The answer fixture ``name`` with one value of one message replaced, framed again."""
    answer = ANSWERS[name].answer
    if answer.endswith(".events.json"):
        events = load(answer)
        k = data.draw(st.integers(0, len(events) - 1))
        payload = events[k][1]
        if "bytes" in payload and data.draw(st.booleans()):
            native = json.loads(base64.b64decode(payload["bytes"]))
            payload["bytes"] = base64.b64encode(json.dumps(
                replace_somewhere(native, data, value)).encode()).decode()
        else:
            events[k][1] = replace_somewhere(payload, data, value)
        return b"".join(eventstream_message({":event-type": kind, ":message-type": "event"},
                                            json.dumps(p).encode()) for kind, p in events)
    if answer.endswith((".sse", ".ndjson")):
        lines = raw(answer).decode().split("\n")
        prefix = "data: " if answer.endswith(".sse") else ""
        found = [i for i, line in enumerate(lines) if line.startswith(prefix + "{")]
        i = data.draw(st.sampled_from(found))
        message = json.loads(lines[i][len(prefix):])
        lines[i] = prefix + json.dumps(replace_somewhere(message, data, value))
        return "\n".join(lines).encode()
    return json.dumps(replace_somewhere(load(answer), data, value)).encode()


@FUZZ
@given(name=st.sampled_from(sorted(ANSWERS)), data=st.data(), value=json_values,
       size=st.integers(1, 80))
def test_answers_with_a_value_of_the_wrong_type(name: str, data: st.DataObject,
                                                value: object, size: int) -> None:
    case = ANSWERS[name]
    body = mutated_answer(name, data, value)
    for analyzer in (Analyzer(SMALL), Analyzer()):
        whole = read(analyzer, name, case.headers, 200, [body])
        pieces = [body[i:i + size] for i in range(0, len(body), size)]
        assert read(analyzer, name, case.headers, 200, pieces) == whole
        json.dumps(whole.as_dict())


@FUZZ
@given(data=st.data(), value=json_values, sse=st.booleans())
def test_tools_list_filter_on_hostile_answers(data: st.DataObject, value: object,
                                              sse: bool) -> None:
    body = json.dumps(replace_somewhere(load("mcp_tools_list_response.json"), data, value))
    encoded = (f"event: message\ndata: {body}\n\n" if sse else body).encode()
    out = filter_tools_list(encoded, lambda name: "a" in name)
    assert isinstance(out, bytes)


@FUZZ
@given(body=st.binary(max_size=300))
def test_tools_list_filter_on_random_bytes(body: bytes) -> None:
    """Random bytes are rewritten or refused with ``ParseError``, nothing else."""
    try:
        out = filter_tools_list(body, lambda name: True)
    except ParseError:
        return
    assert isinstance(out, bytes)
