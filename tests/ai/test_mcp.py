"""MCP: a ``tools/list`` answer rewritten to the tools an agent may call."""

from __future__ import annotations

import json

import pytest

from gatewayd.ai import filter_tools_list
from gatewayd.errors import ParseError
from tests.ai.corpus import load, raw


def allowed(name: str) -> bool:
    return name != "delete_records"


def names(obj: object) -> list[str]:
    assert isinstance(obj, dict)
    return [tool["name"] for tool in obj["result"]["tools"]]


def test_a_json_answer_keeps_only_allowed_tools() -> None:
    out = filter_tools_list(raw("mcp_tools_list_response.json"), allowed)
    got = json.loads(out)
    assert names(got) == ["get_weather", "query_database"]
    assert got["result"]["nextCursor"] == "next-page-cursor"
    assert got["result"]["tools"][0] == load("mcp_tools_list_response.json")["result"]["tools"][0]


def test_an_answer_with_nothing_to_drop_is_returned_as_it_came() -> None:
    body = raw("mcp_tools_list_response.json")
    assert filter_tools_list(body, lambda name: True) is body


def test_an_sse_answer_keeps_its_fields_and_line_ends() -> None:
    body = raw("mcp_tools_list_response.sse").replace(b"\n", b"\r\n")
    out = filter_tools_list(body, allowed)
    lines = out.split(b"\r\n")
    assert lines[:2] == [b"event: message", b"id: 1a2b"]
    assert lines[2].startswith(b"data: ")
    assert names(json.loads(lines[2][6:])) == ["get_weather", "query_database"]
    assert out.endswith(b"\r\n\r\n")


def test_other_events_and_messages_are_untouched() -> None:
    progress = b'data: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n'
    endpoint = b"event: endpoint\ndata: /messages?sessionId=abc\n\n"
    body = progress + endpoint + raw("mcp_tools_list_response.sse")
    out = filter_tools_list(body, allowed)
    assert out.startswith(progress + endpoint)
    assert b"delete_records" not in out


def test_a_batch_answer_is_filtered_message_by_message() -> None:
    batch = [load("mcp_tools_list_response.json"),
             {"jsonrpc": "2.0", "id": 9, "result": {"content": [], "isError": False}}]
    out = json.loads(filter_tools_list(json.dumps(batch).encode(), allowed))
    assert names(out[0]) == ["get_weather", "query_database"]
    assert out[1] == batch[1]


def test_tools_without_a_name_are_dropped() -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
        {"name": "ok"}, {"description": "nameless"}, "junk", {"name": 5}]}}).encode()
    assert names(json.loads(filter_tools_list(body, lambda n: True))) == ["ok"]


@pytest.mark.parametrize("body", [b'{"jsonrpc": "2.0", "id": 1, "result": {"tools": [',
                                  b"data: {not json\n\n"])
def test_an_answer_that_cannot_be_read_raises(body: bytes) -> None:
    with pytest.raises(ParseError):
        filter_tools_list(body, allowed)
