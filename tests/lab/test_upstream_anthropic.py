"""The upstream's Anthropic Messages API: reply building without IO, then the real server
and the official ``anthropic`` SDK, JSON and streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from gatewayd.lab.upstream import Upstream, start_server
from gatewayd.lab.upstream_anthropic import message
from gatewayd.lab.upstream_http import AnthropicMessages, EventStream, Fixed
from tests.lab.background import background


def reply(request: Any) -> Fixed | EventStream:
    return message(AnthropicMessages(), json.dumps(request).encode(), 1)


@pytest.mark.parametrize(("request_body", "problem"), [
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]},
     "max_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
     "role"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{}]}]},
     "type"),
    ([1, 2], "object"),
])
def test_a_bad_request_gets_an_anthropic_error(request_body: Any, problem: str) -> None:
    got = reply(request_body)
    assert isinstance(got, Fixed) and got.status == 400
    error = json.loads(got.body)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert problem in error["error"]["message"]


def test_max_tokens_cuts_the_reply() -> None:
    got = reply({"model": "m", "max_tokens": 2,
                 "messages": [{"role": "user", "content": "one two three"}]})
    assert isinstance(got, Fixed)
    body = json.loads(got.body)
    assert body["stop_reason"] == "max_tokens" and body["usage"]["output_tokens"] == 2


@pytest.fixture
def client() -> Iterator[anthropic.Anthropic]:
    with background() as bg:
        port = bg.serve(start_server(Upstream({}), 0, None, host="127.0.0.1"))
        with anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="lab",
                                 max_retries=0, timeout=10) as sdk:
            yield sdk


MESSAGES: Any = [{"role": "user", "content": "Name three colours"}]


def test_sdk_message(client: anthropic.Anthropic) -> None:
    got = client.messages.create(model="claude-lab", max_tokens=100, messages=MESSAGES,
                                 system="You are terse.")
    assert got.id == "msg_lab_1" or got.id.startswith("msg_lab_")
    assert got.model == "claude-lab" and got.stop_reason == "end_turn"
    [block] = got.content
    assert block.type == "text" and block.text == "lab reply to: Name three colours"
    # input: (1 + 3 words) + 3 system words; output: 6 words.
    assert (got.usage.input_tokens, got.usage.output_tokens) == (7, 6)


def test_sdk_stream_matches_the_json_reply(client: anthropic.Anthropic) -> None:
    whole = client.messages.create(model="m", max_tokens=100, messages=MESSAGES)
    with client.messages.stream(model="m", max_tokens=100, messages=MESSAGES) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == whole.content[0].text  # type: ignore[union-attr]
    assert len(pieces) == len(whole.content[0].text.split())  # type: ignore[union-attr]
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.stop_reason == "end_turn"
