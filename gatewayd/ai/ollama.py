"""Ollama's native API: ``/api/chat``, ``/api/generate`` and ``/api/embed`` (and the older
``/api/embeddings``). Its OpenAI-compatible ``/v1`` endpoints are read by ``openai``.

Ollama streams unless a request says ``"stream": false``, as JSON lines
(``application/x-ndjson``); the last line has ``"done": true`` and the counts:
``prompt_eval_count`` (input tokens) and ``eval_count`` (output tokens). Tool calls in
its messages carry their arguments as an object, not as JSON text.
"""

from __future__ import annotations

from gatewayd.ai import openai
from gatewayd.ai.arguments import call_from_value
from gatewayd.ai.parsed import JsonObject, as_list, as_object
from gatewayd.ai.reading import AnswerReader, Reading, Tally
from gatewayd.ai.usage import from_counts


def _options(body: JsonObject, r: Reading) -> None:
    r.stream = body.get("stream") is not False
    options = as_object(body.get("options")) or {}
    r.set_max_output(options.get("num_predict"))


def read_chat(body: JsonObject, r: Reading) -> None:
    r.set_model(body.get("model"))
    _options(body, r)
    for m in r.messages_in(body.get("messages")):
        r.text(m.get("content"))
        r.text(m.get("thinking"))
        r.attachments += len(as_list(m.get("images")))
        for call in r.some(m.get("tool_calls")):
            fn = as_object((as_object(call) or {}).get("function")) or {}
            r.call_value(fn.get("name"), fn.get("arguments"))
    openai.declare_tools(body.get("tools"), r)


def read_generate(body: JsonObject, r: Reading) -> None:
    r.set_model(body.get("model"))
    _options(body, r)
    if not isinstance(body.get("prompt"), str | None):
        r.refuse("prompt is not a string")
    r.messages += 1
    r.text(body.get("prompt"))
    r.text(body.get("system"))
    r.attachments += len(as_list(body.get("images")))


def read_embed(body: JsonObject, r: Reading) -> None:
    r.set_model(body.get("model"))
    if "input" in body:
        openai.prompt(body.get("input"), r, "input")
    else:
        openai.prompt(body.get("prompt"), r, "prompt")


class OllamaAnswer(AnswerReader):
    """Chat, generate and embed answers, whole or as JSON lines."""

    def __init__(self) -> None:
        self._calls = 0

    def body(self, obj: object, t: Tally) -> None:
        self.event(None, obj, t)
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        b = as_object(obj)
        if b is None:
            return
        if b.get("error") is not None:
            t.set_error("error")
        t.set_model(b.get("model"))
        t.output.add(b.get("response"))
        message = as_object(b.get("message")) or {}
        t.output.add(message.get("content"))
        t.output.add(message.get("thinking"))
        for call in as_list(message.get("tool_calls"))[:t.bounds.max_items]:
            fn = as_object((as_object(call) or {}).get("function")) or {}
            if isinstance(fn.get("name"), str):
                self._calls += 1
                t.calls.whole(("call", self._calls), call_from_value(
                    fn["name"], fn.get("arguments"), t.bounds))
        usage = from_counts(b.get("prompt_eval_count"), b.get("eval_count"))
        if usage is not None:
            t.usage = usage
        if b.get("done") is True:
            t.set_finish(b.get("done_reason"))
            t.complete = True
