"""OpenAI's APIs — Chat Completions, Completions, Embeddings and Responses — and the
many servers that speak them (Azure OpenAI, OpenRouter, vLLM, Ollama's ``/v1``...).

Requests: ``read_chat``, ``read_completions``, ``read_embeddings``, ``read_responses``.
Answers: ``ChatAnswer`` (Chat Completions, Completions and Embeddings, whole or streamed
as ``chat.completion.chunk`` events ending in ``[DONE]``; usage in a streamed answer only
with ``stream_options.include_usage``, in a last chunk whose ``choices`` is empty) and
``ResponsesAnswer`` (a Response object, or its typed events up to ``response.completed``,
``response.incomplete`` or ``response.failed``, which carry the usage).
"""

from __future__ import annotations

from gatewayd.ai.arguments import call_from_text, call_from_value
from gatewayd.ai.parsed import JsonObject, as_index, as_list, as_object, as_str, dumps
from gatewayd.ai.reading import AnswerReader, Reading, Tally
from gatewayd.ai.usage import from_openai_chat, from_openai_responses

# Content parts that carry text, and the key it is under.
TEXT_PARTS = {"text": "text", "input_text": "text", "output_text": "text",
              "refusal": "refusal", "summary_text": "text", "reasoning_text": "text"}
# Responses API built-in tools' call items: ``web_search_call`` → ``web_search``.
CALL_SUFFIX = "_call"


def content(value: object, r: Reading) -> None:
    """A message's content: a string, or a list of typed parts."""
    if isinstance(value, str):
        r.text(value)
        return
    for part in r.some(value):
        p = as_object(part)
        if p is None:
            continue
        kind = p.get("type")
        key = TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        if key is not None:
            r.text(p.get(key))
        elif kind is not None:
            r.attachments += 1


def declare_tools(tools: object, r: Reading) -> None:
    """Chat (``{"type": "function", "function": {...}}``) and Responses (flat) tools."""
    for tool in r.some(tools):
        t = as_object(tool)
        if t is None:
            continue
        spec = as_object(t.get("function")) or as_object(t.get("custom")) or t
        kind = as_str(t.get("type"))
        name = spec.get("name")
        if kind == "mcp":
            name = f"mcp:{t.get('server_label')}"
        elif not isinstance(name, str) and kind:
            name = kind
        r.declare(name)
        r.text(spec.get("name"))
        r.text(spec.get("description"))
        for key in ("parameters", "input_schema", "format"):
            if spec.get(key) is not None:
                r.text(dumps(spec[key]))


def read_chat(body: JsonObject, r: Reading) -> None:
    r.set_model(body.get("model"))
    r.stream = body.get("stream") is True
    if r.stream:
        options = as_object(body.get("stream_options")) or {}
        r.stream_usage = options.get("include_usage") is True
    r.set_max_output(body.get("max_completion_tokens"), body.get("max_tokens"))
    texts = r.texts
    for m in r.messages_in(body.get("messages")):
        value = m.get("content")
        if isinstance(value, str):  # the common case, read inline
            if value:
                texts.append(value)
        else:
            content(value, r)
        if "name" in m:
            r.text(m["name"])
        if "tool_calls" in m:
            _calls(m["tool_calls"], r)
        if "function_call" in m:
            legacy = as_object(m["function_call"]) or {}
            r.call_text(legacy.get("name"), legacy.get("arguments"))
    declare_tools(body.get("tools"), r)
    declare_tools(body.get("functions"), r)


def _calls(calls: object, r: Reading) -> None:
    """An assistant message's tool calls (function or custom)."""
    for call in r.some(calls):
        c = as_object(call) or {}
        fn = as_object(c.get("function"))
        custom = as_object(c.get("custom"))
        if fn is not None:
            r.call_text(fn.get("name"), fn.get("arguments"))
        elif custom is not None:
            r.call_text(custom.get("name"), custom.get("input"))


def prompt(value: object, r: Reading, what: str) -> None:
    """A prompt or input: a string, strings, token ids, or lists of token ids."""
    if isinstance(value, str):
        r.text(value)
        return
    for item in r.walk(value, what):
        if isinstance(item, str):
            r.text(item)
        elif isinstance(item, int):
            r.token_ids += 1
        elif isinstance(item, list):
            r.token_ids += len(item)


def read_completions(body: JsonObject, r: Reading) -> None:
    r.set_model(body.get("model"))
    r.stream = body.get("stream") is True
    if r.stream:
        options = as_object(body.get("stream_options")) or {}
        r.stream_usage = options.get("include_usage") is True
    r.set_max_output(body.get("max_tokens"))
    prompt(body.get("prompt"), r, "prompt")


def read_embeddings(body: JsonObject, r: Reading) -> None:
    r.set_model(body.get("model"))
    prompt(body.get("input"), r, "input")


def read_responses(body: JsonObject, r: Reading) -> None:
    stored = body.get("prompt") is not None  # a stored prompt may name model and input
    r.set_model(body.get("model"), required=not stored)
    if "input" not in body and not stored:
        r.refuse("no input")
    r.stream = body.get("stream") is True
    r.set_max_output(body.get("max_output_tokens"))
    r.text(body.get("instructions"))
    value = body.get("input")
    if isinstance(value, str):
        r.messages += 1
        r.text(value)
    elif value is not None:
        for item in r.walk(value, "input"):
            _input_item(item, r)
    declare_tools(body.get("tools"), r)


def _input_item(item: object, r: Reading) -> None:
    i = as_object(item)
    if i is None:
        return
    kind = i.get("type", "message")
    if kind == "message":
        r.messages += 1
        content(i.get("content"), r)
    elif kind in ("function_call", "mcp_call"):
        r.call_text(i.get("name"), i.get("arguments"))
    elif kind == "custom_tool_call":
        r.call_text(i.get("name"), i.get("input"))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        out = i.get("output")
        if isinstance(out, str):
            r.text(out)
        else:
            content(out, r)
    elif kind == "reasoning":
        content(i.get("summary"), r)


class ChatAnswer(AnswerReader):
    """Chat Completions, Completions and Embeddings answers."""

    @staticmethod
    def _head(obj: object, t: Tally) -> JsonObject | None:
        """The answer (or chunk) as an object, its model, usage and error taken."""
        b = as_object(obj)
        if b is None:
            return None
        t.set_model(b.get("model"))
        usage = from_openai_chat(b.get("usage"))
        if usage is not None:
            t.usage = usage
        if b.get("error") is not None:
            t.set_error(b.get("error"))
        return b

    def body(self, obj: object, t: Tally) -> None:
        b = self._head(obj, t)
        if b is None:
            return
        for choice in as_list(b.get("choices"))[:t.bounds.max_items]:
            c = as_object(choice) or {}
            t.set_finish(c.get("finish_reason"))
            t.output.add(c.get("text"))
            message = as_object(c.get("message")) or {}
            t.output.add(message.get("content"))
            t.output.add(message.get("refusal"))
            for n, call in enumerate(as_list(message.get("tool_calls"))[:t.bounds.max_items]):
                fn = as_object((as_object(call) or {}).get("function")) or {}
                name, arguments = as_str(fn.get("name")), as_str(fn.get("arguments"))
                if name:
                    t.calls.whole((as_index(c.get("index")), n), call_from_text(
                        name, arguments or "", t.bounds))
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        chunk = self._head(obj, t)
        if chunk is None:
            return
        for choice in as_list(chunk.get("choices"))[:t.bounds.max_items]:
            c = as_object(choice) or {}
            t.set_finish(c.get("finish_reason"))
            t.output.add(c.get("text"))
            delta = as_object(c.get("delta")) or {}
            t.output.add(delta.get("content"))
            t.output.add(delta.get("refusal"))
            t.output.add(delta.get("reasoning_content"))
            which = as_index(c.get("index"))
            for call in as_list(delta.get("tool_calls"))[:t.bounds.max_items]:
                tc = as_object(call) or {}
                fn = as_object(tc.get("function")) or {}
                key = ("tool", which, as_index(tc.get("index")))
                if isinstance(fn.get("name"), str):
                    t.calls.name(key, fn["name"])
                if isinstance(fn.get("arguments"), str):
                    t.calls.fragment(key, fn["arguments"])
                    t.output.add(fn["arguments"])
            legacy = as_object(delta.get("function_call")) or {}
            if isinstance(legacy.get("name"), str):
                t.calls.name(("function", which), legacy["name"])
            if isinstance(legacy.get("arguments"), str):
                t.calls.fragment(("function", which), legacy["arguments"])
                t.output.add(legacy["arguments"])


class ResponsesAnswer(AnswerReader):
    """Responses API answers: a Response object, or its stream of typed events."""

    head_keys = ("type", "model")

    def body(self, obj: object, t: Tally) -> None:
        self._response(obj, t)
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        e = as_object(obj)
        if e is None:
            return
        kind = e.get("type")
        index = as_index(e.get("output_index"))
        if kind in ("response.created", "response.in_progress"):
            t.set_model((as_object(e.get("response")) or {}).get("model"))
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            t.output.add(e.get("delta"))
        elif kind in ("response.function_call_arguments.delta",
                      "response.custom_tool_call_input.delta", "response.mcp_call_arguments.delta"):
            t.calls.fragment(("item", index), e.get("delta"))
            t.output.add(e.get("delta"))
        elif kind == "response.output_item.added":
            item = as_object(e.get("item")) or {}
            if isinstance(item.get("name"), str):
                t.calls.name(("item", index), item["name"])
        elif kind == "response.output_item.done":
            self._call(("item", index), e.get("item"), t)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self._response(e.get("response"), t, items=False)
            t.complete = True
        elif kind == "error":
            t.set_error(e)

    def partial(self, name: str | None, found: JsonObject, t: Tally) -> None:
        """An oversize event: a final one gives its usage (found in its last bytes)."""
        if found.get("type") in ("response.completed", "response.incomplete",
                                 "response.failed"):
            usage = from_openai_responses(found.get("usage"))
            if usage is not None:
                t.usage = usage
            t.complete = True

    def _response(self, obj: object, t: Tally, *, items: bool = True) -> None:
        r = as_object(obj)
        if r is None:
            return
        t.set_model(r.get("model"))
        usage = from_openai_responses(r.get("usage"))
        if usage is not None:
            t.usage = usage
        if r.get("error") is not None:
            t.set_error(r.get("error"))
        t.set_finish(r.get("status"))
        if not items:
            return
        for n, item in enumerate(as_list(r.get("output"))[:t.bounds.max_items]):
            i = as_object(item) or {}
            if i.get("type") == "message":
                for part in as_list(i.get("content"))[:t.bounds.max_items]:
                    p = as_object(part) or {}
                    t.output.add(p.get("text"))
                    t.output.add(p.get("refusal"))
            else:
                self._call(("item", n), i, t)

    @staticmethod
    def _call(key: object, item: object, t: Tally) -> None:
        """A finished output item, when it is a tool call of any kind."""
        i = as_object(item)
        if i is None:
            return
        kind = as_str(i.get("type")) or ""
        name = as_str(i.get("name"))
        if kind in ("function_call", "mcp_call") and name:
            t.calls.whole(key, call_from_text(name, as_str(i.get("arguments")) or "",
                                              t.bounds))
        elif kind == "custom_tool_call" and name:
            t.calls.whole(key, call_from_text(name, as_str(i.get("input")) or "", t.bounds))
        elif kind.endswith(CALL_SUFFIX) and len(kind) > len(CALL_SUFFIX):
            action = i.get("action")
            t.calls.whole(key, call_from_value(kind[:-len(CALL_SUFFIX)],
                                               action if action is not None else {},
                                               t.bounds))
