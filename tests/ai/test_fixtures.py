"""The fixtures are what the providers send: the OpenAI and Anthropic ones validate against
the official SDKs' type definitions (the event-stream ones are checked by botocore in
``test_eventstream``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent, message_create_params
from openai.types import CreateEmbeddingResponse, embedding_create_params
from openai.types.chat import ChatCompletion, ChatCompletionChunk, completion_create_params
from openai.types.responses import Response, ResponseStreamEvent, response_create_params
from pydantic import TypeAdapter

from tests.ai.corpus import load, raw


def sse_data(name: str) -> list[Any]:
    text = raw(name).decode().replace("\r\n", "\n")
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


@pytest.mark.parametrize(("name", "model"), [
    ("openai_chat_response.json", ChatCompletion),
    ("vllm_chat_response.json", ChatCompletion),
    ("openai_responses_response.json", Response),
    ("openai_embeddings_response.json", CreateEmbeddingResponse),
    ("anthropic_message_response.json", Message),
    ("bedrock_invoke_anthropic_response.json", Message),
])
def test_whole_answers(name: str, model: Any) -> None:
    model.model_validate(load(name))


@pytest.mark.parametrize(("name", "kind"), [
    ("openai_chat_stream.sse", ChatCompletionChunk),
    ("openai_chat_stream_no_usage.sse", ChatCompletionChunk),
    ("openai_responses_stream.sse", ResponseStreamEvent),
    ("anthropic_stream.sse", RawMessageStreamEvent),
])
def test_streamed_answers(name: str, kind: Any) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    events = [e for e in sse_data(name) if e.get("type") != "ping"]
    assert len(events) > 5
    for event in events:
        adapter.validate_python(event)


@pytest.mark.parametrize(("name", "params"), [
    ("openai_chat_request.json", completion_create_params.CompletionCreateParamsStreaming),
    ("openrouter_chat_request.json", completion_create_params.CompletionCreateParamsStreaming),
    ("vllm_chat_request.json", completion_create_params.CompletionCreateParamsNonStreaming),
    ("openai_responses_request.json", response_create_params.ResponseCreateParamsStreaming),
    ("openai_embeddings_request.json", embedding_create_params.EmbeddingCreateParams),
    ("anthropic_messages_request.json", message_create_params.MessageCreateParamsStreaming),
])
def test_requests(name: str, params: Any) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(params)
    adapter.validate_python(load(name))
