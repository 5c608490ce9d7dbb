"""Tool-call arguments, summarized by shape: what a call passes, never the values.

Arguments are where an agent's model puts file paths, queries, commands and sometimes
credentials. The audit record and policy need to know which tool was called and roughly
with what; they must not copy the values. ``summarize_arguments`` writes the shape of a
JSON value — object keys (cut to ``KEY_CHARS``), types, and the lengths of strings,
lists and objects — within ``DEFAULT_SUMMARY_CHARS`` characters, for example::

    {"path": "/etc/passwd", "lines": [1, 2], "opts": {"follow": true}}
    → {path:str(11),lines:list(2),opts:{follow:bool}}

Keys are kept because they are the tool's parameter names, set by its schema. Numbers
and booleans show their type only. Nesting below ``MAX_DEPTH`` and keys beyond
``MAX_KEYS`` are counted, not shown.

``CallAssembly`` puts tool calls back together from a streamed answer, where a call's
name comes first and its arguments follow in fragments, within the same bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from gatewayd.ai.bounds import Bounds
from gatewayd.ai.request import ToolCall

KEY_CHARS = 32
MAX_KEYS = 32
MAX_DEPTH = 3
ELLIPSIS = "…"


def summarize_arguments(value: object, max_chars: int) -> str:
    """The shape of a parsed JSON value, at most ``max_chars`` characters."""
    budget = [MAX_KEYS]

    def shape(v: object, depth: int) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        if v is None:
            return "null"
        if isinstance(v, str):
            return f"str({len(v)})"
        if isinstance(v, list):
            return f"list({len(v)})"
        if isinstance(v, dict):
            if depth >= MAX_DEPTH:
                return f"object({len(v)})"
            parts: list[str] = []
            for key, item in v.items():
                if budget[0] <= 0:
                    parts.append(f"{ELLIPSIS}+{len(v) - len(parts)}")
                    break
                budget[0] -= 1
                name = key if len(key) <= KEY_CHARS else key[:KEY_CHARS] + ELLIPSIS
                parts.append(f"{name}:{shape(item, depth + 1)}")
            return "{" + ",".join(parts) + "}"
        return type(v).__name__

    text = shape(value, 0)
    return text if len(text) <= max_chars else text[:max_chars - 1] + ELLIPSIS


def summarize_argument_text(text: str, bounds: Bounds) -> str:
    """The shape of arguments sent as JSON text (OpenAI's ``function.arguments``).
    Text over ``max_argument_bytes`` or not JSON is summarized by its length only."""
    if not text.strip():
        return "{}"
    if len(text) > bounds.max_argument_bytes:
        return f"unread({len(text)})"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return f"text({len(text)})"
    return summarize_arguments(value, bounds.summary_chars)


def call_from_text(name: str, text: str, bounds: Bounds) -> ToolCall:
    return ToolCall(bound_name(name, bounds), summarize_argument_text(text, bounds), len(text))


def call_from_value(name: str, value: object, bounds: Bounds) -> ToolCall:
    """A call whose arguments arrive parsed (Anthropic ``input``, Gemini ``args``, Bedrock
    ``input``, MCP ``arguments``)."""
    try:
        size = len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        size = 0
    return ToolCall(bound_name(name, bounds), summarize_arguments(value, bounds.summary_chars),
                    size)


def bound_name(name: str, bounds: Bounds) -> str:
    """A name (of a tool, a model) cut to ``max_name_chars``."""
    return name if len(name) <= bounds.max_name_chars else name[:bounds.max_name_chars]


@dataclass
class _Pending:
    name: str | None = None
    parts: list[str] = field(default_factory=list)
    size: int = 0
    initial: object = None
    whole: ToolCall | None = None


class CallAssembly:
    """Tool calls of a streamed answer, keyed by the stream's own index for each call
    (a choice and tool-call index, a content block, an output item)."""

    def __init__(self, bounds: Bounds) -> None:
        self._bounds = bounds
        self._pending: dict[object, _Pending] = {}

    def _slot(self, key: object) -> _Pending | None:
        slot = self._pending.get(key)
        if slot is None and len(self._pending) < self._bounds.max_tool_calls:
            slot = self._pending[key] = _Pending()
        return slot

    def name(self, key: object, name: object, initial: object = None) -> None:
        """The call ``key`` is to the tool ``name`` (``initial``: arguments given whole
        with the name, used when no fragment follows). Not a name: ignored."""
        if not isinstance(name, str) or not name:
            return
        slot = self._slot(key)
        if slot is not None and slot.name is None:
            slot.name = name
            slot.initial = initial

    def fragment(self, key: object, text: object) -> None:
        """A piece of the arguments' JSON text of call ``key`` (not text: ignored)."""
        if not isinstance(text, str):
            return
        slot = self._slot(key)
        if slot is None:
            return
        slot.size += len(text)
        if slot.size <= self._bounds.max_argument_bytes:
            slot.parts.append(text)

    def whole(self, key: object, call: ToolCall) -> None:
        """The complete call ``key`` (replaces what its fragments said)."""
        slot = self._slot(key)
        if slot is not None:
            slot.whole = call

    def calls(self) -> tuple[ToolCall, ...]:
        out = []
        for slot in self._pending.values():
            if slot.whole is not None:
                out.append(slot.whole)
                continue
            if slot.name is None:
                continue
            if slot.size > self._bounds.max_argument_bytes:
                out.append(ToolCall(bound_name(slot.name, self._bounds),
                                    f"unread({slot.size})", slot.size))
            elif slot.parts or slot.initial is None:
                out.append(call_from_text(slot.name, "".join(slot.parts), self._bounds))
            else:
                out.append(call_from_value(slot.name, slot.initial, self._bounds))
        return tuple(out)
