"""The upstream's OpenAI API: reply building without IO, then the real server and the SDK."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.lab.upstream import Upstream, start_server
from gatewayd.lab.upstream_http import (
    MAX_CHAT_BODY_BYTES,
    ChatCompletions,
    EventStream,
    Fixed,
    RequestHead,
    Served,
    chat_completion,
    chat_tokens,
    event_stream_head,
    http_chunk,
    route,
    split_words,
)
from tests.lab.background import background

SERVED = Served("https", "10.78.0.10", 443, "10.77.0.11", 40000)
NAMES = {"10.78.0.10": "api.openai.com"}
NOW = 1_700_000_000.5
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CLOCK_TOOL: Any = {"type": "function", "function": {"name": "get_time"}}


def head(target: str, method: str = "GET") -> RequestHead:
    return RequestHead(method, target, "HTTP/1.1", ())


def answer(request: dict[str, Any], n: int = 1, interval_ms: int = 0) -> Fixed | EventStream:
    return chat_completion(ChatCompletions(interval_ms), json.dumps(request).encode(), n, NOW)


def completion(request: dict[str, Any], n: int = 1) -> dict[str, Any]:
    reply = answer(request, n)
    assert isinstance(reply, Fixed)
    assert (reply.status, reply.content_type) == (200, "application/json")
    body: dict[str, Any] = json.loads(reply.body)
    return body


def events(request: dict[str, Any]) -> list[Any]:
    """The stream's events, parsed back: the JSON chunks, then the ``[DONE]`` string."""
    reply = answer(request | {"stream": True})
    assert isinstance(reply, EventStream)
    parsed: list[Any] = []
    for event in reply.events:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        assert event.count(b"\n") == 2  # one line of data
        data = event[len(b"data: "):-2]
        parsed.append(data.decode() if data == b"[DONE]" else json.loads(data))
    return parsed


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def openai_error_of(reply: Fixed | EventStream) -> tuple[int, dict[str, Any]]:
    assert isinstance(reply, Fixed)
    body = json.loads(reply.body)
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    return reply.status, error


# --- routing --------------------------------------------------------------------------------


def test_chat_completions_are_posted_and_may_be_paced() -> None:
    assert route(head("/v1/chat/completions", "POST"), SERVED, NAMES) == ChatCompletions(0)
    paced = route(head("/v1/chat/completions?interval_ms=50", "POST"), SERVED, NAMES)
    assert paced == ChatCompletions(50)
    assert ChatCompletions().max_body == MAX_CHAT_BODY_BYTES == 1024**2


@pytest.mark.parametrize(
    ("target", "method", "status", "param"),
    [
        ("/v1/chat/completions", "GET", 405, None),
        ("/v1/chat/completions?interval_ms=x", "POST", 400, "interval_ms"),
        ("/v1/chat/completions?interval_ms=10001", "POST", 400, "interval_ms"),
        ("/v1/models", "POST", 405, None),
        ("/v1/models/gpt-4o", "GET", 404, "model"),
        ("/v1/embeddings", "POST", 404, None),
    ],
)
def test_openai_paths_answer_errors_in_the_api_shape(
    target: str, method: str, status: int, param: str | None
) -> None:
    reply = route(head(target, method), SERVED, NAMES)
    assert isinstance(reply, Fixed)
    got_status, error = openai_error_of(reply)
    assert (got_status, error["param"]) == (status, param)


def test_models() -> None:
    model = {"id": "lab-model", "object": "model", "created": 0, "owned_by": "clawgress-lab"}
    listed = route(head("/v1/models"), SERVED, NAMES)
    assert isinstance(listed, Fixed)
    assert listed.status == 200
    assert json.loads(listed.body) == {"object": "list", "data": [model]}
    one = route(head("/v1/models/lab-model"), SERVED, NAMES)
    assert isinstance(one, Fixed)
    assert json.loads(one.body) == model


# --- replies --------------------------------------------------------------------------------


def test_a_chat_completion() -> None:
    body = completion({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "Be brief."},
        user("Say hello"),
    ]}, n=7)
    assert body == {
        "id": "chatcmpl-lab-7",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "lab reply to: Say hello"},
            "finish_reason": "stop",
            "logprobs": None,
        }],
        # prompt: (2 words + 1) + (2 + 1); completion: "lab reply to: Say hello", 5 + 1
        "usage": {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12},
    }


def test_the_reply_quotes_64_characters_of_the_last_user_message() -> None:
    long = "x" * 100
    body = completion({"model": "m", "messages": [
        user("first question"),
        {"role": "assistant", "content": "an answer"},
        user(long),
        {"role": "assistant", "content": "a prefill after it"},
    ]})
    assert body["choices"][0]["message"]["content"] == "lab reply to: " + "x" * 64


def test_without_a_user_message_the_quote_is_empty() -> None:
    body = completion({"model": "m", "messages": [{"role": "system", "content": "hi"}]})
    assert body["choices"][0]["message"]["content"] == "lab reply to: "


def test_text_parts_are_read_and_other_parts_are_not() -> None:
    body = completion({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "in this picture"},
    ]}]})
    assert body["choices"][0]["message"]["content"] == "lab reply to: what is in this picture"
    assert body["usage"]["prompt_tokens"] == 6  # 5 words of text + 1


def test_usage_arithmetic() -> None:
    messages = [
        {"role": "system", "content": "  You   are\ta lab.\n"},  # 4 words + 1
        user("What is the weather?"),  # 4 + 1
        {"role": "assistant", "content": None, "tool_calls": [{  # 1 + 2 + 1
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},  # 1 + 1
        user(""),  # 0 + 1
    ]
    assert [chat_tokens(m) for m in messages] == [5, 5, 4, 2, 1]
    body = completion({"model": "m", "messages": messages})
    # The reply, "lab reply to: " with an empty quote: 3 words + 1.
    assert body["usage"] == {"prompt_tokens": 17, "completion_tokens": 4, "total_tokens": 21}


def test_weather_with_tools_is_answered_with_a_call_to_the_first_tool() -> None:
    body = completion({
        "model": "m",
        "messages": [user("What's the Weather in Paris?")],
        "tools": [WEATHER_TOOL, CLOCK_TOOL],
    }, n=3)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_lab_3", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }]}
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Paris"
    }
    # prompt: 5 words + 1; completion: "get_weather", '{"city":', '"Paris"}' + 1.
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("What's the weather?", None),  # no tools
        ("Tell me a joke", [WEATHER_TOOL]),  # no weather
        ("The weatherman said so", [WEATHER_TOOL]),  # not the word
    ],
)
def test_otherwise_the_reply_is_text(text: str, tools: list[Any] | None) -> None:
    request: dict[str, Any] = {"model": "m", "messages": [user(text)]}
    if tools is not None:
        request["tools"] = tools
    [choice] = completion(request)["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "lab reply to: " + text}


def test_only_the_last_user_message_asks_for_the_tool() -> None:
    [choice] = completion({"model": "m", "tools": [WEATHER_TOOL], "messages": [
        user("weather?"), {"role": "assistant", "content": "sunny"}, user("thanks"),
    ]})["choices"]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"", None),
        (b"{not json", None),
        (b"\xff\xfe{}", None),
        (b"[" * 100_000, None),
        (b"[]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": 4, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "m"}', "messages"),
        (b'{"model": "m", "messages": []}', "messages"),
        (b'{"model": "m", "messages": {"role": "user"}}', "messages"),
        (b'{"model": "m", "messages": ["hi"]}', "messages[0]"),
        (b'{"model": "m", "messages": [{"content": "hi"}]}', "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": ["user"], "content": "hi"}]}',
         "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": "robot", "content": "hi"}]}',
         "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": "user"}]}', "messages[0].content"),
        (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (b'{"model": "m", "messages": [{"role": "user", "content": [{"text": "hi"}]}]}',
         "messages[0].content[0]"),
        (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
         "messages[0].content[0]"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "a"},'
         b' {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]}',
         "messages[1].tool_calls[0]"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi", "tool_calls": []}]}',
         "messages[0].tool_calls"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []}',
         "tools"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}],'
         b' "tools": [{"type": "function", "function": {}}]}', "tools[0]"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
         "stream"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}],'
         b' "stream_options": {"include_usage": true}}', "stream_options"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,'
         b' "stream_options": {"include_usage": 1}}', "stream_options.include_usage"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,'
         b' "stream_options": []}', "stream_options.include_usage"),
    ],
)
def test_bad_bodies_get_400_in_the_api_shape(body: bytes, param: str | None) -> None:
    reply = chat_completion(ChatCompletions(), body, 1, NOW)
    status, error = openai_error_of(reply)
    assert (status, error["param"], error["code"]) == (400, param, None)


def test_a_body_over_the_limit_is_413() -> None:
    status, error = openai_error_of(chat_completion(ChatCompletions(), None, 1, NOW))
    assert status == 413
    assert str(MAX_CHAT_BODY_BYTES) in error["message"]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(
        ["model", "messages", "role", "content", "type", "text", "tools", "function", "name",
         "arguments", "tool_calls", "stream", "stream_options", "include_usage"]), inner,
        max_size=5),
    max_leaves=30,
)


@given(st.binary(max_size=200) | _json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_gets_a_reply_or_a_400(body: bytes) -> None:
    reply = chat_completion(ChatCompletions(), body, 1, NOW)
    if isinstance(reply, Fixed) and reply.status != 200:
        assert openai_error_of(reply)[0] == 400


# --- streams --------------------------------------------------------------------------------


def test_a_stream_sends_one_chunk_a_word_then_the_finish_then_the_usage() -> None:
    request = {"model": "m", "messages": [user("Say  hello\nworld ")],
               "stream_options": {"include_usage": True}}
    *chunks, finish, usage, done = events(request)
    assert done == "[DONE]"
    for chunk in (*chunks, finish, usage):
        assert chunk["id"] == "chatcmpl-lab-1"
        assert chunk["object"] == "chat.completion.chunk"
        assert (chunk["created"], chunk["model"]) == (1_700_000_000, "m")
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas[0] == {"role": "assistant", "content": "lab "}
    assert all(set(d) == {"content"} for d in deltas[1:])
    assert [d["content"] for d in deltas] == [
        "lab ", "reply ", "to: ", "Say  ", "hello\n", "world "
    ]
    whole = completion({"model": "m", "messages": [user("Say  hello\nworld ")]})
    assert "".join(d["content"] for d in deltas) == whole["choices"][0]["message"]["content"]
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in chunks)
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    ]
    assert usage["choices"] == []
    assert usage["usage"] == whole["usage"] == {
        "prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11,
    }


def test_a_stream_without_include_usage_has_no_usage() -> None:
    parsed = events({"model": "m", "messages": [user("hi")]})
    assert parsed[-1] == "[DONE]"
    chunks = parsed[:-1]
    assert len(chunks) == 5  # "lab ", "reply ", "to: ", "hi", the finish
    assert all("usage" not in chunk and len(chunk["choices"]) == 1 for chunk in chunks)
    explicit = events({"model": "m", "messages": [user("hi")],
                       "stream_options": {"include_usage": False}})
    assert explicit == parsed


def test_a_streamed_tool_call_sends_its_arguments_in_pieces() -> None:
    *chunks, finish, usage, done = events({
        "model": "m", "messages": [user("weather please")], "tools": [WEATHER_TOOL],
        "stream_options": {"include_usage": True},
    })
    first, *rest = (chunk["choices"][0]["delta"] for chunk in chunks)
    assert first == {"role": "assistant", "content": None, "tool_calls": [{
        "index": 0, "id": "call_lab_1", "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }]}
    pieces = [delta["tool_calls"][0]["function"]["arguments"] for delta in rest]
    assert pieces == ['{"city": ', '"Paris"}']
    assert all(delta["tool_calls"][0]["index"] == 0 for delta in rest)
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert usage["usage"]["completion_tokens"] == 4
    assert done == "[DONE]"


def test_the_pacing_reaches_the_stream() -> None:
    reply = answer({"model": "m", "messages": [user("x")], "stream": True}, interval_ms=25)
    assert isinstance(reply, EventStream)
    assert reply.interval_ms == 25


@pytest.mark.parametrize("text", ["", "a", "a b", " lead", "trail  ", "a\n\tb  c\r\n"])
def test_split_words_joins_back(text: str) -> None:
    pieces = split_words(text)
    assert "".join(pieces) == text
    assert len(pieces) == max(1, len(text.split()) + (text[:1].isspace()))


def test_event_stream_framing() -> None:
    text = event_stream_head(keep_alive=True).decode()
    assert text.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Type: text/event-stream\r\n" in text
    assert "Transfer-Encoding: chunked\r\n" in text
    assert http_chunk(b"data: [DONE]\n\n") == b"e\r\ndata: [DONE]\n\n\r\n"


# --- the real server and the OpenAI SDK ----------------------------------------------------


@pytest.fixture
def port() -> Iterator[int]:
    """An upstream on an ephemeral loopback port, in a thread, stopped after the test."""
    with background() as bg:
        yield bg.serve(start_server(Upstream({}), 0, None, host="127.0.0.1"))


@pytest.fixture
def client(port: int) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="lab",
                       max_retries=0, timeout=10) as sdk:
        yield sdk


MESSAGES: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three colours"},
]


def test_sdk_chat_completion(client: openai.OpenAI) -> None:
    before = int(time.time())
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.id.startswith("chatcmpl-lab-")
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini"
    assert before <= reply.created <= time.time()
    [choice] = reply.choices
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "lab reply to: Name three colours"
    assert choice.message.tool_calls is None
    assert reply.usage is not None
    # prompt: (3 + 1) + (3 + 1); completion: 6 words + 1.
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens,
            reply.usage.total_tokens) == (8, 7, 15)


def test_sdk_stream_with_usage_matches_the_json_reply(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="m", messages=MESSAGES)
    stream = client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    deltas, finishes, usages = [], [], []
    with stream:
        for chunk in stream:
            assert chunk.object == "chat.completion.chunk"
            if chunk.choices:
                deltas.append(chunk.choices[0].delta.content or "")
                finishes.append(chunk.choices[0].finish_reason)
            if chunk.usage is not None:
                assert chunk.choices == []
                usages.append(chunk.usage)
    assert "".join(deltas) == whole.choices[0].message.content
    assert len(deltas) == len(whole.choices[0].message.content.split()) + 1
    assert finishes[-1] == "stop"
    assert usages == [whole.usage]


def test_sdk_stream_arrives_in_pieces(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "one two three"}], stream=True,
        extra_query={"interval_ms": 60},
    )
    arrivals = []
    with stream:
        for _ in stream:
            arrivals.append(time.monotonic())
    # Seven chunks (six words, the finish), 60 ms apart.
    assert len(arrivals) == 7
    assert arrivals[-1] - arrivals[0] >= 0.3


def test_sdk_tool_call(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL, CLOCK_TOOL],
    )
    [choice] = reply.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    # The tool's result goes back; the next reply is text.
    messages: Any = [
        {"role": "user", "content": "What is the weather in Paris?"},
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
        {"role": "user", "content": "Thanks"},
    ]
    follow = client.chat.completions.create(model="m", tools=[WEATHER_TOOL], messages=messages)
    assert follow.choices[0].message.content == "lab reply to: Thanks"


def test_sdk_streamed_tool_call_accumulates(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    assert final.choices[0].finish_reason == "tool_calls"


def test_sdk_models(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [(m.id, m.object, m.created, m.owned_by) for m in models] == [
        ("lab-model", "model", 0, "clawgress-lab")
    ]
    assert client.models.retrieve("lab-model").id == "lab-model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_sdk_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=[])
    assert err.value.param == "messages"
    assert err.value.type == "invalid_request_error"


def test_an_oversized_body_is_413_and_the_connection_stays(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        big = json.dumps({"model": "m", "messages": [
            {"role": "user", "content": "x" * MAX_CHAT_BODY_BYTES}
        ]}).encode()
        conn.request("POST", "/v1/chat/completions", body=big,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["type"] == "invalid_request_error"
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps({"model": "m", "messages": [user("hi")]}).encode())
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["choices"][0]["message"]["content"].endswith("hi")
    finally:
        conn.close()


def test_async_sdk_stream() -> None:
    async def run() -> tuple[list[str], list[float], int | None]:
        server = await start_server(Upstream({}), 0, None, host="127.0.0.1")
        port = server.sockets[0].getsockname()[1]
        try:
            async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1",
                                          api_key="lab", max_retries=0, timeout=10) as sdk:
                stream = await sdk.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "stream this please"}],
                    stream=True, stream_options={"include_usage": True},
                    extra_query={"interval_ms": 20},
                )
                deltas: list[str] = []
                arrivals: list[float] = []
                total = None
                async with stream:
                    async for chunk in stream:
                        arrivals.append(time.monotonic())
                        if chunk.choices:
                            deltas.append(chunk.choices[0].delta.content or "")
                        if chunk.usage is not None:
                            total = chunk.usage.total_tokens
                return deltas, arrivals, total
        finally:
            server.close()
            await server.wait_closed()

    deltas, arrivals, total = asyncio.run(run())
    assert "".join(deltas) == "lab reply to: stream this please"
    # Eight chunks (six words, the finish, the usage), 20 ms apart.
    assert arrivals[-1] - arrivals[0] >= 0.1
    assert total == (3 + 1) + (6 + 1)
