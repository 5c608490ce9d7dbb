"""The Model Context Protocol over HTTP: JSON-RPC 2.0 messages an agent POSTs to an MCP
server, answered with JSON or with server-sent events (the Streamable HTTP transport).

An MCP request is recognized by its body on any host and path: JSON-RPC 2.0 messages (one,
or a batch array) with an MCP method (``initialize``, ``tools/call``, ``notifications/...``)
or sent with the ``Mcp-Session-Id`` / ``MCP-Protocol-Version`` headers. ``read_mcp``
lists the methods and, for ``tools/call``, the tool and its arguments' shape.

``McpAnswer`` reads the answer: the tools a ``tools/list`` result offers, and errors
(JSON-RPC errors, and tool results with ``isError``).

``filter_tools_list`` rewrites a ``tools/list`` answer so that an agent only sees the
tools it may call: pure, bytes in and bytes out, for a JSON body or SSE events.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from gatewayd.ai.arguments import bound_name
from gatewayd.ai.parsed import JsonObject, as_list, as_object, as_str
from gatewayd.ai.reading import AnswerReader, Reading, Tally
from gatewayd.errors import ParseError

METHODS = frozenset({
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
    "resources/templates/list", "resources/subscribe", "resources/unsubscribe",
    "prompts/list", "prompts/get", "completion/complete", "logging/setLevel",
    "sampling/createMessage", "elicitation/create", "roots/list", "tasks/get",
    "tasks/list", "tasks/result", "tasks/cancel",
})
NOTIFICATION_PREFIX = "notifications/"
MCP_HEADERS = ("mcp-session-id", "mcp-protocol-version")


def _messages(body: object) -> list[object]:
    return body if isinstance(body, list) else [body]


def is_mcp(body: object, mcp_headers: bool) -> bool:
    """Whether a parsed body is MCP: JSON-RPC 2.0 throughout, and an MCP method or the
    ``Mcp-Session-Id`` / ``MCP-Protocol-Version`` headers."""
    messages = _messages(body)
    if not messages or not all(isinstance(m, dict) and m.get("jsonrpc") == "2.0"
                               for m in messages):
        return False
    if mcp_headers:
        return True
    for m in messages:
        method = as_str(m.get("method")) if isinstance(m, dict) else None
        if method is not None and (method in METHODS
                                   or method.startswith(NOTIFICATION_PREFIX)):
            return True
    return False


def read_mcp(body: object, r: Reading) -> None:
    for message in r.some(_messages(body)):
        m = as_object(message)
        if m is None:
            continue
        method = as_str(m.get("method"))
        if method is None:
            continue
        r.mcp_methods.append(bound_name(method, r.bounds))
        if method != "tools/call":
            continue
        params = as_object(m.get("params")) or {}
        name = as_str(params.get("name"))
        if name:
            r.mcp_tools.append(bound_name(name, r.bounds))
            r.call_value(name, params.get("arguments", {}))
        else:
            r.refuse("tools/call names no tool")


class McpAnswer(AnswerReader):
    """JSON-RPC answers: one message, a batch, or one per SSE event."""

    head_keys = ()
    tail_keys = ()

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        for message in _messages(obj)[:t.bounds.max_items]:
            m = as_object(message)
            if m is None:
                continue
            if "result" in m or "error" in m:
                t.complete = True
            if m.get("error") is not None:
                t.set_error(m["error"])
            result = as_object(m.get("result")) or {}
            if result.get("isError") is True:
                t.set_error("tool-error")
            for tool in as_list(result.get("tools")):
                if len(t.mcp_tools) >= t.bounds.max_tools:
                    break
                tool_name = as_str((as_object(tool) or {}).get("name"))
                if tool_name:
                    t.mcp_tools.append(bound_name(tool_name, t.bounds))


def _keep_allowed(obj: object, allowed: Callable[[str], bool]) -> bool:
    """Drop the tools ``allowed`` refuses from every ``tools/list`` result in ``obj``
    (in place); whether anything was dropped. A tool without a name is dropped."""
    changed = False
    for message in _messages(obj):
        result = as_object((as_object(message) or {}).get("result"))
        tools = result.get("tools") if result is not None else None
        if result is None or not isinstance(tools, list):
            continue
        kept = [tool for tool in tools if isinstance(tool, dict)
                and isinstance(tool.get("name"), str) and allowed(tool["name"])]
        if len(kept) != len(tools):
            result["tools"] = kept
            changed = True
    return changed


def filter_tools_list(body: bytes, allowed: Callable[[str], bool]) -> bytes:
    """``body`` — a ``tools/list`` answer: a JSON-RPC message or batch, or SSE events
    carrying them — with only the tools whose name ``allowed`` accepts.

    Everything else is kept as it was: other messages, other results, SSE fields and
    line ends. An unchanged body is returned as it came. Raises ``ParseError`` when a
    JSON body, or an SSE message event's data, is not JSON: the caller decides (failing
    closed means not forwarding it). The body's length changes: the caller re-frames it.
    """
    start = body.lstrip()[:1]
    if start in (b"{", b"["):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"the tools/list answer is not JSON: {exc}") from None
        return orjson.dumps(obj) if _keep_allowed(obj, allowed) else body
    out: list[bytes] = []
    event: list[bytes] = []
    changed = False
    for line in body.splitlines(keepends=True):
        if line.strip(b"\r\n"):
            event.append(line)
            continue
        changed |= _rewrite_event(event, allowed, out)
        out.append(line)
        event = []
    changed |= _rewrite_event(event, allowed, out)
    return b"".join(out) if changed else body


def _rewrite_event(lines: list[bytes], allowed: Callable[[str], bool],
                   out: list[bytes]) -> bool:
    """One SSE event's lines, rewritten into ``out``; whether its data changed."""
    data: list[bytes] = []
    name: bytes | None = None
    for line in lines:
        field, colon, value = _field(line)
        if field == b"data":
            data.append(value)
        elif field == b"event" and colon:
            name = value
    if not data:
        out.extend(lines)
        return False
    try:
        obj: JsonObject | list[object] = orjson.loads(b"\n".join(data))
    except orjson.JSONDecodeError:
        if name not in (None, b"message"):
            out.extend(lines)
            return False
        raise ParseError("an SSE message event of the tools/list answer is not JSON") from None
    if not _keep_allowed(obj, allowed):
        out.extend(lines)
        return False
    first = True
    for line in lines:
        if _field(line)[0] == b"data":
            if first:
                ending = line[len(line.rstrip(b"\r\n")):]
                out.append(b"data: " + orjson.dumps(obj) + ending)
                first = False
            continue
        out.append(line)
    return True


def _field(line: bytes) -> tuple[bytes, bytes, bytes]:
    """An SSE line's field name, colon (empty if none) and value."""
    field, colon, value = line.rstrip(b"\r\n").partition(b":")
    return field, colon, value[1:] if value.startswith(b" ") else value
