"""The two accumulators the provider readers fill.

``Reading`` collects what a request body says (prompt text, tools, calls, model...) and
``Tally`` what a response says (usage, tool calls, output text), each within the
analyzer's ``Bounds``: lists are read up to a count, names cut to a length, and output
text kept up to a sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gatewayd.ai.arguments import CallAssembly, bound_name, call_from_text, call_from_value
from gatewayd.ai.bounds import Bounds
from gatewayd.ai.parsed import JsonObject, as_count, as_object, as_str, dumps
from gatewayd.ai.request import ToolCall
from gatewayd.ai.usage import Usage


class Reading:
    """What a request body says, gathered by one of the provider readers."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        # The URL names the model (Gemini, Bedrock, Vertex AI) or an Azure deployment, so
        # a body without one is in its normal shape.
        self.model_in_url = False
        self.model: str | None = None
        self.stream = False
        self.stream_usage: bool | None = None
        self.max_output_tokens: int | None = None
        self.texts: list[str] = []
        self.attachments = 0
        self.messages = 0
        self.token_ids = 0
        # >1 when only the newest ``max_items`` messages were read (``walk``).
        self.scale = 1.0
        self.declared: list[str] = []
        self.calls: list[ToolCall] = []
        self.mcp_methods: list[str] = []
        self.mcp_tools: list[str] = []
        # Why the body is not the shape its endpoint takes (``None``: it is).
        self.problem: str | None = None

    def refuse(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def set_model(self, value: object, *, required: bool = True) -> None:
        model = as_str(value)
        if model is None or not model:
            if (required and not self.model_in_url) or value is not None:
                self.refuse("no model named")
            return
        if len(model) > self.bounds.max_name_chars:
            self.refuse(f"a model name of {len(model)} characters")
            return
        self.model = model

    def set_max_output(self, *values: object) -> None:
        """The first of ``values`` that is a count (APIs have older and newer names)."""
        for value in values:
            count = as_count(value)
            if count is not None:
                self.max_output_tokens = count
                return

    def text(self, value: object) -> None:
        if isinstance(value, str) and value:
            self.texts.append(value)

    def walk(self, items: object, what: str) -> list[Any]:
        """The entries of a list to read: all, or the newest ``max_items`` with the
        estimate scaled to the rest. Not a list: refused."""
        if not isinstance(items, list):
            self.refuse(f"{what} is not a list")
            return []
        limit = self.bounds.max_items
        if len(items) <= limit:
            return items
        self.scale = max(self.scale, len(items) / limit)
        return items[-limit:]

    def messages_in(self, items: object) -> Iterator[JsonObject]:
        """The messages to read (``walk``ed), each counted; one that is not an object is
        refused and skipped."""
        for m in self.walk(items, "messages"):
            if isinstance(m, dict):
                self.messages += 1
                yield m
            else:
                self.refuse("a message is not an object")

    def some(self, items: object) -> list[Any]:
        """The first ``max_items`` entries of a list inside a message (parts, calls,
        tools); anything else: none."""
        return items[:self.bounds.max_items] if isinstance(items, list) else []

    def declare(self, name: object) -> None:
        if isinstance(name, str) and name and len(self.declared) < self.bounds.max_tools:
            name = bound_name(name, self.bounds)
            if name not in self.declared:
                self.declared.append(name)

    def call_text(self, name: object, arguments: object) -> None:
        """A call whose arguments are JSON text; the text counts toward the prompt."""
        text = arguments if isinstance(arguments, str) else dumps(arguments)
        self.text(text)
        if isinstance(name, str) and name and len(self.calls) < self.bounds.max_tool_calls:
            self.calls.append(call_from_text(name, text, self.bounds))

    def call_value(self, name: object, arguments: object) -> None:
        """A call whose arguments are a parsed JSON value."""
        self.text(dumps(arguments))
        if isinstance(name, str) and name and len(self.calls) < self.bounds.max_tool_calls:
            self.calls.append(call_from_value(name, arguments, self.bounds))


class OutputText:
    """Generated text seen in a response: its length counted whole, its first
    ``sample_chars`` characters kept to estimate output tokens from."""

    def __init__(self, sample_chars: int) -> None:
        self.chars = 0
        self._limit = sample_chars
        self._kept = 0
        self.sample: list[str] = []

    def add(self, value: object) -> None:
        if not isinstance(value, str) or not value:
            return
        self.chars += len(value)
        room = self._limit - self._kept
        if room > 0:
            piece = value[:room]
            self.sample.append(piece)
            self._kept += len(piece)


class Tally:
    """What a response says, gathered by one of the provider readers as it streams."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.usage: Usage | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        # The answer's own end marker was read (``[DONE]``, ``message_stop``...).
        self.complete = False
        # An error the provider reported inside the answer (its type or code only).
        self.error: str | None = None
        self.calls = CallAssembly(bounds)
        self.output = OutputText(bounds.output_sample_chars)
        self.mcp_tools: list[str] = []
        self.events = 0

    def set_model(self, value: object) -> None:
        model = as_str(value)
        if model and self.model is None:
            self.model = bound_name(model, self.bounds)

    def set_finish(self, value: object) -> None:
        reason = as_str(value)
        if reason:
            self.finish_reason = reason[:64]

    def set_error(self, value: object) -> None:
        """An error object or code: keeps its ``type``/``code``, never its message."""
        obj = as_object(value)
        kind: object = value
        if obj is not None:
            kind = obj.get("type") or obj.get("code") or obj.get("status") or "error"
        if isinstance(kind, int) and not isinstance(kind, bool):
            kind = str(kind)
        self.error = kind[:64] if isinstance(kind, str) and kind else "error"


class AnswerReader:
    """Reads one provider's answers into a ``Tally``; this base reads nothing.

    The meter calls ``body`` with a whole JSON answer, ``event`` with each streamed
    message (parsed JSON, and the SSE event name or event-stream event type),
    ``partial`` with what it found of an oversize message's ``head_keys`` (in its first
    bytes) and ``tail_keys`` (in its last), ``exception`` for an event-stream exception,
    and ``finish`` at the end. Every method takes any JSON value: the peer wrote it.
    """

    head_keys: tuple[str, ...] = ("model",)
    tail_keys: tuple[str, ...] = ("usage",)

    def body(self, obj: object, t: Tally) -> None:
        self.event(None, obj, t)
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        return None

    def partial(self, name: str | None, found: JsonObject, t: Tally) -> None:
        self.event(name, found, t)

    def exception(self, name: str | None, t: Tally) -> None:
        t.set_error(name or "exception")

    def finish(self, t: Tally) -> None:
        return None
