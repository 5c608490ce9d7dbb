"""What the lab upstream answers, without IO: request heads in, replies out.

The upstream (``gatewayd.lab.upstream``) reads a request head, asks ``route`` what to send
and writes it. Endpoints:

* ``GET /``: a small JSON object naming the lab name and address that served it;
* ``GET /bytes?n=N``: N bytes (``Content-Length``), for throughput;
* ``GET /stream?seconds=S&interval_ms=I``: a chunked response with one JSON line every I ms
  for S seconds (a live flow a revoked lease must cut);
* ``POST /echo``: the length of the request body;
* ``GET /headers``: the request's headers as received (lower-case names), in order;
* ``GET /ws`` with ``Upgrade: websocket``: ``101``, then every byte is echoed back (no
  framing is read: the gateway's splice is what is under test);
* ``POST /v1/chat/completions?interval_ms=I``: the OpenAI chat completions API (below), as
  JSON, or with ``"stream": true`` as server-sent events I ms apart (default 0);
* ``GET /v1/models`` and ``GET /v1/models/lab-model``: the one model, ``lab-model``;
* ``POST /v1/messages?interval_ms=I``: the Anthropic Messages API, JSON or streamed
  (``gatewayd.lab.upstream_anthropic``);
* ``POST /mcp[?sse=1]``: an MCP server's JSON-RPC (``gatewayd.lab.upstream_mcp``).

HTTP/1.1 keep-alive is the default (HTTP/1.0: only with ``Connection: keep-alive``).
Request bodies are sized by ``Content-Length`` or sent chunked (``Transfer-Encoding:
chunked``; any other transfer coding is refused with 411).

Chat completions are deterministic. The body (at most ``MAX_CHAT_BODY_BYTES``, 413 above)
needs a string ``model`` and a non-empty ``messages`` list of objects with a ``role`` and a
``content`` (a string or a list of content parts; an assistant message with ``tool_calls``
may have none); anything else is a 400 with an OpenAI error object. The reply is
``"lab reply to: "`` and the first 64 characters of the last user message's text. When the
request has ``tools`` and that message has the word "weather", the reply calls the first
tool instead, with the arguments ``{"city": "Paris"}`` (finish reason ``tool_calls``).
Usage counts lab tokens (``chat_tokens``): a message is one token plus one per
whitespace-separated word of its text and of each tool call's function name and arguments;
the prompt is the sum over the request's messages, the completion is the reply message.
A stream sends one chunk per word of the content (or of the tool call's arguments), the
first with the role, then a chunk with the finish reason, then with
``stream_options.include_usage`` a chunk with no choices and the usage, then ``[DONE]``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import parse_qs, urlsplit

from gatewayd.errors import ParseError

MAX_HEAD_BYTES = 16 * 1024
# ``RequestHead.content_length`` of a chunked body.
CHUNKED = -1
MAX_HEADERS = 100
MAX_BYTES = 16 * 1024**3
MAX_BODY_BYTES = 1024**3
MAX_STREAM_SECONDS = 3600.0
MIN_INTERVAL_MS = 1
DEFAULT_STREAM_SECONDS = 5.0
DEFAULT_INTERVAL_MS = 200
MAX_CHAT_BODY_BYTES = 1024**2
MAX_CHAT_INTERVAL_MS = 10_000
# The block /bytes repeats (64 KiB).
BYTES_BLOCK = b"0123456789abcdef" * 4096

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_REASONS = {
    200: "OK",
    202: "Accepted",
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
        """The body length (0 without a body, ``CHUNKED`` for a chunked one);
        ``RequestError`` if it cannot be framed."""
        coding = self.header("transfer-encoding")
        if coding is not None:
            if coding.strip().lower() != "chunked":
                raise RequestError(f"transfer coding {coding!r} is not accepted", 411)
            if any(k.lower() == "content-length" for k, _ in self.headers):
                raise RequestError("both Content-Length and Transfer-Encoding", 400)
            return CHUNKED
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


@dataclass(frozen=True)
class ChatCompletions:
    """Read the request body, keeping it when it is at most ``max_body`` bytes, and answer
    with ``chat_completion``."""

    interval_ms: int = 0
    max_body: int = MAX_CHAT_BODY_BYTES


@dataclass(frozen=True)
class AnthropicMessages:
    """Read the request body, keeping it when it is at most ``max_body`` bytes, and answer
    with ``gatewayd.lab.upstream_anthropic.message``."""

    interval_ms: int = 0
    max_body: int = MAX_CHAT_BODY_BYTES


@dataclass(frozen=True)
class McpRpc:
    """Read the request body (kept up to ``max_body`` bytes) and answer it as the lab's
    MCP server (``gatewayd.lab.upstream_mcp``); ``sse``: as one server-sent event."""

    sse: bool = False
    max_body: int = MAX_CHAT_BODY_BYTES


@dataclass(frozen=True)
class EventStream:
    """Server-sent events: a chunked ``text/event-stream`` body, one event a chunk, the
    events ``interval_ms`` apart."""

    events: tuple[bytes, ...]
    interval_ms: int


# What ``route`` decides, and what the IO shell writes.
@dataclass(frozen=True)
class Upgrade:
    """``GET /ws`` with a WebSocket upgrade: ``101``, then every byte echoed back."""

    accept: str


Reply = (Fixed | Bytes | Stream | EchoLength | ChatCompletions | AnthropicMessages | McpRpc
         | Upgrade)

# RFC 6455 §4.2.2: the key the server hashes with the client's Sec-WebSocket-Key.
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def websocket_accept(key: str) -> str:
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")


def upgrade_head(accept: str) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n")
Answer = Fixed | Bytes | Stream | EventStream


def fixed_json(status: int, value: object) -> Fixed:
    """A JSON answer."""
    body = (json.dumps(value, sort_keys=True) + "\n").encode()
    return Fixed(status, "application/json", body)


def error_reply(status: int, message: str) -> Fixed:
    return fixed_json(status, {"error": message})


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
    if url.path == "/mcp":
        if head.method != "POST":
            return error_reply(405, "POST a JSON-RPC request to /mcp")
        return McpRpc(sse=query.get("sse") == ["1"])
    if url.path == "/v1/messages":
        if head.method != "POST":
            return error_reply(405, "POST a request to /v1/messages")
        interval = _int(query, "interval_ms", 0)
        if interval is None or interval > MAX_CHAT_INTERVAL_MS:
            return error_reply(400, f"interval_ms: 0 to {MAX_CHAT_INTERVAL_MS}")
        return AnthropicMessages(interval)
    if url.path.startswith("/v1/"):
        return _openai_route(head.method, url.path, query)
    if head.method != "GET":
        return error_reply(405, f"{head.method} is not served at {url.path}")
    address = plain_address(served.address)
    if url.path == "/":
        return fixed_json(200, {
            "name": names.get(address),
            "host": head.header("host"),
            "scheme": served.scheme,
            "address": address,
            "port": served.port,
            "client": plain_address(served.peer),
            "client_port": served.peer_port,
        })
    if url.path == "/ws":
        key = head.header("sec-websocket-key")
        if (head.header("upgrade") or "").lower() != "websocket" or not key:
            return error_reply(400, "/ws needs a WebSocket upgrade")
        return Upgrade(websocket_accept(key.strip()))
    if url.path == "/headers":
        return fixed_json(200, {"headers": [[k.lower(), v] for k, v in head.headers]})
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
    return fixed_json(200, {"received": length})


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


def http_chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body (not empty: that is ``LAST_CHUNK``)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def tick_chunk(seq: int, elapsed_ms: int) -> bytes:
    """One line of a stream as an HTTP chunk."""
    return http_chunk(json.dumps({"seq": seq, "elapsed_ms": elapsed_ms}).encode() + b"\n")


LAST_CHUNK = b"0\r\n\r\n"


# --- the OpenAI API -------------------------------------------------------------------------

LAB_MODEL = {"id": "lab-model", "object": "model", "created": 0, "owned_by": "clawgress-lab"}
REPLY_PREFIX = "lab reply to: "
REPLY_QUOTE_CHARS = 64
TOOL_ARGUMENTS = '{"city": "Paris"}'
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


def openai_error(status: int, message: str, param: str | None = None,
                 code: str | None = None) -> Fixed:
    """An error in the OpenAI API's shape."""
    return fixed_json(status, {"error": {
        "message": message, "type": "invalid_request_error", "param": param, "code": code,
    }})


def _openai_route(method: str, path: str, query: dict[str, list[str]]) -> Reply:
    if path == "/v1/chat/completions":
        if method != "POST":
            return openai_error(405, f"{method} is not served at {path}: POST a request")
        interval = _int(query, "interval_ms", 0)
        if interval is None or interval > MAX_CHAT_INTERVAL_MS:
            return openai_error(400, f"interval_ms: 0 to {MAX_CHAT_INTERVAL_MS}", "interval_ms")
        return ChatCompletions(interval)
    if path == "/v1/models" or path.startswith("/v1/models/"):
        if method != "GET":
            return openai_error(405, f"{method} is not served at {path}")
        if path == "/v1/models":
            return fixed_json(200, {"object": "list", "data": [LAB_MODEL]})
        model = path.removeprefix("/v1/models/")
        if model == LAB_MODEL["id"]:
            return fixed_json(200, LAB_MODEL)
        return openai_error(404, f"the model {model!r} does not exist", "model",
                            "model_not_found")
    return openai_error(404, f"no such path {path}", code="unknown_url")


class _Invalid(ValueError):
    """A chat completion request the API refuses; ``param`` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class _ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class _Chat:
    model: str
    messages: tuple[dict[str, object], ...]
    tool: str | None  # the first tool's function name
    stream: bool
    include_usage: bool


def chat_completion(
    request: ChatCompletions, body: bytes | None, n: int, now: float
) -> Fixed | EventStream:
    """The answer to the ``n``-th chat completion request, at ``now`` (epoch seconds).

    ``body`` is None when it was longer than ``request.max_body`` (and was not kept).
    """
    if body is None:
        return openai_error(413, f"the request body is over {request.max_body} bytes")
    try:
        chat = _parse_chat(body)
    except _Invalid as exc:
        return openai_error(400, str(exc), exc.param)
    text = _last_user_text(chat.messages)
    call: _ToolCall | None = None
    message: dict[str, object]
    if chat.tool is not None and _WEATHER.search(text):
        finish = "tool_calls"
        call = _ToolCall(f"call_lab_{n}", chat.tool, TOOL_ARGUMENTS)
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }]}
    else:
        finish = "stop"
        message = {"role": "assistant", "content": REPLY_PREFIX + text[:REPLY_QUOTE_CHARS]}
    prompt = sum(chat_tokens(m) for m in chat.messages)
    completion = chat_tokens(message)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}
    base = {"id": f"chatcmpl-lab-{n}", "created": int(now), "model": chat.model}
    if chat.stream:
        content = _text(message["content"])
        return EventStream(_chunks(base, chat.include_usage, content, call, finish, usage),
                           request.interval_ms)
    return fixed_json(200, base | {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish,
                     "logprobs": None}],
        "usage": usage,
    })


def chat_tokens(message: Mapping[str, object]) -> int:
    """A message's lab tokens: one, plus one per whitespace-separated word of its text and
    of each tool call's function name and arguments."""
    words = len(_text(message.get("content")).split())
    for name, arguments in _tool_calls(message):
        words += len(name.split()) + len(arguments.split())
    return words + 1


def split_words(text: str) -> list[str]:
    """``text`` cut before each word, whitespace kept: the pieces join back to ``text``."""
    return _WORD_START.split(text)


def _chunks(base: dict[str, object], include_usage: bool, content: str,
            call: _ToolCall | None, finish: str, usage: dict[str, int]) -> tuple[bytes, ...]:
    def event(choices: list[object], chunk_usage: object = None) -> bytes:
        chunk = base | {"object": "chat.completion.chunk", "choices": choices}
        if include_usage:
            chunk["usage"] = chunk_usage
        return b"data: " + json.dumps(chunk, sort_keys=True).encode() + b"\n\n"

    def delta(fields: dict[str, object], reason: str | None = None) -> list[object]:
        return [{"index": 0, "delta": fields, "finish_reason": reason, "logprobs": None}]

    events = []
    if call is not None:
        events.append(event(delta({"role": "assistant", "content": None, "tool_calls": [{
            "index": 0, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }]})))
        events += [event(delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
                   for piece in split_words(call.arguments)]
    else:
        pieces = split_words(content)
        events.append(event(delta({"role": "assistant", "content": pieces[0]})))
        events += [event(delta({"content": piece})) for piece in pieces[1:]]
    events.append(event(delta({}, finish)))
    if include_usage:
        events.append(event([], usage))
    events.append(b"data: [DONE]\n\n")
    return tuple(events)


def event_stream_head(keep_alive: bool) -> bytes:
    return response_head(
        200,
        {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
         "Transfer-Encoding": "chunked"},
        keep_alive,
    )


def _parse_chat(body: bytes) -> _Chat:
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Invalid("the body is not JSON") from None
    if not isinstance(request, dict):
        raise _Invalid("the body must be a JSON object")
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise _Invalid("you must provide a model (a string)", "model")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("messages must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")
    tools = request.get("tools")
    if tools is not None and (not isinstance(tools, list) or not tools):
        raise _Invalid("tools must be a non-empty array", "tools")
    names = [_tool_name(tool, f"tools[{i}]") for i, tool in enumerate(tools or ())]
    stream = request.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _Invalid("stream must be a boolean", "stream")
    options = request.get("stream_options")
    if options is not None and not stream:
        raise _Invalid("stream_options is only allowed when stream is true", "stream_options")
    include_usage = options.get("include_usage", False) if isinstance(options, dict) else False
    if options is not None and (not isinstance(options, dict)
                                or not isinstance(include_usage, bool)):
        raise _Invalid("stream_options.include_usage must be a boolean",
                       "stream_options.include_usage")
    return _Chat(model, tuple(messages), names[0] if names else None, bool(stream),
                 bool(include_usage))


def _check_message(message: object, where: str) -> None:
    if not isinstance(message, dict):
        raise _Invalid(f"{where} must be an object", where)
    role = message.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise _Invalid(f"{where}.role must be one of {', '.join(_ROLES)}", f"{where}.role")
    calls = message.get("tool_calls")
    if calls is not None:
        if role != "assistant" or not isinstance(calls, list):
            raise _Invalid(f"{where}.tool_calls: an array, on an assistant message",
                           f"{where}.tool_calls")
        for i, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not all(
                isinstance(function.get(key), str) for key in ("name", "arguments")
            ):
                raise _Invalid(f"{where}.tool_calls[{i}] needs a function name and arguments",
                               f"{where}.tool_calls[{i}]")
    content = message.get("content")
    if content is None and calls:
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _Invalid(f"{where}.content must be a string or an array of content parts",
                       f"{where}.content")
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or (kind == "text" and not isinstance(part.get("text"), str)):
            raise _Invalid(f"{where}.content[{i}] must be a content part with a type (and"
                           " text, for a text part)", f"{where}.content[{i}]")


def _tool_name(tool: object, where: str) -> str:
    function = tool.get("function") if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(name, str):
        raise _Invalid(f"{where} must be a function tool with a name", where)
    return name


def _text(content: object) -> str:
    """The text of a checked message's content: a string, or its text parts, space-joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part["text"]) for part in content if part.get("type") == "text")
    return ""


def _tool_calls(message: Mapping[str, object]) -> list[tuple[str, str]]:
    """The function name and arguments of each of a checked message's tool calls."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    return [(str(call["function"]["name"]), str(call["function"]["arguments"]))
            for call in calls]


def _last_user_text(messages: Sequence[Mapping[str, object]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""
