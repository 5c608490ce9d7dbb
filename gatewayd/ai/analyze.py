"""The analyzer's entry points: a request in, an ``AiRequest`` (or ``None``) out; an
answer's head in, a ``ResponseMeter`` out.

``Analyzer.request`` takes what the L7 engine has when it decides on a request — method,
host, path (with its query), headers, and the body read so far, with whether that is all
of it. It finds the endpoint (``routes``), inflates a gzip or deflate body, parses the
JSON (orjson) unless the body was cut or is over ``max_parse_bytes``, lets the provider's
reader gather model, tools, calls and prompt text, and counts the prompt's tokens
(``tokens``). It returns ``None`` for traffic that is not an AI API's, and never raises
for anything in the request.

Costs: parsing is linear in the body (bounded by the engine's inspect limit and
``max_parse_bytes``); reading walks at most ``max_items`` messages; the tokenizer encodes
at most ``exact_token_chars`` characters. So the time one request holds the event loop is
bounded whatever its size.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import orjson

from gatewayd.ai import anthropic, bedrock, gemini, mcp, ollama, openai
from gatewayd.ai.bounds import Bounds
from gatewayd.ai.meter import Headers, ResponseMeter, header_map
from gatewayd.ai.parsed import JsonObject
from gatewayd.ai.reading import Reading
from gatewayd.ai.request import AiRequest, Api, Estimate, Provider, Status
from gatewayd.ai.routes import Route, route_for
from gatewayd.ai.tokens import TokenCounter, family_of

# Bytes of request JSON per token, for bodies that were not parsed (cut at the inspect
# limit, or too large): English prose runs about 4 characters a token with cl100k_base,
# and JSON adds its punctuation; 4 keeps the estimate on the high side for prose.
BYTES_PER_TOKEN = 4
# Tokens each chat message adds for its role and framing, and the reply's priming
# (OpenAI's published accounting for its chat models).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3

BodyReader = Callable[[JsonObject, Reading], None]
READERS: dict[Api, BodyReader] = {
    Api.CHAT_COMPLETIONS: openai.read_chat,
    Api.COMPLETIONS: openai.read_completions,
    Api.EMBEDDINGS: openai.read_embeddings,
    Api.RESPONSES: openai.read_responses,
    Api.MESSAGES: anthropic.read_messages,
    Api.GENERATE_CONTENT: gemini.read_generate,
    Api.EMBED_CONTENT: gemini.read_embed,
    Api.CONVERSE: bedrock.read_converse,
    Api.INVOKE_MODEL: bedrock.read_invoke,
    Api.OLLAMA_CHAT: ollama.read_chat,
    Api.OLLAMA_GENERATE: ollama.read_generate,
    Api.OLLAMA_EMBED: ollama.read_embed,
}


def _reader(route: Route) -> BodyReader:
    if route.api is not Api.COUNT_TOKENS:
        return READERS[route.api]
    if route.provider in (Provider.GEMINI, Provider.VERTEX_AI):
        return gemini.read_count_tokens
    return anthropic.read_messages


class Analyzer:
    """The AI protocol analyzer, with its bounds and its token counter.

    Build one per process; ``preload`` loads the tokenizer (0.2 s) so that no request
    waits for it. Pure otherwise: every call depends only on its arguments.
    """

    def __init__(self, bounds: Bounds | None = None, counter: TokenCounter | None = None,
                 ) -> None:
        self.bounds = bounds or Bounds()
        self.counter = counter or TokenCounter(exact_chars=self.bounds.exact_token_chars,
                                               windows=self.bounds.token_windows)

    def preload(self) -> None:
        """Load the tokenizer now rather than at the first request."""
        self.counter.count(["warm"])

    def request(self, method: str, host: str, path: str, headers: Headers, body: bytes,
                *, complete: bool = True) -> AiRequest | None:
        """What a request is, if it is an AI API's (see the module docstring).

        ``path`` is the request target's path with its query; ``complete`` is false when
        ``body`` is only the first part of the body (the engine's inspect limit).
        """
        h = header_map(headers)
        route = route_for(method, host, path)
        if route is None and method.upper() != "POST":
            return None
        if route is not None and route.api is Api.OTHER:
            return self._build(route, Status.OK, None, body_truncated=not complete)
        if route is None:
            return self._mcp(h, body, complete)
        decoded, problem = self._decode(body, h.get("content-encoding", ""), complete)
        if problem is not None:
            return None if route.by_shape else self._unread(route, problem, body, h,
                                                            complete)
        if not complete or len(decoded) > self.bounds.max_parse_bytes:
            if route.by_shape:
                return None
            status = Status.TRUNCATED if not complete else Status.OVERSIZE
            return self._unread(route, (status, None), body, h, complete)
        try:
            parsed = orjson.loads(decoded)
        except orjson.JSONDecodeError:
            if route.by_shape:
                return None
            return self._unread(route, (Status.MALFORMED, "the body is not JSON"), body, h,
                                complete)
        if not isinstance(parsed, dict):
            if route.by_shape:
                return None
            return self._unread(route, (Status.UNKNOWN_SHAPE, "the body is not a JSON object"),
                                body, h, complete)
        reading = Reading(self.bounds)
        reading.model_in_url = route.model is not None or route.deployment is not None
        _reader(route)(parsed, reading)
        if reading.problem is not None:
            if route.by_shape:
                return None
            return self._build(route, Status.UNKNOWN_SHAPE, reading, detail=reading.problem)
        return self._build(route, Status.OK, reading)

    def response(self, request: AiRequest, status: int, headers: Headers) -> ResponseMeter:
        """A meter for the answer to ``request``, given its status and headers."""
        return ResponseMeter(request, status, headers, bounds=self.bounds,
                             counter=self.counter)

    # --- the parts ---------------------------------------------------------------------

    def _decode(self, body: bytes, encoding: str, complete: bool,
                ) -> tuple[bytes, tuple[Status, str] | None]:
        """The body inflated (gzip, deflate), within ``max_parse_bytes`` (+1 to notice
        more); or why it cannot be read."""
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            return body, None
        if encoding not in ("gzip", "x-gzip", "deflate"):
            return b"", (Status.UNKNOWN_SHAPE, f"content-encoding {encoding[:32]}")
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in encoding else 15)
        try:
            out = inflate.decompress(body, self.bounds.max_parse_bytes + 1)
        except zlib.error:
            return b"", (Status.MALFORMED, "the compressed body does not inflate")
        if complete and not inflate.eof and len(out) <= self.bounds.max_parse_bytes:
            return b"", (Status.MALFORMED, "the compressed body is cut short")
        return out, None

    def _mcp(self, h: dict[str, str], body: bytes, complete: bool) -> AiRequest | None:
        """A POST to a host and path not known: MCP if its body says so. Every POST the
        engine inspects comes here, so what cannot be JSON-RPC is set aside before
        parsing: bodies cut short, compressed or over the parse bound, and bodies that do
        not start like JSON or never say ``"jsonrpc"``."""
        if not complete or len(body) > self.bounds.max_parse_bytes or \
                h.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            return None
        if body.lstrip()[:1] not in (b"{", b"[") or b'"jsonrpc"' not in body:
            return None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not mcp.is_mcp(parsed, any(name in h for name in mcp.MCP_HEADERS)):
            return None
        reading = Reading(self.bounds)
        mcp.read_mcp(parsed, reading)
        status = Status.OK if reading.problem is None else Status.UNKNOWN_SHAPE
        return self._build(Route(Provider.MCP, Api.MCP), status, reading,
                           detail=reading.problem)

    def _unread(self, route: Route, problem: tuple[Status, str | None], body: bytes,
                h: dict[str, str], complete: bool) -> AiRequest:
        """A request whose body was not parsed: its estimate comes from its size."""
        status, detail = problem
        length = h.get("content-length", "")
        size = int(length) if length.isdigit() and len(length) < 19 else len(body)
        size = max(size, len(body))
        family = family_of(route.model, route.provider)
        return self._build(route, status, None, detail=detail, body_truncated=not complete,
                           estimate=(math.ceil(size / BYTES_PER_TOKEN * family.factor),
                                     Estimate.BYTES))

    def _build(self, route: Route, status: Status, reading: Reading | None, *,
               detail: str | None = None, body_truncated: bool = False,
               estimate: tuple[int, Estimate] | None = None) -> AiRequest:
        r = reading
        model = route.model or (r.model if r else None) or route.deployment
        if estimate is None:
            estimate = self._estimate(route, r, model) if r else (0, Estimate.NONE)
        tools = tuple(r.mcp_tools) if r else ()
        methods = tuple(r.mcp_methods) if r else ()
        return AiRequest(
            provider=route.provider, api=route.api, status=status, model=model,
            stream=route.stream or (r.stream if r else False),
            max_output_tokens=r.max_output_tokens if r else None,
            prompt_tokens_estimate=estimate[0], estimate=estimate[1],
            tools_declared=tuple(r.declared) if r else (),
            tool_calls=tuple(r.calls) if r else (),
            mcp_method=methods[0] if methods else None, mcp_tool=tools[0] if tools else None,
            mcp_methods=methods, mcp_tools=tools,
            messages=r.messages if r else 0, attachments=r.attachments if r else 0,
            stream_usage=r.stream_usage if r else None,
            deployment=route.deployment, region=route.region,
            body_truncated=body_truncated, detail=detail)

    def _estimate(self, route: Route, r: Reading, model: str | None) -> tuple[int, Estimate]:
        if route.api is Api.MCP:
            return 0, Estimate.NONE
        count = self.counter.count(r.texts)
        family = family_of(model, route.provider)
        tokens = count.tokens * r.scale * family.factor
        framing = TOKENS_PER_MESSAGE * r.messages + (TOKENS_PER_REPLY if r.messages else 0)
        total = math.ceil(tokens + framing * r.scale) + r.token_ids \
            + r.attachments * family.attachment_tokens
        return total, count.estimate if r.scale == 1.0 else Estimate.SAMPLED
