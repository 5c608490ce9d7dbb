"""The L7 engine's HTTP/1.1 (``gatewayd.l7.http1``), without IO: both sides, framing,
strictness, and any split of the bytes giving the same events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.l7 import http1
from gatewayd.l7.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)

MAX_HEAD = 8192


def events(side: http1.Inbound | http1.Outbound, *, limit: int = 100) -> list[object]:
    """Events until more data is needed (or the next cycle is)."""
    out: list[object] = []
    for _ in range(limit):
        event = side.next_event()
        if event is NEED_DATA or event is PAUSED:
            out.append(event)
            return out
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out
    raise AssertionError("no end of events")


def body_of(evs: list[object]) -> bytes:
    return b"".join(e.data for e in evs if isinstance(e, Data))


def inbound(*pieces: bytes) -> tuple[http1.Inbound, list[object]]:
    h = http1.Inbound(MAX_HEAD)
    got: list[object] = []
    for piece in pieces:
        h.receive_data(piece)
        got += [e for e in events(h) if e is not NEED_DATA]
    return h, got


POST = (b"POST /v1/chat HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n"
        b"Content-Length: 11\r\n\r\nhello world")
CHUNKED = (b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")


def test_a_request_with_a_length_body() -> None:
    h, got = inbound(POST)
    req = got[0]
    assert isinstance(req, Request)
    assert (req.method, req.target, req.http_version) == (b"POST", b"/v1/chat", b"1.1")
    assert req.headers == [(b"host", b"api.example"), (b"content-type", b"application/json"),
                           (b"content-length", b"11")]
    assert body_of(got) == b"hello world"
    assert isinstance(got[-1], EndOfMessage) or got[-1] is PAUSED
    assert h.their_state is http1.DONE and h.our_state is http1.SEND_RESPONSE


def test_a_chunked_body_drops_extensions_and_trailers() -> None:
    h, got = inbound(CHUNKED)
    assert body_of(got) == b"hello world"
    assert h.their_state is http1.DONE


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([POST, CHUNKED, POST + POST]), st.data())
def test_any_split_gives_the_same_request(raw: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if b > a]
    _, whole = inbound(raw)
    _, split = inbound(*pieces)
    def kinds(evs: list[object]) -> list[type]:
        return [type(e) for e in evs if not isinstance(e, Data | http1.Sentinel)]

    assert kinds(split) == kinds(whole)
    assert body_of(split) == body_of(whole)


def test_a_pipelined_request_waits_for_the_next_cycle() -> None:
    h, got = inbound(POST + b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [type(e) for e in got] == [Request, Data, EndOfMessage, type(PAUSED)]
    h.send(Response(200, [(b"content-length", b"0")]))
    h.send(EndOfMessage())
    h.start_next_cycle()
    nxt = h.next_event()
    assert isinstance(nxt, Request) and nxt.target == b"/2"


@pytest.mark.parametrize(("raw", "status"), [
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * MAX_HEAD, 431),
])
def test_what_is_not_http_1_1_is_refused_with_its_status(raw: bytes, status: int) -> None:
    h = http1.Inbound(MAX_HEAD)
    h.receive_data(raw)
    with pytest.raises(http1.RemoteProtocolError) as caught:
        events(h)
    assert caught.value.error_status_hint == status
    # An answer can still be sent, and it closes the connection.
    out = h.send(Response(status, [(b"content-length", b"0")]))
    assert out.startswith(b"HTTP/1.1 %d " % status) and b"connection: close" in out


@pytest.mark.parametrize("line", [b"zz\r\n", b"5 5\r\n", b"-5\r\n", b"5\nhello\r\n"])
def test_a_bad_chunk_size_is_refused(line: bytes) -> None:
    h = http1.Inbound(MAX_HEAD)
    h.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + line + b"hello\r\n0\r\n\r\n")
    with pytest.raises(http1.RemoteProtocolError):
        events(h)


def test_a_body_cut_short_is_an_error_and_a_closed_idle_connection_is_not() -> None:
    h = http1.Inbound(MAX_HEAD)
    h.receive_data(POST[:-3])
    events(h)
    h.receive_data(b"")
    with pytest.raises(http1.RemoteProtocolError):
        h.next_event()
    idle = http1.Inbound(MAX_HEAD)
    idle.receive_data(b"")
    assert isinstance(idle.next_event(), ConnectionClosed)


def test_100_continue_is_awaited_until_an_answer_or_the_body() -> None:
    h, _ = inbound(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
                   b"Expect: 100-continue\r\n\r\n")
    assert h.client_is_waiting_for_100_continue
    assert h.send(InformationalResponse(100, [])).startswith(b"HTTP/1.1 100 Continue\r\n")
    assert not h.client_is_waiting_for_100_continue


def _answer(h: http1.Inbound, status: int, headers: list[tuple[bytes, bytes]],
            body: bytes) -> bytes:
    out = h.send(Response(status, headers))
    out += h.send(Data(body))
    return out + h.send(EndOfMessage())


def test_a_response_without_a_length_is_chunked_for_http_1_1() -> None:
    h, _ = inbound(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    out = _answer(h, 200, [(b"content-type", b"text/event-stream")], b"data: 1\n\n")
    assert b"transfer-encoding: chunked\r\n" in out
    assert out.endswith(b"\r\n\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n")
    assert h.our_state is http1.DONE and h.their_state is http1.DONE
    h.start_next_cycle()


def test_an_http_1_0_client_gets_a_close_delimited_answer() -> None:
    h, _ = inbound(b"GET / HTTP/1.0\r\n\r\n")
    out = _answer(h, 200, [], b"hello")
    assert b"connection: close\r\n" in out and b"chunked" not in out
    assert out.endswith(b"\r\n\r\nhello")
    assert h.our_state is http1.MUST_CLOSE


def test_the_declared_length_is_kept_to() -> None:
    h, _ = inbound(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    h.send(Response(200, [(b"content-length", b"3")]))
    with pytest.raises(http1.LocalProtocolError):
        h.send(Data(b"four"))
    h2, _ = inbound(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    h2.send(Response(200, [(b"content-length", b"3")]))
    h2.send(Data(b"ab"))
    with pytest.raises(http1.LocalProtocolError):
        h2.send(EndOfMessage())


def test_connect_switches_and_keeps_what_follows() -> None:
    h, got = inbound(b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n"
                     b"\x16\x03\x01")
    assert isinstance(got[0], Request) and got[0].method == b"CONNECT"
    h.send(Response(200, [], b"Connection established"))
    assert h.our_state is http1.SWITCHED_PROTOCOL
    assert h.trailing_data == (b"\x16\x03\x01", False)


def test_a_websocket_upgrade_switches_on_101() -> None:
    h, got = inbound(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\n\r\n\x81\x05hello")
    assert [type(e) for e in got] == [Request, EndOfMessage, type(PAUSED)]
    h.send(InformationalResponse(101, [(b"upgrade", b"websocket")]))
    assert h.trailing_data[0] == b"\x81\x05hello"


def outbound(method: bytes = b"GET", headers: list[tuple[bytes, bytes]] | None = None
             ) -> tuple[http1.Outbound, bytes]:
    up = http1.Outbound(MAX_HEAD)
    out = up.send(Request(method, b"/x", headers or [(b"host", b"a")]))
    out += up.send(EndOfMessage())
    return up, out


def test_a_request_goes_out_as_framed() -> None:
    up = http1.Outbound(MAX_HEAD)
    out = up.send(Request(b"POST", b"/v1", [(b"host", b"a"),
                                            (b"transfer-encoding", b"chunked")]))
    out += up.send(Data(b"abc")) + up.send(EndOfMessage())
    assert out == (b"POST /v1 HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n0\r\n\r\n")


def test_responses_interim_final_and_keep_alive() -> None:
    up, _ = outbound()
    up.receive_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                    b"\r\nok")
    got = events(up)
    assert [type(e) for e in got] == [InformationalResponse, Response, Data, EndOfMessage,
                                      type(PAUSED)]
    assert up.our_state is http1.DONE and up.their_state is http1.DONE
    up.start_next_cycle()


def test_a_head_answer_has_no_body_whatever_its_length() -> None:
    up, _ = outbound(b"HEAD")
    up.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n")
    assert [type(e) for e in events(up)] == [Response, EndOfMessage, type(PAUSED)]
    assert up.their_state is http1.DONE


def test_a_response_without_framing_runs_until_the_upstream_closes() -> None:
    up, _ = outbound()
    up.receive_data(b"HTTP/1.1 200 OK\r\n\r\nsome")
    assert body_of(events(up)) == b"some"
    up.receive_data(b" more")
    assert body_of(events(up)) == b" more"
    up.receive_data(b"")
    assert isinstance(up.next_event(), EndOfMessage)
    assert up.their_state is http1.MUST_CLOSE


def test_an_upstream_that_closes_inside_a_body_is_an_error() -> None:
    up, _ = outbound()
    up.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    events(up)
    up.receive_data(b"")
    with pytest.raises(http1.RemoteProtocolError):
        up.next_event()


def test_a_101_from_the_upstream_switches_and_keeps_what_follows() -> None:
    up, _ = outbound(headers=[(b"host", b"a"), (b"connection", b"upgrade"),
                              (b"upgrade", b"websocket")])
    up.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n\r\n\x81\x02hi")
    first = up.next_event()
    assert isinstance(first, InformationalResponse) and first.status_code == 101
    assert up.trailing_data[0] == b"\x81\x02hi"


def test_a_response_head_over_the_limit_is_refused() -> None:
    up, _ = outbound()
    up.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"v" * MAX_HEAD)
    with pytest.raises(http1.RemoteProtocolError):
        up.next_event()


def _feed_in(raw: bytes, pieces: int) -> http1.Event | http1.Sentinel:
    h = http1.Inbound(MAX_HEAD)
    step = -(-len(raw) // pieces)
    event: http1.Event | http1.Sentinel = http1.NEED_DATA
    for at in range(0, len(raw), step):
        h.receive_data(raw[at:at + step])
        event = h.next_event()
    return event


@pytest.mark.parametrize("pieces", [1, 3])
def test_a_head_is_bounded_with_its_blank_line_whether_it_came_whole_or_in_pieces(
        pieces: int) -> None:
    start = b"GET / HTTP/1.1\r\nHost: a\r\nX: "
    fits = start + b"v" * (MAX_HEAD - len(start) - 4) + b"\r\n\r\n"
    assert len(fits) == MAX_HEAD
    assert isinstance(_feed_in(fits, pieces), Request)
    over = start + b"v" * (MAX_HEAD - len(start) - 3) + b"\r\n\r\n"
    with pytest.raises(http1.RemoteProtocolError) as caught:
        _feed_in(over, pieces)
    assert caught.value.error_status_hint == 431


def test_a_whole_content_length_body_is_taken_at_once_and_the_next_request_follows() -> None:
    h = http1.Inbound(MAX_HEAD)
    h.receive_data(POST + POST)
    assert isinstance(h.next_event(), Request)
    assert h.whole_body(10) is None  # over the limit: read by events
    assert h.whole_body(11) == b"hello world"
    assert h.their_state is http1.DONE and h.whole_body(11) is None
    h.send(Response(200, [(b"content-length", b"0")]))
    h.send(EndOfMessage())
    h.start_next_cycle()
    assert isinstance(h.next_event(), Request)
    assert events(h)[:2] == [Data(b"hello world"), EndOfMessage()]


def test_a_body_not_all_here_or_chunked_is_read_by_events() -> None:
    h = http1.Inbound(MAX_HEAD)
    h.receive_data(POST[:-1])
    assert isinstance(h.next_event(), Request)
    assert h.whole_body(1 << 20) is None
    h.receive_data(POST[-1:])
    assert h.whole_body(1 << 20) == b"hello world"
    c = http1.Inbound(MAX_HEAD)
    c.receive_data(CHUNKED)
    assert isinstance(c.next_event(), Request)
    assert c.whole_body(1 << 20) is None
    assert [e for e in events(c) if isinstance(e, Data)] == [Data(b"hello world")]


def test_a_whole_response_body_is_taken_at_once_on_the_upstream_side() -> None:
    o = http1.Outbound(MAX_HEAD)
    o.send(Request(b"GET", b"/", [(b"host", b"a")]))
    o.send(EndOfMessage())
    o.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert isinstance(o.next_event(), Response)
    assert o.whole_body(64) == b"ok"
    assert o.their_state is http1.DONE and o.our_state is http1.DONE
