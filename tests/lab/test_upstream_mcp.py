"""The upstream's MCP server: JSON-RPC answers, batches, notifications, SSE."""

from __future__ import annotations

import json
from typing import Any

from gatewayd.lab.upstream_http import EventStream, Fixed, RequestHead, Served, route
from gatewayd.lab.upstream_mcp import TOOLS, mcp_answer

SERVED = Served("http", "10.78.0.10", 80, "10.77.0.11", 40000)


def rpc(method: str, rid: int | None = 1, **params: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if rid is not None:
        call["id"] = rid
    return call


def answer(body: Any) -> Any:
    got = mcp_answer(json.dumps(body).encode(), sse=False)
    assert isinstance(got, Fixed)
    return json.loads(got.body) if got.body else got.status


def test_tools_list_and_call() -> None:
    listed = answer(rpc("tools/list"))
    assert [t["name"] for t in listed["result"]["tools"]] == [t["name"] for t in TOOLS]
    called = answer(rpc("tools/call", name="web.search", arguments={"q": "x"}))
    assert called["result"]["content"][0]["text"] == "lab ran web.search with q"
    assert answer(rpc("tools/call", name="nope"))["error"]["code"] == -32602
    assert answer(rpc("nope/nope"))["error"]["code"] == -32601


def test_batches_notifications_and_garbage() -> None:
    both = answer([rpc("initialize", 1), rpc("notifications/initialized", None),
                   rpc("tools/list", 2)])
    assert [a["id"] for a in both] == [1, 2]
    assert answer(rpc("notifications/initialized", None)) == 202
    got = mcp_answer(b"{nope", sse=False)
    assert isinstance(got, Fixed) and got.status == 400


def test_an_sse_answer_is_one_message_event() -> None:
    got = mcp_answer(json.dumps(rpc("tools/list")).encode(), sse=True)
    assert isinstance(got, EventStream)
    (event,) = got.events
    assert event.startswith(b"event: message\ndata: {")
    assert json.loads(event.split(b"data: ", 1)[1])["id"] == 1


def test_the_route() -> None:
    head = RequestHead("POST", "/mcp?sse=1", "HTTP/1.1", ())
    assert route(head, SERVED, {}).sse is True  # type: ignore[union-attr]
    assert route(RequestHead("GET", "/mcp", "HTTP/1.1", ()), SERVED, {}).status == 405  # type: ignore[union-attr]
