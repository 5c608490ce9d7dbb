"""HTTP/1.1 for the L7 engine, sans-IO: bytes in, events out; events in, bytes out.

Both sides of a proxied exchange: ``Inbound`` is the connection an agent opened (the
engine serves it), ``Outbound`` the engine's connection to the upstream (the engine is its
client). The API follows h11's (``receive_data``, ``next_event``, ``send``,
``start_next_cycle``, ``our_state``/``their_state``, ``trailing_data``) so that the
connection code reads the same; the work is split differently, for speed:

* **Heads** are found here (the blank line that ends them, searched in C, never more than
  the head limit buffered) and then parsed, whole, by llhttp — Node.js's parser, through
  ``httptools`` — which is strict: a bad request line, a bad header token or value,
  duplicate or malformed ``Content-Length``, ``Content-Length`` with
  ``Transfer-Encoding``, or a request transfer coding other than ``chunked`` last are
  refused. A fresh llhttp parser sees each head, so it never holds a byte of a body or of
  the next message.
* **Bodies** are framed here: ``Content-Length`` bodies are sliced off the buffer;
  chunked ones are decoded by ``Chunked`` (strict sizes, extensions and trailers bounded
  and dropped); a response with neither runs until the upstream closes.

What is not supported is refused rather than guessed: HTTP versions other than 1.0 and 1.1
(505), an HTTP/1.1 request without ``Host`` (400). HTTP/1.0 clients get their answer and
a close (no HTTP/1.0 keep-alive), as with h11. Requests are never read ahead of the
answer: bytes that arrive early wait in the buffer until ``start_next_cycle``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

Headers = list[tuple[bytes, bytes]]
HEAD_END = b"\r\n\r\n"
# The longest chunk-size line (size, extensions) and trailer section accepted.
MAX_CHUNK_LINE = 4096
MAX_TRAILERS = 16 * 1024


class State(enum.Enum):
    IDLE = "IDLE"
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    CLOSED = "CLOSED"
    SWITCHED_PROTOCOL = "SWITCHED_PROTOCOL"
    ERROR = "ERROR"


IDLE = State.IDLE
SEND_RESPONSE = State.SEND_RESPONSE
SEND_BODY = State.SEND_BODY
DONE = State.DONE
MUST_CLOSE = State.MUST_CLOSE
CLOSED = State.CLOSED
SWITCHED_PROTOCOL = State.SWITCHED_PROTOCOL
ERROR = State.ERROR


class Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"  # nothing more until more bytes arrive
    PAUSED = "PAUSED"  # the next message waits for start_next_cycle


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED


class ProtocolError(Exception):
    """The peer (``RemoteProtocolError``) or the engine (``LocalProtocolError``) broke
    HTTP/1.1; ``error_status_hint`` is the status to answer a bad request with."""

    def __init__(self, message: str, error_status_hint: int = 400) -> None:
        super().__init__(message)
        self.error_status_hint = error_status_hint


class RemoteProtocolError(ProtocolError):
    pass


class LocalProtocolError(ProtocolError):
    pass


@dataclass(slots=True)
class Request:
    method: bytes
    target: bytes
    headers: Headers
    http_version: bytes = b"1.1"


@dataclass(slots=True)
class Response:
    status_code: int
    headers: Headers
    reason: bytes = b""
    http_version: bytes = b"1.1"


@dataclass(slots=True)
class InformationalResponse:
    status_code: int
    headers: Headers
    reason: bytes = b""
    http_version: bytes = b"1.1"


@dataclass(slots=True)
class Data:
    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    headers: Headers = field(default_factory=list)  # trailers are dropped: always empty


@dataclass(slots=True)
class ConnectionClosed:
    pass


Event = Request | Response | InformationalResponse | Data | EndOfMessage | ConnectionClosed


# --- heads -----------------------------------------------------------------------------

class _Head:
    """llhttp's callbacks for one head."""

    __slots__ = ("headers", "reason", "url")

    def __init__(self) -> None:
        self.url = b""
        self.reason = b""
        self.headers: Headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))


def _head_end(buf: bytearray, limit: int, what: str) -> int:
    """Where the head at the start of ``buf`` ends (after its blank line); -1 if it is not
    all there yet. ``RemoteProtocolError``: 431 when it is over ``limit`` bytes (its blank
    line included; whether it came in pieces or in one read), 400 when its lines end with a
    bare LF."""
    end = buf.find(HEAD_END, 0, limit)
    if end < 0:
        if buf.find(b"\n\n", 0, limit) >= 0:
            raise RemoteProtocolError("header lines must end with CRLF")
        if len(buf) > limit:
            raise RemoteProtocolError(f"the {what} head is over {limit} bytes", 431)
        return -1
    return end + 4


def _parse(parser: httptools.HttpRequestParser | httptools.HttpResponseParser,
           head: bytes) -> None:
    try:
        parser.feed_data(head)
    except httptools.HttpParserUpgrade:
        pass  # CONNECT or Upgrade: the head is all there is to parse here
    except httptools.HttpParserError as exc:
        raise RemoteProtocolError(str(exc) or type(exc).__name__) from None


def _version(parser: httptools.HttpRequestParser | httptools.HttpResponseParser) -> bytes:
    version = parser.get_http_version()
    if version not in ("1.1", "1.0"):
        raise RemoteProtocolError(f"HTTP/{version} is not supported", 505)
    return version.encode()


class _Facts:
    """What a head's headers say about the message, read in one pass: its framing
    (llhttp has checked that it is well formed and consistent), whether it asks to close,
    whether it expects ``100-continue``, and whether it names a ``Host``."""

    __slots__ = ("chunked", "close", "continues", "host", "length")

    def __init__(self, headers: Headers) -> None:
        self.length: int | None = None
        self.chunked = self.close = self.continues = self.host = False
        for name, value in headers:
            if name == b"content-length":
                self.length = int(value)
            elif name == b"transfer-encoding":
                self.chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
            elif name == b"connection":
                if b"close" in tokens_of(value):
                    self.close = True
            elif name == b"host":
                self.host = True
            elif name == b"expect" and b"100-continue" in tokens_of(value):
                self.continues = True


def tokens_of(value: bytes) -> set[bytes]:
    """The comma-separated tokens of a header value (``Connection``, ``Expect``), lower
    case."""
    return {t.strip().lower() for t in value.split(b",")}


# --- bodies ----------------------------------------------------------------------------

class Chunked:
    """A chunked body, decoded as it arrives: ``feed`` takes bytes from the front of the
    buffer and returns the data they carry; ``done`` once the last chunk and trailers are
    read. Chunk extensions and trailers are read and dropped."""

    __slots__ = ("_left", "_state", "_trailers", "done")

    def __init__(self) -> None:
        self._state = "size"
        self._left = 0
        self._trailers = 0
        self.done = False

    def feed(self, buf: bytearray) -> list[bytes]:
        out: list[bytes] = []
        while buf and not self.done:
            if self._state == "size":
                end = buf.find(b"\r\n", 0, MAX_CHUNK_LINE)
                if end < 0:
                    if len(buf) >= MAX_CHUNK_LINE:
                        raise RemoteProtocolError("a chunk-size line is too long")
                    break
                line = bytes(buf[:end])
                if b"\n" in line or b"\r" in line:
                    raise RemoteProtocolError("a chunk-size line has a bare CR or LF")
                size_text = line.split(b";", 1)[0].rstrip(b" \t")
                if not size_text or len(size_text) > 16 or size_text.strip(
                        b"0123456789abcdefABCDEF"):
                    raise RemoteProtocolError("a chunk size is not a hexadecimal number")
                del buf[:end + 2]
                self._left = int(size_text, 16)
                self._state = "data" if self._left else "trailers"
            elif self._state == "data":
                take = min(self._left, len(buf))
                out.append(bytes(buf[:take]))
                del buf[:take]
                self._left -= take
                if not self._left:
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(buf) < 2:
                    break
                if buf[:2] != b"\r\n":
                    raise RemoteProtocolError("a chunk does not end with CRLF")
                del buf[:2]
                self._state = "size"
            else:  # trailers: lines up to an empty one
                end = buf.find(b"\r\n")
                if end < 0:
                    if self._trailers + len(buf) > MAX_TRAILERS:
                        raise RemoteProtocolError("the trailers are too long")
                    break
                self._trailers += end + 2
                if self._trailers > MAX_TRAILERS:
                    raise RemoteProtocolError("the trailers are too long")
                del buf[:end + 2]
                if end == 0:
                    self.done = True
        return out


class _Body:
    """How the body being received is framed, and how much of it is left."""

    __slots__ = ("chunked", "left", "until_close")

    def __init__(self, length: int | None, chunked: bool, until_close: bool = False) -> None:
        self.left = length or 0
        self.chunked = Chunked() if chunked else None
        self.until_close = until_close

    def take(self, buf: bytearray) -> tuple[list[bytes], bool]:
        """The data at the front of ``buf``, and whether the body ended."""
        if self.chunked is not None:
            parts = self.chunked.feed(buf)
            return parts, self.chunked.done
        if self.until_close:
            if not buf:
                return [], False
            data = bytes(buf)
            buf.clear()
            return [data], False
        take = min(self.left, len(buf))
        if not take:
            return [], not self.left
        data = bytes(buf[:take])
        del buf[:take]
        self.left -= take
        return [data], not self.left


class _Sender:
    """How the body the engine sends is framed."""

    __slots__ = ("chunked", "left", "until_close")

    def __init__(self, length: int | None, chunked: bool, until_close: bool = False) -> None:
        self.left = length
        self.chunked = chunked
        self.until_close = until_close

    def data(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        if self.left is not None:
            if len(data) > self.left:
                raise LocalProtocolError("more data than the declared Content-Length")
            self.left -= len(data)
        return data

    def end(self) -> bytes:
        if self.chunked:
            return b"0\r\n\r\n"
        if self.left:
            raise LocalProtocolError("less data than the declared Content-Length")
        return b""


def _head_bytes(start: bytes, headers: Headers) -> bytes:
    return b"".join((start, *(b"%b: %b\r\n" % (n, v) for n, v in headers), b"\r\n"))


def _status_line(status: int, reason: bytes) -> bytes:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b""
    return b"HTTP/1.1 %d %b\r\n" % (status, reason)


# --- the two sides ---------------------------------------------------------------------

class _Side:
    def __init__(self, max_head: int) -> None:
        self.max_head = max_head
        self._buf = bytearray()
        self._eof = False
        self.our_state = IDLE
        self.their_state = IDLE
        self._body: _Body | None = None
        self._sending: _Sender | None = None
        self._keep_alive = True
        # The body's last data was just returned: its end is the next event.
        self._ended_early = False

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` when it closed its side."""
        if data:
            if self._eof:
                raise RuntimeError("data after the end of the stream")
            self._buf += data
        else:
            self._eof = True

    @property
    def body_ended(self) -> bool:
        """Whether the body's last data was just returned: its end is the next event."""
        return self._ended_early

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received and not yet read as HTTP (after a protocol switch: the other
        protocol's first bytes), and whether the peer closed."""
        return bytes(self._buf), self._eof

    def whole_body(self, limit: int) -> bytes | None:
        """The rest of a body framed by ``Content-Length`` when all of it is here and it is
        at most ``limit`` bytes, taken at once: the message is then done, as if its data and
        its end had been read as events. ``None`` otherwise (read it by events)."""
        body = self._body
        if (self.their_state is not SEND_BODY or body is None or body.chunked is not None
                or body.until_close or self._ended_early or body.left > limit
                or len(self._buf) < body.left):
            return None
        left = body.left
        buf = self._buf
        data = bytes(buf[:left])
        del buf[:left]
        body.left = 0
        self._message_done()
        return data

    def _read_body(self) -> Event | Sentinel:
        assert self._body is not None
        parts, ended = self._body.take(self._buf)
        if parts:
            if ended:
                # The data first; the end of the message on the next call.
                self._ended_early = True
            return Data(parts[0] if len(parts) == 1 else b"".join(parts))
        if ended:
            return self._message_done()
        if self._eof:
            if self._body.until_close:
                return self._message_done()
            self.their_state = ERROR
            raise RemoteProtocolError("the peer closed before the end of the body")
        return NEED_DATA

    def _message_done(self) -> EndOfMessage:
        self._body = None
        self.their_state = DONE if self._keep_alive else MUST_CLOSE
        self._after_their_end()
        return EndOfMessage()

    def _after_their_end(self) -> None:
        pass

    def send_data(self, data: bytes) -> bytes:
        """The bytes that send ``data``, a piece of the body (``send(Data(data))``)."""
        return self._send_data(data)

    def send_end(self) -> bytes:
        """The bytes that end the body (``send(EndOfMessage())``)."""
        return self._send_end()

    def _send_data(self, data: bytes) -> bytes:
        if self.our_state is not SEND_BODY or self._sending is None:
            raise LocalProtocolError(f"cannot send data in state {self.our_state.value}")
        return self._sending.data(data)

    def _send_end(self) -> bytes:
        if self.our_state is not SEND_BODY or self._sending is None:
            raise LocalProtocolError(f"cannot end a message in state {self.our_state.value}")
        out = self._sending.end()
        if self._sending.until_close:
            self._keep_alive = False
        self._sending = None
        self.our_state = DONE if self._keep_alive else MUST_CLOSE
        if self.their_state is DONE and not self._keep_alive:
            self.their_state = MUST_CLOSE
        return out

    def _next_after_body(self) -> Event | Sentinel:
        if self._ended_early:
            self._ended_early = False
            return self._message_done()
        return self._read_body()


class Inbound(_Side):
    """The connection a client opened; the engine answers its requests."""

    def __init__(self, max_head: int) -> None:
        super().__init__(max_head)
        self._method = b""
        self._expects_continue = False
        self._connect = False
        self._http10 = False
        self._checked = False  # the partial head in the buffer was checked once

    @property
    def client_is_waiting_for_100_continue(self) -> bool:
        return self._expects_continue

    def next_event(self) -> Event | Sentinel:
        """The next event from the client."""
        state = self.their_state
        if state is SEND_BODY:
            event = self._next_after_body()
            if isinstance(event, Data):
                self._expects_continue = False
            return event
        if state is IDLE:
            return self._request()
        if state in (DONE, MUST_CLOSE, SWITCHED_PROTOCOL):
            if state is MUST_CLOSE and self._eof and not self._buf:
                return ConnectionClosed()
            return PAUSED
        if state is CLOSED:
            return ConnectionClosed()
        raise RemoteProtocolError("the connection is in an error state")

    def _request(self) -> Event | Sentinel:
        buf = self._buf
        if not buf and not self._eof:
            return NEED_DATA  # between requests: nothing to look at yet
        # Blank lines before a request line are ignored (RFC 9112 §2.2).
        while buf[:2] == b"\r\n":
            del buf[:2]
        try:
            end = _head_end(buf, self.max_head, "request")
        except RemoteProtocolError:
            self.their_state = ERROR
            raise
        if end < 0:
            return self._partial_head()
        self._checked = False
        head = bytes(buf[:end])
        del buf[:end]
        got = _Head()
        parser = httptools.HttpRequestParser(got)
        try:
            _parse(parser, head)
            version = _version(parser)
            method = parser.get_method()
        except RemoteProtocolError:
            self.their_state = ERROR
            raise
        headers = got.headers
        facts = _Facts(headers)
        if version == b"1.1" and not facts.host:
            self.their_state = ERROR
            raise RemoteProtocolError("Missing mandatory Host: header")
        length, chunked = facts.length, facts.chunked
        self._method = method
        self._connect = method == b"CONNECT"
        self._http10 = version == b"1.0"
        self._keep_alive = not self._http10 and not facts.close
        self._expects_continue = not self._http10 and facts.continues
        self._ended_early = False
        if self._connect or (not chunked and not length):
            self._body = _Body(0, False)
            self._expects_continue = False
        else:
            self._body = _Body(length, chunked)
        self.their_state = SEND_BODY
        self.our_state = SEND_RESPONSE
        return Request(method, got.url, headers, version)

    def _partial_head(self) -> ConnectionClosed | Sentinel:
        buf = self._buf
        if self._eof:
            if buf:
                self.their_state = ERROR
                raise RemoteProtocolError("the client closed in the middle of a request head")
            self.their_state = CLOSED
            return ConnectionClosed()
        if buf and not self._checked:
            # What cannot begin a request (TLS on a plain port, garbage) is refused at once,
            # not at the header timeout; checked once per head.
            self._checked = True
            try:
                _parse(httptools.HttpRequestParser(_Head()), bytes(buf))
            except RemoteProtocolError:
                self.their_state = ERROR
                raise
        return NEED_DATA

    def _after_their_end(self) -> None:
        self._expects_continue = False

    def send(self, event: Event) -> bytes:
        """The bytes that send ``event`` to the client."""
        if isinstance(event, Data):
            return self._send_data(event.data)
        if isinstance(event, EndOfMessage):
            return self._send_end()
        if isinstance(event, InformationalResponse):
            if self.our_state is not SEND_RESPONSE:
                raise LocalProtocolError(f"cannot send a {event.status_code} now")
            self._expects_continue = False
            if event.status_code == 101:
                self.our_state = self.their_state = SWITCHED_PROTOCOL
            return _head_bytes(_status_line(event.status_code, event.reason), event.headers)
        if isinstance(event, Response):
            return self._send_response(event)
        raise LocalProtocolError(f"a server cannot send {type(event).__name__}")

    def _send_response(self, event: Response) -> bytes:
        if self.their_state is ERROR and self.our_state is IDLE:
            # The answer to what could not be read as a request; the connection then ends.
            self._keep_alive = False
            self._method = b""
            self._connect = False
        elif self.our_state is not SEND_RESPONSE:
            raise LocalProtocolError(f"cannot send a response in state {self.our_state.value}")
        self._expects_continue = False
        status = event.status_code
        headers = list(event.headers)
        if self._connect and 200 <= status < 300:
            self.our_state = self.their_state = SWITCHED_PROTOCOL
            return _head_bytes(_status_line(status, event.reason), headers)
        facts = _Facts(headers)
        if facts.close:
            self._keep_alive = False
        length, chunked = facts.length, facts.chunked
        if self._method == b"HEAD" or status in (204, 304):
            sender = _Sender(0, False)  # no body, whatever the length says
        elif length is not None:
            sender = _Sender(length, False)
        elif chunked and not self._http10:
            sender = _Sender(None, True)
        elif not self._http10:
            headers.append((b"transfer-encoding", b"chunked"))
            sender = _Sender(None, True)
        else:
            headers = [(n, v) for n, v in headers if n != b"transfer-encoding"]
            sender = _Sender(None, False, until_close=True)
            self._keep_alive = False
        if not self._keep_alive and not facts.close:
            headers = [(n, v) for n, v in headers if n != b"connection"]
            headers.append((b"connection", b"close"))
        self._sending = sender
        self.our_state = SEND_BODY
        return _head_bytes(_status_line(status, event.reason), headers)

    def start_next_cycle(self) -> None:
        """Ready for the next request, once both sides are done with this one."""
        if self.our_state is not DONE or self.their_state is not DONE:
            raise LocalProtocolError("not both done with the request")
        self.our_state = self.their_state = IDLE
        self._method = b""


class Outbound(_Side):
    """The engine's connection to an upstream server; the engine sends it requests."""

    def __init__(self, max_head: int) -> None:
        super().__init__(max_head)
        self._method = b""

    def send(self, event: Event) -> bytes:
        """The bytes that send ``event`` to the upstream."""
        if isinstance(event, Data):
            return self._send_data(event.data)
        if isinstance(event, EndOfMessage):
            return self._send_end()
        if isinstance(event, Request):
            if self.our_state is not IDLE:
                raise LocalProtocolError(f"cannot send a request in state"
                                         f" {self.our_state.value}")
            facts = _Facts(event.headers)
            self._method = event.method
            self._sending = (_Sender(None, True) if facts.chunked
                             else _Sender(facts.length or 0, False))
            self._keep_alive = not facts.close
            self.our_state = SEND_BODY
            self.their_state = SEND_RESPONSE
            return _head_bytes(b"%b %b HTTP/1.1\r\n" % (event.method, event.target),
                               event.headers)
        raise LocalProtocolError(f"a client cannot send {type(event).__name__}")

    def next_event(self) -> Event | Sentinel:
        """The next event from the upstream."""
        state = self.their_state
        if state is SEND_BODY:
            return self._next_after_body()
        if state is SEND_RESPONSE:
            return self._response()
        if state in (DONE, MUST_CLOSE, SWITCHED_PROTOCOL):
            return PAUSED
        if state is CLOSED or (state is IDLE and self._eof):
            return ConnectionClosed()
        if state is IDLE:
            return NEED_DATA
        raise RemoteProtocolError("the connection is in an error state")

    def _response(self) -> Event | Sentinel:
        buf = self._buf
        if not buf and not self._eof:
            return NEED_DATA  # the answer has not begun
        try:
            end = _head_end(buf, self.max_head, "response")
        except RemoteProtocolError:
            self.their_state = ERROR
            raise
        if end < 0:
            if self._eof:
                self.their_state = ERROR
                if buf:
                    raise RemoteProtocolError("the upstream closed in the middle of its"
                                              " response head")
                return ConnectionClosed()
            return NEED_DATA
        head = bytes(buf[:end])
        del buf[:end]
        got = _Head()
        parser = httptools.HttpResponseParser(got)
        try:
            _parse(parser, head)
            version = _version(parser)
        except RemoteProtocolError:
            self.their_state = ERROR
            raise
        status = parser.get_status_code()
        headers = got.headers
        if status < 200:
            if status == 101:
                self.our_state = self.their_state = SWITCHED_PROTOCOL
            return InformationalResponse(status, headers, got.reason, version)
        facts = _Facts(headers)
        length, chunked = facts.length, facts.chunked
        if version == b"1.0" or facts.close:
            self._keep_alive = False
        self._ended_early = False
        if self._method == b"HEAD" or status in (204, 304):
            self._body = _Body(0, False)
        elif chunked:
            self._body = _Body(None, True)
        elif length is not None:
            self._body = _Body(length, False)
        else:
            self._body = _Body(None, False, until_close=True)
            self._keep_alive = False
        self.their_state = SEND_BODY
        return Response(status, headers, got.reason, version)

    def start_next_cycle(self) -> None:
        if self.our_state is not DONE or self.their_state is not DONE:
            raise LocalProtocolError("not both done with the exchange")
        self.our_state = self.their_state = IDLE
        self._method = b""
