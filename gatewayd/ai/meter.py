"""The response meter: an answer's bytes in, as they stream, ``AiResponse`` out at the end.

The L7 engine forwards each piece of an answer to the agent as it arrives and hands the
same bytes to ``ResponseMeter.feed``; nothing is delayed, and the meter keeps only what
its ``Bounds`` allow (one streamed message, or the edges of a large one; a whole JSON body
up to ``max_json_body_bytes``, else its edges). ``close`` at the end of the body returns
the ``AiResponse``.

How the answer is read follows its headers and the request: ``Content-Encoding`` gzip
or deflate is inflated (other encodings: ``unreadable``); ``Content-Type``
``text/event-stream`` is SSE, ``application/vnd.amazon.eventstream`` AWS event-stream,
``application/x-ndjson`` JSON lines; a streamed Gemini answer without ``alt=sse`` is a
JSON array; anything else is one JSON body. Which provider reader reads the messages
follows the request's ``api``. Errors in the framing or the JSON stop the reading with
``malformed``; nothing a peer sends makes ``feed`` or ``close`` raise.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping

import orjson

from gatewayd.ai.anthropic import MessagesAnswer
from gatewayd.ai.bedrock import ConverseAnswer, InvokeAnswer
from gatewayd.ai.bounds import Bounds
from gatewayd.ai.edges import find_values
from gatewayd.ai.eventstream import EventStreamDecoder
from gatewayd.ai.framing import Clip, Frame, JsonArrayDecoder, LineDecoder, SseDecoder
from gatewayd.ai.gemini import GeminiAnswer
from gatewayd.ai.mcp import McpAnswer
from gatewayd.ai.ollama import OllamaAnswer
from gatewayd.ai.openai import ChatAnswer, ResponsesAnswer
from gatewayd.ai.reading import AnswerReader, Tally
from gatewayd.ai.request import AiRequest, Api
from gatewayd.ai.response import AiResponse, ResponseStatus
from gatewayd.ai.tokens import TokenCounter, family_of
from gatewayd.ai.usage import from_bedrock_headers
from gatewayd.errors import ParseError

Headers = Iterable[tuple[bytes, bytes]]
# Decompressed bytes handed on per step, so one small compressed piece cannot expand
# into one huge buffer.
INFLATE_STEP = 256 * 1024
_DONE = b"[DONE]"


def header_map(headers: Headers) -> dict[str, str]:
    """Headers by lower-case name (repeated ones joined with commas)."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out


def reader_for(request: AiRequest, headers: Mapping[str, str]) -> AnswerReader:
    api = request.api
    if api in (Api.CHAT_COMPLETIONS, Api.COMPLETIONS, Api.EMBEDDINGS):
        return ChatAnswer()
    if api is Api.RESPONSES:
        return ResponsesAnswer()
    if api is Api.MESSAGES:
        return MessagesAnswer()
    if api in (Api.GENERATE_CONTENT, Api.EMBED_CONTENT):
        return GeminiAnswer()
    if api is Api.CONVERSE:
        return ConverseAnswer()
    if api is Api.INVOKE_MODEL:
        return InvokeAnswer(from_bedrock_headers(headers))
    if api in (Api.OLLAMA_CHAT, Api.OLLAMA_GENERATE, Api.OLLAMA_EMBED):
        return OllamaAnswer()
    if api is Api.MCP:
        return McpAnswer()
    return AnswerReader()


Decoder = SseDecoder | EventStreamDecoder | LineDecoder | JsonArrayDecoder


def decoder_for(request: AiRequest, status: int, content_type: str,
                bounds: Bounds) -> Decoder | None:
    """How the body is framed; ``None``: one JSON body."""
    kind = content_type.split(";", 1)[0].strip().lower()
    size, edge = bounds.max_event_bytes, bounds.edge_bytes
    if kind == "text/event-stream":
        return SseDecoder(size, edge)
    if kind == "application/vnd.amazon.eventstream":
        return EventStreamDecoder(size, edge)
    if kind in ("application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/x-jsonlines"):
        return LineDecoder(size, edge)
    if request.api is Api.GENERATE_CONTENT and request.stream and status < 400:
        return JsonArrayDecoder(size, edge)
    return None


class ResponseMeter:
    """One answer's body, fed as it streams (see the module docstring)."""

    def __init__(self, request: AiRequest, status: int, headers: Headers, *,
                 bounds: Bounds, counter: TokenCounter) -> None:
        h = header_map(headers)
        self._request = request
        self._status = status
        self._bounds = bounds
        self._counter = counter
        self._tally = Tally(bounds)
        self._reader = reader_for(request, h)
        self._decoder = decoder_for(request, status, h.get("content-type", ""), bounds)
        self._body = Clip(bounds.max_json_body_bytes, bounds.edge_bytes) \
            if self._decoder is None else None
        self._sse = isinstance(self._decoder, SseDecoder)
        # An endpoint the analyzer does not read (files, models...): bytes are only counted.
        self._counting_only = request.api is Api.OTHER
        self._bytes = 0
        self._decoded = 0
        self._problem: tuple[ResponseStatus, str] | None = None
        self._result: AiResponse | None = None
        self._inflate: zlib._Decompress | None = None
        encoding = h.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            self._problem = (ResponseStatus.UNREADABLE, f"content-encoding {encoding[:32]}")

    def feed(self, data: bytes) -> None:
        """The next bytes of the body, as they came from the upstream."""
        if self._result is not None:
            raise RuntimeError("the meter is closed")
        self._bytes += len(data)
        if self._problem is not None or self._counting_only or not data:
            return
        try:
            if self._inflate is None:
                self._take(data)
                return
            if self._inflate.eof:  # bytes after the compressed stream's end: not read
                return
            piece = self._inflate.decompress(data, INFLATE_STEP)
            while piece and self._problem is None:
                self._take(piece)
                tail = self._inflate.unconsumed_tail
                piece = self._inflate.decompress(tail, INFLATE_STEP) if tail else b""
        except zlib.error:
            self._problem = (ResponseStatus.MALFORMED, "the compressed body does not inflate")
        except ParseError as exc:
            self._problem = (ResponseStatus.MALFORMED, str(exc)[:200])

    def _take(self, data: bytes) -> None:
        self._decoded += len(data)
        if self._decoded > self._bounds.max_decoded_bytes:
            self._problem = (ResponseStatus.TRUNCATED, f"read up to"
                             f" {self._bounds.max_decoded_bytes} decompressed bytes")
            return
        if self._body is not None:
            self._body.add(data)
            return
        assert self._decoder is not None
        for frame in self._decoder.feed(data):
            self._frame(frame)

    def _frame(self, frame: Frame) -> None:
        t, reader = self._tally, self._reader
        t.events += 1
        if frame.kind == "exception":
            reader.exception(frame.name, t)
            return
        if frame.oversize:
            reader.partial(frame.name, find_values(frame.data, frame.tail, reader.head_keys,
                                                   reader.tail_keys), t)
            return
        data = frame.data.strip()
        if not data:
            return
        if self._sse and data == _DONE:
            t.complete = True
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ParseError("a streamed message is not JSON") from None
        reader.event(frame.name, obj, t)

    def close(self) -> AiResponse:
        """End of the body: what the answer said. Calling it again returns the same."""
        if self._result is not None:
            return self._result
        t = self._tally
        ended_inside = False
        if self._counting_only:
            t.complete = True
        elif self._problem is None:
            try:
                ended_inside = self._finish_framing()
            except zlib.error:
                self._problem = (ResponseStatus.MALFORMED, "the compressed body does not inflate")
            except ParseError as exc:
                self._problem = (ResponseStatus.MALFORMED, str(exc)[:200])
        self._reader.finish(t)
        status, detail = ResponseStatus.COMPLETE, None
        if self._problem is not None:
            status, detail = self._problem
        elif ended_inside:
            status, detail = ResponseStatus.TRUNCATED, "the answer ended inside a message"
        elif not t.complete and not (self._body is not None and self._decoded == 0):
            status, detail = ResponseStatus.TRUNCATED, "the answer ended before its end marker"
        if self._status >= 400 or t.error is not None:
            status = ResponseStatus.ERROR
            detail = detail or (f"HTTP {self._status}" if self._status >= 400 else None)
        self._result = AiResponse(
            status=status, usage=t.usage, output_tokens_estimate=self._estimate(),
            model=t.model, finish_reason=t.finish_reason, tool_calls=t.calls.calls(),
            mcp_tools=tuple(t.mcp_tools), events=t.events, body_bytes=self._bytes,
            error=t.error, detail=detail)
        return self._result

    def _finish_framing(self) -> bool:
        """Read what the body's end completes; whether it ended inside a message."""
        if self._inflate is not None:
            rest = self._inflate.flush()
            if rest:
                self._take(rest)
            if not self._inflate.eof and self._bytes and self._problem is None:
                self._problem = (ResponseStatus.TRUNCATED, "the compressed body is cut short")
        if self._problem is not None:
            return False
        if self._body is not None:
            return self._read_body(self._body)
        decoder = self._decoder
        if isinstance(decoder, LineDecoder):
            for frame in decoder.close():  # a last line without its newline
                try:
                    self._frame(frame)
                except ParseError:
                    return True
            return False
        assert decoder is not None
        return decoder.close()

    def _read_body(self, body: Clip) -> bool:
        t, reader = self._tally, self._reader
        if body.over:
            reader.body(find_values(body.head, body.tail, reader.head_keys,
                                    reader.tail_keys), t)
            return False
        data = body.whole
        if not data.strip():
            return False
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ParseError("the answer is not JSON") from None
        reader.body(obj, t)
        return False

    def _estimate(self) -> int:
        """Output tokens, from the output text seen (sampled, then scaled)."""
        output = self._tally.output
        if not output.chars:
            return 0
        sample = "".join(output.sample)
        count = self._counter.count([sample])
        sampled = len(sample) or 1
        factor = family_of(self._tally.model or self._request.model,
                           self._request.provider).factor
        return math.ceil(count.tokens * max(1.0, output.chars / sampled) * factor)
