"""The lab upstream's MCP server, without IO: JSON-RPC 2.0 over HTTP at ``POST /mcp``.

Enough of the Model Context Protocol's HTTP transport for the gateway's tests: a JSON-RPC
request (or a batch) in the body; ``initialize``, ``tools/list`` (the lab's three tools:
``files.read``, ``web.search``, ``shell.exec``) and ``tools/call`` (echoes the tool's name
and its arguments' keys) are answered in JSON; other methods get the JSON-RPC error
``-32601``; notifications (no ``id``) get ``202`` with no body. With ``?sse=1`` the answer
is one server-sent ``message`` event instead, as a Streamable HTTP server may send it.
"""

from __future__ import annotations

import json
from typing import Any

from gatewayd.lab.upstream_http import EventStream, Fixed, fixed_json

TOOLS = (
    {"name": "files.read", "description": "Read a file",
     "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}},
    {"name": "web.search", "description": "Search the web",
     "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}},
    {"name": "shell.exec", "description": "Run a shell command",
     "inputSchema": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
)


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def _answer(call: Any) -> dict[str, Any] | None:
    if not isinstance(call, dict) or call.get("jsonrpc") != "2.0" or \
            not isinstance(call.get("method"), str):
        return _error(None, -32600, "not a JSON-RPC 2.0 request")
    if "id" not in call:
        return None  # a notification
    rid, method = call["id"], call["method"]
    params: dict[str, Any] = call["params"] if isinstance(call.get("params"), dict) else {}
    if method == "initialize":
        return {"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": "2025-03-26", "capabilities": {"tools": {}},
            "serverInfo": {"name": "clawgress-lab", "version": "1"}}}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": rid, "result": {"tools": list(TOOLS)}}
    if method == "tools/call":
        name = params.get("name")
        if name not in {t["name"] for t in TOOLS}:
            return _error(rid, -32602, f"unknown tool {name!r}")
        arguments = params.get("arguments")
        keys = sorted(arguments) if isinstance(arguments, dict) else []
        return {"jsonrpc": "2.0", "id": rid, "result": {"content": [
            {"type": "text", "text": f"lab ran {name} with {', '.join(keys) or 'nothing'}"}]}}
    return _error(rid, -32601, f"method {method!r} not found")


def mcp_answer(body: bytes | None, sse: bool) -> Fixed | EventStream:
    """The answer to one MCP POST (``body`` None: over the size the lab keeps)."""
    if body is None:
        return fixed_json(413, _error(None, -32600, "the request is too large"))
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return fixed_json(400, _error(None, -32700, "parse error"))
    if isinstance(request, list):
        answers = [a for a in (_answer(c) for c in request) if a is not None]
        result: Any = answers or None
    else:
        result = _answer(request)
    if result is None:
        return Fixed(202, "application/json", b"")
    if sse:
        data = json.dumps(result, sort_keys=True).encode()
        return EventStream((b"event: message\ndata: " + data + b"\n\n",), 0)
    return fixed_json(200, result)
