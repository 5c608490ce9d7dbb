from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.lab.upstream_http import (
    CHUNKED,
    LAST_CHUNK,
    MAX_BODY_BYTES,
    MAX_BYTES,
    Bytes,
    EchoLength,
    Fixed,
    RequestError,
    RequestHead,
    Served,
    Stream,
    Upgrade,
    echo_reply,
    fixed_head,
    parse_request_head,
    plain_address,
    route,
    stream_head,
    stream_ticks,
    tick_chunk,
)

SERVED = Served("https", "10.78.0.10", 443, "10.77.0.11", 40000)
NAMES = {"10.78.0.10": "api.openai.com", "fd78::10": "api.openai.com"}
GET = b"GET /x?y=1 HTTP/1.1\r\nHost: api.openai.com\r\nAccept: */*\r\n\r\n"


def head(target: str, method: str = "GET", version: str = "HTTP/1.1",
         headers: tuple[tuple[str, str], ...] = ()) -> RequestHead:
    return RequestHead(method, target, version, headers)


def test_a_complete_head_is_parsed_with_its_length() -> None:
    parsed = parse_request_head(GET + b"body")
    assert parsed is not None
    request, used = parsed
    assert used == len(GET)
    assert (request.method, request.target, request.version) == ("GET", "/x?y=1", "HTTP/1.1")
    assert request.header("HOST") == "api.openai.com"
    assert request.header("missing") is None


def test_an_incomplete_head_is_none() -> None:
    for end in range(len(GET)):
        assert parse_request_head(GET[:end]) is None


@given(st.binary(max_size=300))
def test_parsing_gives_a_head_none_or_request_error(data: bytes) -> None:
    try:
        result = parse_request_head(data)
    except RequestError as exc:
        status = exc.status
        result = None
    else:
        status = None
    assert status in (None, 400, 431)
    if result is not None:
        _, used = result
        assert data[used - 4 : used] == b"\r\n\r\n"


@given(st.binary(max_size=200))
def test_byte_by_byte_matches_all_at_once(tail: bytes) -> None:
    data = GET + tail
    whole = parse_request_head(data)
    seen = None
    for end in range(1, len(data) + 1):
        seen = parse_request_head(data[:end])
        if seen is not None:
            break
    assert seen == whole


def test_a_head_over_the_limit_is_431() -> None:
    with pytest.raises(RequestError) as err:
        parse_request_head(b"GET / HTTP/1.1\r\nX: " + b"a" * 200, max_bytes=100)
    assert err.value.status == 431
    # Right at the limit is fine.
    ok = b"GET / HTTP/1.1\r\nX: a\r\n\r\n"
    assert parse_request_head(ok, max_bytes=len(ok) - 4) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"GET /\r\n\r\n",
        b"GET / HTTP/2\r\n\r\n",
        b"GET x HTTP/1.1\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
    ],
)
def test_malformed_heads_are_400(data: bytes) -> None:
    with pytest.raises(RequestError) as err:
        parse_request_head(data)
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("version", "connection", "keep"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Keep-Alive, Close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
    ],
)
def test_keep_alive(version: str, connection: str | None, keep: bool) -> None:
    headers = (("Connection", connection),) if connection else ()
    assert head("/", version=version, headers=headers).keep_alive is keep


def test_content_length() -> None:
    assert head("/").content_length == 0
    assert head("/", headers=(("Content-Length", "12"),)).content_length == 12
    same_twice = (("Content-Length", "5"), ("content-length", "5"))
    assert head("/", headers=same_twice).content_length == 5


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ((("Content-Length", "-1"),), 400),
        ((("Content-Length", "1x"),), 400),
        ((("Content-Length", "1"), ("Content-Length", "2")), 400),
        ((("Content-Length", str(MAX_BODY_BYTES + 1)),), 413),
        ((("Transfer-Encoding", "gzip, chunked"),), 411),
        ((("Transfer-Encoding", "chunked"), ("Content-Length", "3")), 400),
    ],
)
def test_unframed_bodies_are_refused(headers: tuple[tuple[str, str], ...], status: int) -> None:
    with pytest.raises(RequestError) as err:
        _ = head("/echo", "POST", headers=headers).content_length
    assert err.value.status == status


def test_a_chunked_body_is_framed_by_its_chunks() -> None:
    assert head("/echo", "POST", headers=(("Transfer-Encoding", "Chunked"),)).content_length \
        == CHUNKED


def test_headers_are_echoed_as_received() -> None:
    reply = route(head("/headers", headers=(("Host", "a"), ("X-One", "1"))), SERVED, NAMES)
    assert isinstance(reply, Fixed)
    assert json.loads(reply.body)["headers"] == [["host", "a"], ["x-one", "1"]]


def test_root_names_who_served_it() -> None:
    reply = route(head("/", headers=(("Host", "api.openai.com"),)), SERVED, NAMES)
    assert isinstance(reply, Fixed)
    assert reply.status == 200
    assert json.loads(reply.body) == {
        "name": "api.openai.com", "host": "api.openai.com", "scheme": "https",
        "address": "10.78.0.10", "port": 443, "client": "10.77.0.11", "client_port": 40000,
    }


def test_root_on_an_unnamed_address_has_no_name() -> None:
    served = Served("http", "::ffff:10.78.0.2", 80, "::ffff:10.77.0.12", 1)
    reply = route(head("/"), served, NAMES)
    assert isinstance(reply, Fixed)
    body = json.loads(reply.body)
    assert body["name"] is None
    assert body["address"] == "10.78.0.2"
    assert body["client"] == "10.77.0.12"


def test_endpoints() -> None:
    assert route(head("/bytes?n=1000"), SERVED, NAMES) == Bytes(1000)
    assert route(head("/bytes"), SERVED, NAMES) == Bytes(0)
    assert route(head("/stream?seconds=2&interval_ms=50"), SERVED, NAMES) == Stream(2.0, 50)
    assert route(head("/stream"), SERVED, NAMES) == Stream(5.0, 200)
    assert route(head("/echo", "POST"), SERVED, NAMES) == EchoLength()


@pytest.mark.parametrize(
    ("target", "method", "status"),
    [
        ("/nope", "GET", 404),
        ("/bytes?n=-1", "GET", 400),
        ("/bytes?n=x", "GET", 400),
        (f"/bytes?n={MAX_BYTES + 1}", "GET", 400),
        ("/stream?seconds=nan", "GET", 400),
        ("/stream?seconds=inf", "GET", 400),
        ("/stream?seconds=-1", "GET", 400),
        ("/stream?interval_ms=0", "GET", 400),
        ("/echo", "GET", 405),
        ("/", "DELETE", 405),
    ],
)
def test_bad_requests_get_errors(target: str, method: str, status: int) -> None:
    reply = route(head(target, method), SERVED, NAMES)
    assert isinstance(reply, Fixed)
    assert reply.status == status
    assert "error" in json.loads(reply.body)


def test_response_heads() -> None:
    reply = echo_reply(12)
    assert json.loads(reply.body) == {"received": 12}
    text = fixed_head(reply, keep_alive=True).decode()
    assert text.startswith("HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(reply.body)}\r\n" in text
    assert text.endswith("Connection: keep-alive\r\n\r\n")
    assert "Connection: close" in fixed_head(reply, keep_alive=False).decode()
    assert "Transfer-Encoding: chunked" in stream_head(True).decode()


def test_stream_lines_are_chunks() -> None:
    chunk = tick_chunk(3, 600)
    size, _, rest = chunk.partition(b"\r\n")
    assert int(size, 16) == len(rest) - 2
    assert json.loads(rest[:-2]) == {"seq": 3, "elapsed_ms": 600}
    assert LAST_CHUNK == b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("seconds", "interval", "ticks"), [(1, 200, 6), (0, 100, 1), (0.5, 1000, 1), (2, 300, 7)]
)
def test_stream_ticks(seconds: float, interval: int, ticks: int) -> None:
    assert stream_ticks(seconds, interval) == ticks


@pytest.mark.parametrize(
    ("given_address", "plain"),
    [("::ffff:10.0.0.1", "10.0.0.1"), ("fd78::10", "fd78::10"), ("fe80::1%eth0", "fe80::1"),
     ("not-an-ip", "not-an-ip")],
)
def test_plain_address(given_address: str, plain: str) -> None:
    assert plain_address(given_address) == plain


def test_a_websocket_upgrade_is_accepted_with_the_rfc_6455_key() -> None:
    reply = route(head("/ws", headers=(("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                       ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))),
                  SERVED, NAMES)
    assert isinstance(reply, Upgrade) and reply.accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    refused = route(head("/ws"), SERVED, NAMES)
    assert isinstance(refused, Fixed) and refused.status == 400
