"""The L7 engine's request pipeline over real sockets (the explicit proxy on loopback):
forwarding, refusals, framing, limits and timeouts, and hostile input."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import pytest

from gatewayd.dlp import Scanner
from gatewayd.l7.ai_stage import AiStage
from gatewayd.l7.dlp_stage import DlpStage
from gatewayd.l7.inspection import Findings, InspectionError
from gatewayd.l7.target import Target
from gatewayd.quota import usage_rows
from tests.l7.proxy_harness import AGENT, POLICY, Harness, exchange, running_proxy, status_codes


def _get(url: str, extra: bytes = b"") -> bytes:
    return f"GET {url} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n"


def test_a_request_is_forwarded_and_recorded() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [_get(h.url("/"))])
            assert status_codes(got) == [200]
            assert b"x-clawgress-request-id: " in got
            (event,) = [e for e in h.events if e.kind == "http.request"]
            f = event.fields
            assert (f["method"], f["path"], f["status"], f["action"]) == ("GET", "/", 200,
                                                                          "inspect")
            assert f["agent_id"] == "agent-1" and f["via"] == "proxy"
            assert f["bytes_in"] > 0 and f["latency_ms"] > 0
    asyncio.run(run())


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            body = b"x" * 3000
            post = (f"POST {h.url('/echo')} HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            got = await exchange(h.port, [_get(h.url("/")), post, _get(h.url("/admin/x"))])
            assert status_codes(got) == [200, 200, 403]
            assert b'"received": 3000' in got
            assert h.services.counters.get("upstream_connections") == 1
    asyncio.run(run())


def test_a_denied_request_gets_json_naming_the_rule() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [_get(h.url("/admin/keys"))])
            assert status_codes(got) == [403]
            body = json.loads(got.split(b"\r\n\r\n", 1)[1])
            assert body["error"] == "denied" and body["rule_id"] == "admin"
            assert body["policy_id"] == "harness" and body["request_id"]
    asyncio.run(run())


def test_expect_100_continue_is_answered_before_the_body() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
            writer.write(f"POST {h.url('/echo')} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         "Expect: 100-continue\r\n\r\n".encode())
            await writer.drain()
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert interim.startswith(b"HTTP/1.1 100 ")
            writer.write(b"hello")
            final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert final.startswith(b"HTTP/1.1 200 ")
            writer.close()
    asyncio.run(run())


def test_a_denied_request_with_expect_never_waits_for_its_body() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [
                f"POST {h.url('/admin')} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                "Expect: 100-continue\r\n\r\n".encode()])
            assert status_codes(got) == [403]
    asyncio.run(run())


@pytest.mark.parametrize(("limit", "mode", "expected"), [
    (1000, "deny", [413]), (1000, "forward", [200]), (10_000, "deny", [200])])
def test_a_body_over_the_inspect_limit_follows_the_configured_action(
        limit: int, mode: str, expected: list[int]) -> None:
    async def run() -> None:
        async with running_proxy(inspect_body_bytes=limit, body_over_limit=mode) as h:
            body = b"y" * 5000
            got = await exchange(h.port, [
                f"POST {h.url('/echo')} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
                .encode() + body])
            assert status_codes(got) == expected
            event = next(e for e in h.events if e.kind == "http.request")
            if mode == "forward" and limit < 5000:
                assert "body-uninspected" in event.fields["flags"]
                assert event.fields["bytes_out"] == 5000
    asyncio.run(run())


def test_a_chunked_body_is_forwarded_chunked() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [
                f"POST {h.url('/echo')} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                "\r\n".encode(), b"5\r\nhello\r\n", b"6\r\n world\r\n0\r\n\r\n"])
            assert status_codes(got) == [200] and b'"received": 11' in got
    asyncio.run(run())


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),            # origin-form on a proxy
    (b"GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),    # https:// without CONNECT
    (b"GET http://x/%2e%2e%2fetc HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET http://user:pw@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET http://x/ HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    (b"POST http://x/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     400),
    (b"GET http://x/ HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 40000 + b"\r\n\r\n", 431),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400),  # TLS garbage
])
def test_bad_requests_get_a_clean_error(request_bytes: bytes, status: int) -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [request_bytes])
            assert status_codes(got) == [status], got[:300]
            assert h.services.counters.get("connections_failed") is None
    asyncio.run(run())


def test_a_truncated_body_ends_the_connection_without_a_stall() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [
                f"POST {h.url('/echo')} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                "short".encode()])
            assert status_codes(got) in ([], [400], [502])
            assert h.services.counters.get("connections_failed") is None
    asyncio.run(run())


def test_a_partial_head_is_closed_at_the_header_timeout() -> None:
    async def run() -> None:
        async with running_proxy(header_timeout=1) as h:
            reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
            writer.write(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            await writer.drain()
            loop = asyncio.get_running_loop()
            started = loop.time()
            # Keep trickling: a byte every 0.3 s never completes the head.
            closed = False
            while loop.time() - started < 4:
                try:
                    writer.write(b"a")
                    await writer.drain()
                except ConnectionError:
                    closed = True
                    break
                try:
                    data = await asyncio.wait_for(reader.read(100), 0.3)
                except TimeoutError:
                    continue
                if not data:
                    closed = True
                    break
            assert closed and loop.time() - started < 2.5
            assert h.services.counters.get("header_timeouts") == 1
            writer.close()
    asyncio.run(run())


def test_an_http_1_0_client_gets_a_response_it_can_read() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [f"GET {h.url('/')} HTTP/1.0\r\n\r\n".encode()])
            assert got.startswith(b"HTTP/1.1 200 ") and b'"name": "loopback"' in got
    asyncio.run(run())


def test_an_upstream_that_refuses_gets_502() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            closed = socket.socket()
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
            closed.close()  # nothing listens there now
            got = await exchange(h.port, [_get(f"http://127.0.0.1:{port}/")])
            assert status_codes(got) == [502]
            event = next(e.fields for e in h.events if e.kind == "http.request")
            assert "upstream-failed" in event["flags"] and event["status"] == 502
    asyncio.run(run())


def test_an_upstream_that_never_answers_gets_504_at_the_upstream_timeout() -> None:
    async def run() -> None:
        async with running_proxy(upstream_timeout=1) as h:
            held: list[asyncio.StreamWriter] = []

            def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                held.append(writer)  # reads nothing, answers nothing

            server = await asyncio.start_server(silent, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                got = await exchange(h.port, [_get(f"http://127.0.0.1:{port}/")])
            finally:
                for writer in held:
                    writer.close()
                server.close()
                await server.wait_closed()
            assert status_codes(got) == [504]
            assert loop.time() - started < 3
    asyncio.run(run())


class ModelReader:
    """An inspection that reads ``model=NAME`` out of a body; ``model=explode`` fails."""

    name = "model"

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bool]] = []

    def look(self, method: str, target: Target, headers: list[tuple[bytes, bytes]],
             body: bytes, whole: bool) -> Findings:
        self.seen.append((body, whole))
        if not body.startswith(b"model="):
            return Findings()
        model = body[6:].decode()
        if model == "explode":
            raise InspectionError("the body could not be parsed")
        return Findings(model=model, record={"model_seen": {"model": model}})


def _post(url: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def test_what_an_inspection_finds_in_the_body_decides_and_is_recorded() -> None:
    async def run() -> None:
        reader = ModelReader()
        async with running_proxy(inspections=(reader,)) as h:
            got = await exchange(h.port, [_post(h.url("/echo"), b"model=good-1"),
                                          _post(h.url("/echo"), b"model=bad-2"),
                                          _post(h.url("/echo"), b"model=good-3")])
            assert status_codes(got) == [200, 403, 200]
            assert reader.seen == [(b"model=good-1", True), (b"model=bad-2", True),
                                   (b"model=good-3", True)]
            records = [e.fields for e in h.events if e.kind == "http.request"]
            assert [r["rule_id"] for r in records] == ["loopback", "no-bad-model", "loopback"]
            assert [r["model_seen"] for r in records] == [
                {"model": m} for m in ("good-1", "bad-2", "good-3")]
    asyncio.run(run())


def test_without_inspections_a_rule_on_the_body_never_holds() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [_post(h.url("/echo"), b"model=bad-2")])
            assert status_codes(got) == [200]
    asyncio.run(run())


def test_an_inspection_that_fails_refuses_the_request() -> None:
    async def run() -> None:
        async with running_proxy(inspections=(ModelReader(),)) as h:
            got = await exchange(h.port, [_post(h.url("/echo"), b"model=explode"),
                                          _post(h.url("/echo"), b"model=good")])
            assert status_codes(got) == [403, 200]
            body = json.loads(got.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])
            assert "could not be inspected" in body["reason"]
            first = next(e.fields for e in h.events if e.kind == "http.request")
            assert "inspection-failed" in first["flags"] and first["status"] == 403
    asyncio.run(run())


def test_an_inspected_body_is_asked_for_with_100_continue_and_then_decided() -> None:
    async def run() -> None:
        async with running_proxy(inspections=(ModelReader(),)) as h:
            reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
            writer.write(f"POST {h.url('/echo')} HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
                         "Expect: 100-continue\r\n\r\n".encode())
            await writer.drain()
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert interim.startswith(b"HTTP/1.1 100 ")
            writer.write(b"model=bad-x")
            final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert final.startswith(b"HTTP/1.1 403 ")
            writer.close()
    asyncio.run(run())


@pytest.mark.parametrize(("mode", "expected"), [("deny", 413), ("forward", 200)])
def test_an_inspected_body_over_the_limit_follows_the_configured_action(
        mode: str, expected: int) -> None:
    async def run() -> None:
        reader = ModelReader()
        async with running_proxy(inspections=(reader,), inspect_body_bytes=1000,
                                 body_over_limit=mode) as h:
            got = await exchange(h.port, [_post(h.url("/echo"), b"model=good" + b"z" * 4000)])
            assert status_codes(got) == [expected]
            assert reader.seen == ([] if mode == "deny" else [(reader.seen[0][0], False)])
    asyncio.run(run())


class Counter:
    """A response watch: the status, the bytes it saw, and how it ended."""

    def __init__(self, log: list[dict[str, object]], *, fail: bool = False) -> None:
        self.log = log
        self.fail = fail
        self.status: int | None = None
        self.size = 0
        self.pieces = 0

    def head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status

    def feed(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("this watch breaks")
        self.size += len(data)
        self.pieces += 1

    def end(self, status: int | None, complete: bool) -> dict[str, object]:
        said: dict[str, object] = {"seen": {"size": self.size, "complete": complete,
                                            "status": status, "head": self.status}}
        self.log.append(said)
        return said


class Watching:
    """An inspection that puts a ``Counter`` on every request whose body says ``watch``."""

    name = "watching"

    def __init__(self, *, fail: bool = False) -> None:
        self.log: list[dict[str, object]] = []
        self.fail = fail

    def look(self, method: str, target: Target, headers: list[tuple[bytes, bytes]],
             body: bytes, whole: bool) -> Findings:
        if b"watch" not in body:
            return Findings()
        return Findings(watches=(Counter(self.log, fail=self.fail),))


def test_a_response_watch_follows_the_response_and_joins_the_record() -> None:
    async def run() -> None:
        watching = Watching()
        async with running_proxy(inspections=(watching,)) as h:
            got = await exchange(h.port, [_post(h.url("/echo"), b"watch this"),
                                          _post(h.url("/echo"), b"not me")])
            assert status_codes(got) == [200, 200]
            first_body = got.split(b"\r\n\r\n", 1)[1]
            (said,) = watching.log
            seen = said["seen"]
            assert isinstance(seen, dict)
            assert seen["complete"] is True and seen["status"] == seen["head"] == 200
            assert 0 < seen["size"] <= len(first_body)
            records = [e.fields for e in h.events if e.kind == "http.request"]
            assert records[0]["seen"] == seen and "seen" not in records[1]
            assert records[0]["bytes_in"] == seen["size"]
    asyncio.run(run())


def test_a_watch_that_fails_never_breaks_the_response() -> None:
    async def run() -> None:
        watching = Watching(fail=True)
        async with running_proxy(inspections=(watching,)) as h:
            got = await exchange(h.port, [_post(h.url("/echo"), b"watch this")])
            assert status_codes(got) == [200] and b'"received": 10' in got
            (record,) = [e.fields for e in h.events if e.kind == "http.request"]
            assert "watch-failed" in record["flags"]
            assert len(watching.log) == 1  # end() is still called, once
    asyncio.run(run())


def test_a_watch_ends_once_when_the_upstream_never_answers() -> None:
    async def run() -> None:
        watching = Watching()
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            port = silent.getsockname()[1]
            async with running_proxy(inspections=(watching,), upstream_timeout=1) as h:
                got = await exchange(h.port, [_post(f"http://127.0.0.1:{port}/", b"watch")])
                assert status_codes(got) == [504]
        (said,) = watching.log
        assert said["seen"] == {"size": 0, "complete": False, "status": 504, "head": None}
    asyncio.run(run())


HEAD_ONLY_POLICY = POLICY.split("    - id: no-bad-model")[0]


def test_a_policy_that_reads_no_body_refuses_by_the_head_and_still_inspects_the_rest(
        ) -> None:
    async def run() -> None:
        reader = ModelReader()
        async with running_proxy(inspections=(reader,), policy=HEAD_ONLY_POLICY) as h:
            got = await exchange(h.port, [
                f"POST {h.url('/admin')} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                "Expect: 100-continue\r\n\r\n".encode()])
            assert status_codes(got) == [403]  # no 100 Continue: the body is never asked for
            assert reader.seen == []
            got = await exchange(h.port, [_post(h.url("/echo"), b"model=bad-1")])
            assert status_codes(got) == [200]  # no rule reads the model here
            assert reader.seen == [(b"model=bad-1", True)]
            record = [e.fields for e in h.events if e.kind == "http.request"][-1]
            assert record["model_seen"] == {"model": "bad-1"}
    asyncio.run(run())


def _quota(qid: str, metric: str, limit: int, mode: str = "hard-stop") -> str:
    return (f"apiVersion: clawgress.io/v1\nkind: Quota\nmetadata: {{id: {qid}}}\nspec:\n"
            f"  scope: agent\n  metric: {metric}\n  window: rolling-minute\n"
            f"  limit: {limit}\n  mode: {mode}\n---\n")


def _usage(h: Harness) -> dict[str, tuple[int, int]]:
    """Used and held per quota, for the harness agent, once waiting usage is booked."""
    quotas = h.services.quotas
    assert quotas is not None
    quotas.flush(time.time())
    rows = usage_rows(quotas.plan, quotas.ledger, time.time(), who=AGENT)
    return {r.quota.id: (r.used, r.held) for r in rows}


def test_a_hard_stop_quota_refuses_with_429_and_says_why() -> None:
    async def run() -> None:
        async with running_proxy(quotas=_quota("two", "requests", 2)) as h:
            got = await exchange(h.port, [_get(h.url("/")), _get(h.url("/")),
                                          _get(h.url("/"))])
            assert status_codes(got) == [200, 200, 429]
            third = got.split(b"HTTP/1.1 429 ")[1]
            assert b"retry-after: " in third
            body = json.loads(third.split(b"\r\n\r\n", 1)[1])
            assert body["error"] == "quota-exceeded" and "quota two" in body["reason"]
            records = [e.fields for e in h.events if e.kind == "http.request"]
            assert records[2]["quota"]["quota_id"] == "two"
            assert records[2]["status"] == 429 and "quota-exceeded" in records[2]["flags"]
            assert _usage(h) == {"two": (2, 0)}
    asyncio.run(run())


CHAT = json.dumps({"model": "lab-model", "max_tokens": 50,
                   "messages": [{"role": "user", "content": "hello there gateway"}]}).encode()


def test_tokens_are_reserved_then_reconciled_with_the_usage_the_answer_reports() -> None:
    async def run() -> None:
        quotas = _quota("tokens", "total-tokens", 1000) + _quota("bytes", "bytes-out", 10**6)
        async with running_proxy(inspections=(AiStage(),), quotas=quotas) as h:
            got = await exchange(h.port, [
                _post(h.url("/v1/chat/completions"), CHAT, "Content-Type: application/json\r\n")])
            assert status_codes(got) == [200]
            reported = json.loads(got.split(b"\r\n\r\n", 1)[1])["usage"]["total_tokens"]
            (record,) = [e.fields for e in h.events if e.kind == "http.request"]
            assert record["ai_usage"]["usage"]["total_tokens"] == reported
            # Booked: what the answer reported, not the estimate (prompt + max_tokens 50);
            # nothing is held any more.
            assert _usage(h) == {"tokens": (reported, 0), "bytes": (len(CHAT), 0)}
    asyncio.run(run())


def test_a_request_that_never_reaches_the_upstream_releases_its_hold() -> None:
    async def run() -> None:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]  # bound, never listening: refused
            async with running_proxy(quotas=_quota("two", "requests", 2)) as h:
                got = await exchange(h.port, [_get(f"http://127.0.0.1:{port}/")])
                assert status_codes(got) == [502]
                assert _usage(h) == {"two": (0, 0)}
    asyncio.run(run())


def _rpc(method: str, rid: int = 1, **params: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                       "params": params}).encode()


def _mcp_post(url: str, body: bytes) -> bytes:
    return _post(url, body, "Content-Type: application/json\r\n"
                 "Accept: application/json, text/event-stream\r\n")


def _first_body(got: bytes) -> bytes:
    """The body of the first response in ``got`` (which has a Content-Length)."""
    head, _, rest = got.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return rest[:length]


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
def test_an_mcp_tools_list_offers_only_the_tools_the_agent_may_call(sse: bool) -> None:
    async def run() -> None:
        async with running_proxy(inspections=(AiStage(),)) as h:
            url = h.url("/mcp?sse=1" if sse else "/mcp")
            got = await exchange(h.port, [
                _mcp_post(url, _rpc("tools/list")),
                _mcp_post(url, _rpc("tools/call", 2, name="shell.exec",
                                    arguments={"cmd": "id"})),
                _mcp_post(url, _rpc("tools/call", 3, name="web.search",
                                    arguments={"q": "x"}))])
            assert status_codes(got) == [200, 403, 200]
            listed = _first_body(got)
            if sse:
                listed = listed.split(b"data: ", 1)[1]
            tools = [t["name"] for t in json.loads(listed)["result"]["tools"]]
            assert tools == ["files.read", "web.search"]
            records = [e.fields for e in h.events if e.kind == "http.request"]
            assert "tools-list-filtered" in records[0]["flags"]
            assert records[0]["ai"]["mcp_methods"] == ["tools/list"]
            assert records[1]["rule_id"] == "no-shell"
            assert records[2]["ai"]["mcp_tools"] == ["web.search"]
    asyncio.run(run())


AWS_KEY = "AKIAQYLPMN5HHHFPZAM2"
EMAIL = "jane.doe@example.org"
MRN = "44813327"


def _chat(text: str) -> bytes:
    return json.dumps({"model": "lab-model",
                       "messages": [{"role": "user", "content": text}]}).encode()


def _dlp_proxy() -> contextlib.AbstractAsyncContextManager[Harness]:
    scanner = Scanner.from_files([])
    return running_proxy(inspections=(AiStage(), dlp := DlpStage(scanner, b"k" * 32)),
                         dlp=dlp)


JSON_TYPE = "Content-Type: application/json\r\n"


def test_dlp_blocks_a_secret_naming_its_class_never_its_value() -> None:
    async def run() -> None:
        async with _dlp_proxy() as h:
            got = await exchange(h.port, [
                _post(h.url("/v1/chat/completions"), _chat(f"use key {AWS_KEY}"), JSON_TYPE),
                _post(h.url("/v1/chat/completions"), _chat("nothing to see"), JSON_TYPE)])
            assert status_codes(got) == [403, 200]
            refusal = json.loads(got.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])
            assert "secrets.aws.access_key_id" in refusal["reason"]
            records = [e.fields for e in h.events if e.kind == "http.request"]
            assert "dlp-blocked" in records[0]["flags"]
            assert records[0]["dlp"]["blocked"] == ["secrets.aws.access_key_id"]
            assert AWS_KEY not in got.decode() and AWS_KEY not in repr(h.events)
    asyncio.run(run())


def test_dlp_redacts_hashes_and_alerts_by_the_rules_actions() -> None:
    async def run() -> None:
        async with _dlp_proxy() as h:
            text = f"mail {EMAIL} about MRN {MRN} from 203.0.113.7"
            got = await exchange(h.port, [
                _post(h.url("/v1/chat/completions"), _chat(text), JSON_TYPE)])
            assert status_codes(got) == [200]
            # The upstream quotes what it got: the address redacted, the rest untouched.
            content = json.loads(got.split(b"\r\n\r\n", 1)[1])["choices"][0]["message"]
            assert "[REDACTED:pii.email]" in content["content"]
            assert EMAIL not in got.decode()
            (record,) = [e.fields for e in h.events if e.kind == "http.request"]
            dlp = record["dlp"]
            assert dlp["redacted"] == ["pii.email"] and dlp["alerted"] == ["pii.ip.v4"]
            assert "phi.medical_record_number" in dlp["hashed"]
            hashed = [m for m in dlp["matches"] if m["action"] == "hash-log"]
            assert hashed and all(m.get("hmac") for m in hashed)
            assert {"alert", "dlp-redacted", "dlp-hashed"} <= set(record["flags"])
            for value in (EMAIL, MRN):
                assert value not in repr(h.events)
    asyncio.run(run())


def test_a_body_dlp_cannot_read_is_refused_without_echoing_it() -> None:
    async def run() -> None:
        async with _dlp_proxy() as h:
            broken = b'{"messages": [{"content": "' + AWS_KEY.encode() + b'"'
            got = await exchange(h.port, [_post(h.url("/echo"), broken, JSON_TYPE)])
            assert status_codes(got) == [403]
            assert AWS_KEY not in got.decode() and AWS_KEY not in repr(h.events)
            (record,) = [e.fields for e in h.events if e.kind == "http.request"]
            assert "inspection-failed" in record["flags"]
    asyncio.run(run())


def test_a_body_to_redact_that_was_not_read_whole_is_refused_with_413() -> None:
    async def run() -> None:
        scanner = Scanner.from_files([])
        stage = DlpStage(scanner, b"k" * 32)
        async with running_proxy(inspections=(stage,), dlp=stage, inspect_body_bytes=1024,
                                 body_over_limit="forward") as h:
            text = f"mail {EMAIL} " + "padding " * 400
            got = await exchange(h.port, [_post(h.url("/echo"), text.encode())])
            assert status_codes(got) == [413]
            assert EMAIL not in got.decode()
    asyncio.run(run())
