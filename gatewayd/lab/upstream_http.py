"""What the lab upstream answers, without IO: request heads in, replies out.

The upstream (``gatewayd.lab.upstream``) reads a request head, asks ``route`` what to send
and writes it. Endpoints:

* ``GET /``: a small JSON object naming the lab name and address that served it;
* ``GET /bytes?n=N``: N bytes (``Content-Length``), for throughput;
* ``GET /stream?seconds=S&interval_ms=I``: a chunked response with one JSON line every I ms
  for S seconds (a live flow a revoked lease must cut);
* ``POST /echo``: the length of the request body.

HTTP/1.1 keep-alive is the default (HTTP/1.0: only with ``Connection: keep-alive``).
Request bodies are sized by ``Content-Length``; a chunked request body is refused (411).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import parse_qs, urlsplit

from gatewayd.errors import ParseError

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_BYTES = 16 * 1024**3
MAX_BODY_BYTES = 1024**3
MAX_STREAM_SECONDS = 3600.0
MIN_INTERVAL_MS = 1
DEFAULT_STREAM_SECONDS = 5.0
DEFAULT_INTERVAL_MS = 200
# The block /bytes repeats (64 KiB).
BYTES_BLOCK = b"0123456789abcdef" * 4096

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
}


class RequestError(ParseError):
    """A request the upstream refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first header ``name`` (case-insensitive)."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @property
    def content_length(self) -> int:
        """The body length (0 without a body); ``RequestError`` if it cannot be framed."""
        if self.header("transfer-encoding") is not None:
            raise RequestError("chunked request bodies are not accepted", 411)
        values = [v for k, v in self.headers if k.lower() == "content-length"]
        if not values:
            return 0
        if len(set(values)) != 1 or not values[0].isdigit():
            raise RequestError(f"bad Content-Length {values!r}", 400)
        length = int(values[0])
        if length > MAX_BODY_BYTES:
            raise RequestError(f"body of {length} bytes is over {MAX_BODY_BYTES}", 413)
        return length


def parse_request_head(
    buf: bytes, max_bytes: int = MAX_HEAD_BYTES
) -> tuple[RequestHead, int] | None:
    """The request head at the start of ``buf`` and its length, ``None`` if incomplete.

    ``RequestError`` (with the status to answer) if the head is invalid or longer than
    ``max_bytes``.
    """
    end = buf.find(b"\r\n\r\n", 0, max_bytes + 4)
    if end < 0:
        if len(buf) >= max_bytes + 4:
            raise RequestError(f"request head over {max_bytes} bytes", 431)
        return None
    try:
        text = buf[:end].decode("ascii")
    except UnicodeDecodeError:
        raise RequestError("request head is not ASCII", 400) from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN:
        raise RequestError(f"bad request line {lines[0][:80]!r}", 400)
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1") or not target.startswith("/"):
        raise RequestError(f"bad request line {lines[0][:80]!r}", 400)
    if len(lines) - 1 > MAX_HEADERS:
        raise RequestError(f"more than {MAX_HEADERS} header fields", 431)
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= _TOKEN:
            raise RequestError(f"bad header line {line[:80]!r}", 400)
        headers.append((name, value.strip(" \t")))
    return RequestHead(method, target, version, tuple(headers)), end + 4


# --- replies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """Where a request arrived: scheme, the upstream's local address and port, the peer."""

    scheme: str
    address: str
    port: int
    peer: str
    peer_port: int


@dataclass(frozen=True)
class Fixed:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Bytes:
    count: int


@dataclass(frozen=True)
class Stream:
    seconds: float
    interval_ms: int


@dataclass(frozen=True)
class EchoLength:
    """Answer with the length of the request body (which the IO shell counts)."""


Reply = Fixed | Bytes | Stream | EchoLength


def _json(status: int, value: object) -> Fixed:
    body = (json.dumps(value, sort_keys=True) + "\n").encode()
    return Fixed(status, "application/json", body)


def error_reply(status: int, message: str) -> Fixed:
    return _json(status, {"error": message})


def plain_address(address: str) -> str:
    """``::ffff:10.0.0.1`` → ``10.0.0.1``; other addresses unchanged."""
    try:
        ip = ip_address(address.split("%", maxsplit=1)[0])
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def route(head: RequestHead, served: Served, names: Mapping[str, str]) -> Reply:
    """The reply to ``head``; ``names`` maps a service address to its lab name."""
    url = urlsplit(head.target)
    query = parse_qs(url.query)
    if url.path == "/echo":
        if head.method != "POST":
            return error_reply(405, "POST a body to /echo")
        return EchoLength()
    if head.method != "GET":
        return error_reply(405, f"{head.method} is not served at {url.path}")
    address = plain_address(served.address)
    if url.path == "/":
        return _json(200, {
            "name": names.get(address),
            "host": head.header("host"),
            "scheme": served.scheme,
            "address": address,
            "port": served.port,
            "client": plain_address(served.peer),
            "client_port": served.peer_port,
        })
    if url.path == "/bytes":
        n = _int(query, "n", 0)
        if n is None or not 0 <= n <= MAX_BYTES:
            return error_reply(400, f"/bytes?n=N with 0 <= N <= {MAX_BYTES}")
        return Bytes(n)
    if url.path == "/stream":
        seconds = _float(query, "seconds", DEFAULT_STREAM_SECONDS)
        interval = _int(query, "interval_ms", DEFAULT_INTERVAL_MS)
        if seconds is None or not 0 <= seconds <= MAX_STREAM_SECONDS:
            return error_reply(400, f"seconds: 0 to {MAX_STREAM_SECONDS:g}")
        if interval is None or interval < MIN_INTERVAL_MS:
            return error_reply(400, f"interval_ms: {MIN_INTERVAL_MS} or more")
        return Stream(seconds, interval)
    return error_reply(404, f"no such path {url.path}")


def _int(query: dict[str, list[str]], key: str, default: int) -> int | None:
    values = query.get(key)
    if not values:
        return default
    return int(values[0]) if values[0].isdigit() else None


def _float(query: dict[str, list[str]], key: str, default: float) -> float | None:
    values = query.get(key)
    if not values:
        return default
    try:
        value = float(values[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def echo_reply(length: int) -> Fixed:
    return _json(200, {"received": length})


def response_head(
    status: int,
    headers: Mapping[str, str],
    keep_alive: bool,
) -> bytes:
    reason = _REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def fixed_head(reply: Fixed, keep_alive: bool) -> bytes:
    return response_head(
        reply.status,
        {"Content-Type": reply.content_type, "Content-Length": str(len(reply.body))},
        keep_alive,
    )


def bytes_head(count: int, keep_alive: bool) -> bytes:
    return response_head(
        200,
        {"Content-Type": "application/octet-stream", "Content-Length": str(count)},
        keep_alive,
    )


def stream_head(keep_alive: bool) -> bytes:
    return response_head(
        200,
        {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"},
        keep_alive,
    )


def stream_ticks(seconds: float, interval_ms: int) -> int:
    """How many lines a stream sends: one at once, then one per interval until the end."""
    return int(seconds * 1000 // interval_ms) + 1


def tick_chunk(seq: int, elapsed_ms: int) -> bytes:
    """One line of a stream as an HTTP chunk."""
    line = json.dumps({"seq": seq, "elapsed_ms": elapsed_ms}).encode() + b"\n"
    return b"%x\r\n%s\r\n" % (len(line), line)


LAST_CHUNK = b"0\r\n\r\n"
