"""Anthropic's Messages API (and the same body on Bedrock's InvokeModel and Vertex AI's
``rawPredict``, where the model is in the URL instead).

Requests: ``read_messages``. Answers: ``MessagesAnswer`` — a Message object, or its
stream: ``message_start`` (the model, and the input side of the usage),
``content_block_start``/``_delta``/``_stop`` (text, thinking, and tool calls whose input
arrives as ``input_json_delta`` fragments), ``message_delta`` (stop reason and the
usage so far: output tokens, and in newer answers the input side again) and
``message_stop``. Usage fields from later events replace earlier ones.
"""

from __future__ import annotations

from gatewayd.ai.arguments import call_from_value
from gatewayd.ai.parsed import JsonObject, as_count, as_index, as_list, as_object, as_str, dumps
from gatewayd.ai.reading import AnswerReader, Reading, Tally
from gatewayd.ai.usage import from_anthropic

# Blocks whose content is text, and the key it is under.
TEXT_BLOCKS = {"text": "text", "thinking": "thinking"}
CALL_BLOCKS = ("tool_use", "server_tool_use", "mcp_tool_use")
# Tool results hold blocks, which may hold tool results: read this deep, no deeper.
MAX_NESTING = 4


def _blocks(value: object, r: Reading, depth: int = 0) -> None:
    if isinstance(value, str):
        r.text(value)
        return
    for block in r.some(value):
        b = as_object(block)
        if b is None:
            continue
        kind = b.get("type")
        key = TEXT_BLOCKS.get(kind) if isinstance(kind, str) else None
        if key is not None:
            r.text(b.get(key))
        elif kind in CALL_BLOCKS:
            r.call_value(b.get("name"), b.get("input"))
        elif kind == "tool_result" and depth < MAX_NESTING:
            _blocks(b.get("content"), r, depth + 1)
        elif kind in ("image", "document", "search_result", "container_upload"):
            r.attachments += 1


def read_messages(body: JsonObject, r: Reading) -> None:
    r.set_model(body.get("model"))
    r.stream = body.get("stream") is True
    r.set_max_output(body.get("max_tokens"))
    _blocks(body.get("system"), r)
    for m in r.messages_in(body.get("messages")):
        _blocks(m.get("content"), r)
    for tool in r.some(body.get("tools")):
        t = as_object(tool)
        if t is None:
            continue
        r.declare(t.get("name"))
        r.text(t.get("name"))
        r.text(t.get("description"))
        if t.get("input_schema") is not None:
            r.text(dumps(t["input_schema"]))
    for server in r.some(body.get("mcp_servers")):
        r.declare(f"mcp:{(as_object(server) or {}).get('name')}")


class MessagesAnswer(AnswerReader):
    """Anthropic Messages answers, whole or streamed."""

    def __init__(self) -> None:
        self._usage: JsonObject = {}

    def _merge(self, usage: object) -> None:
        u = as_object(usage)
        if u is None:
            return
        for key, value in u.items():
            if as_count(value) is not None or (key == "output_tokens_details"
                                               and as_object(value) is not None):
                self._usage[key] = value

    def body(self, obj: object, t: Tally) -> None:
        b = as_object(obj)
        if b is None:
            return
        if b.get("type") == "error":
            t.set_error(b.get("error"))
        t.set_model(b.get("model"))
        t.set_finish(b.get("stop_reason"))
        self._merge(b.get("usage"))
        for n, block in enumerate(as_list(b.get("content"))[:t.bounds.max_items]):
            c = as_object(block) or {}
            kind = c.get("type")
            if kind in CALL_BLOCKS and isinstance(c.get("name"), str):
                t.calls.whole(("block", n), call_from_value(c["name"], c.get("input"),
                                                            t.bounds))
            else:
                t.output.add(c.get("text"))
                t.output.add(c.get("thinking"))
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        e = as_object(obj)
        if e is None:
            return
        kind = e.get("type")
        key = ("block", as_index(e.get("index")))
        if kind == "message_start":
            message = as_object(e.get("message")) or {}
            t.set_model(message.get("model"))
            self._merge(message.get("usage"))
        elif kind == "content_block_start":
            block = as_object(e.get("content_block")) or {}
            if block.get("type") in CALL_BLOCKS and isinstance(block.get("name"), str):
                t.calls.name(key, block["name"], block.get("input"))
            t.output.add(block.get("text"))
        elif kind == "content_block_delta":
            delta = as_object(e.get("delta")) or {}
            partial = as_str(delta.get("partial_json"))
            if partial is not None:
                t.calls.fragment(key, partial)
            t.output.add(partial)
            t.output.add(delta.get("text"))
            t.output.add(delta.get("thinking"))
        elif kind == "message_delta":
            delta = as_object(e.get("delta")) or {}
            t.set_finish(delta.get("stop_reason"))
            self._merge(e.get("usage"))
        elif kind == "message_stop":
            t.complete = True
        elif kind == "error":
            t.set_error(e.get("error"))

    def partial(self, name: str | None, found: JsonObject, t: Tally) -> None:
        t.set_model(found.get("model"))
        self._merge(found.get("usage"))

    def finish(self, t: Tally) -> None:
        usage = from_anthropic(self._usage)
        if usage is not None:
            t.usage = usage
