"""The lab upstream's Anthropic Messages API, without IO: ``POST /v1/messages``.

Enough of the API for the official ``anthropic`` SDK to talk to the lab through the
gateway: a body with a string ``model``, a positive integer ``max_tokens`` and a non-empty
``messages`` list (roles ``user`` and ``assistant``; content a string or a list of blocks
with a ``type``, text blocks with their ``text``), an optional ``system`` (a string or text
blocks) and ``stream``; anything else is a 400 with an Anthropic error object. The reply is
deterministic, like the lab's chat completions: ``"lab reply to: "`` and the first 64
characters of the last user message's text, cut to ``max_tokens`` words.

Usage counts lab tokens: the input is one token per message plus one per
whitespace-separated word of its text and of the system prompt; the output one per word of
the reply. A stream is the API's event sequence — ``message_start`` (with the input
tokens), ``content_block_start``, one ``content_block_delta`` per word,
``content_block_stop``, ``message_delta`` (stop reason and output tokens), ``message_stop``
— each event ``interval_ms`` apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gatewayd.lab.upstream_http import (
    REPLY_PREFIX,
    REPLY_QUOTE_CHARS,
    AnthropicMessages,
    EventStream,
    Fixed,
    fixed_json,
    split_words,
)

_ROLES = ("user", "assistant")


class _Invalid(ValueError):
    pass


def anthropic_error(status: int, message: str,
                    kind: str = "invalid_request_error") -> Fixed:
    """An error in the Anthropic API's shape."""
    return fixed_json(status, {"type": "error", "error": {"type": kind, "message": message}})


def _text(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _Invalid(f"{where}: a string or an array of content blocks")
    texts = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str):
            raise _Invalid(f"{where}.{i}.type: Field required")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise _Invalid(f"{where}.{i}.text: Field required")
            texts.append(text)
    return " ".join(texts)


@dataclass(frozen=True)
class _Request:
    model: str
    max_tokens: int
    texts: tuple[tuple[str, str], ...]  # (role, text) per message
    system: str
    stream: bool


def _parse(body: bytes) -> _Request:
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        raise _Invalid("the body is not JSON") from None
    if not isinstance(request, dict):
        raise _Invalid("the body must be a JSON object")
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise _Invalid("model: Field required")
    max_tokens = request.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _Invalid("max_tokens: Field required (a positive integer)")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("messages: at least one message is required")
    texts = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _Invalid(f"messages.{i}.role: one of {', '.join(_ROLES)}")
        texts.append((str(message["role"]),
                      _text(message.get("content"), f"messages.{i}.content")))
    system = request.get("system")
    stream = request.get("stream", False)
    if not isinstance(stream, bool):
        raise _Invalid("stream: a boolean")
    return _Request(model, max_tokens, tuple(texts),
                    _text(system, "system") if system is not None else "", stream)


def message(request: AnthropicMessages, body: bytes | None, n: int) -> Fixed | EventStream:
    """The answer to the ``n``-th Messages request (``body`` is None when it was longer
    than ``request.max_body``)."""
    if body is None:
        return anthropic_error(413, f"the request body is over {request.max_body} bytes",
                               "request_too_large")
    try:
        asked = _parse(body)
    except _Invalid as exc:
        return anthropic_error(400, str(exc))
    last = next((text for role, text in reversed(asked.texts) if role == "user"), "")
    words = split_words(REPLY_PREFIX + last[:REPLY_QUOTE_CHARS])
    stop = "end_turn"
    if len(words) > asked.max_tokens:
        words, stop = words[:asked.max_tokens], "max_tokens"
    reply = "".join(words)
    input_tokens = (sum(1 + len(text.split()) for _, text in asked.texts)
                    + len(asked.system.split()))
    output_tokens = len(reply.split())
    base = {"id": f"msg_lab_{n}", "type": "message", "role": "assistant",
            "model": asked.model, "stop_sequence": None}
    if not asked.stream:
        return fixed_json(200, base | {
            "content": [{"type": "text", "text": reply}], "stop_reason": stop,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        })

    def event(kind: str, data: dict[str, object]) -> bytes:
        return (f"event: {kind}\ndata: ".encode()
                + json.dumps({"type": kind} | data, sort_keys=True).encode() + b"\n\n")

    events = [
        event("message_start", {"message": base | {
            "content": [], "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
        event("content_block_start", {"index": 0,
                                      "content_block": {"type": "text", "text": ""}}),
        *(event("content_block_delta", {"index": 0,
                                        "delta": {"type": "text_delta", "text": piece}})
          for piece in words),
        event("content_block_stop", {"index": 0}),
        event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                "usage": {"output_tokens": output_tokens}}),
        event("message_stop", {}),
    ]
    return EventStream(tuple(events), request.interval_ms)
