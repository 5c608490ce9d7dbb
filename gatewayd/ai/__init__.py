"""The AI protocol analyzer: what an agent asks of an AI API, and what the answer cost.

The L7 engine asks it two things about each request it inspects (``docs/ai.md``):

* ``Analyzer.request(method, host, path, headers, body, complete=...)`` → ``AiRequest``
  or ``None`` (not AI traffic). Recognized by host and path, and by body shape: OpenAI
  (Chat Completions, Responses, Embeddings, Completions), Azure OpenAI, Anthropic
  Messages, Gemini and Vertex AI (``generateContent``, ``streamGenerateContent``),
  Bedrock (InvokeModel, Converse, and their streaming forms), OpenAI-compatible servers
  (vLLM, OpenRouter, Ollama's ``/v1``), Ollama's own API, and MCP's JSON-RPC on any host.
  The ``AiRequest``'s plain attributes — provider, model, stream, max output tokens, a
  prompt token estimate, tools declared, tool calls (names and the shape of their
  arguments, never the values), MCP method and tool — are what policy conditions and
  quotas read. ``status`` classifies what could not be read (malformed, truncated,
  oversize, unknown shape).
* ``Analyzer.response(request, status, headers)`` → ``ResponseMeter``: fed the answer's
  bytes as they stream through (SSE, AWS event-stream, JSON lines, JSON arrays; gzip),
  it holds bounded memory and returns ``AiResponse`` at ``close()``: the usage the
  provider reported, normalized (``Usage``: input, output, cached, cache-write and
  reasoning tokens), or an estimate when none was reported.

``filter_tools_list`` rewrites an MCP ``tools/list`` answer to the tools an agent may
call. Every size, count and time budget is a field of ``Bounds``.

IO boundary: none. The component is pure — bytes and values in, values out — and the L7
engine's IO shell calls it. The one file it reads is the tokenizer's data, shipped in a
Python package, loaded once (``Analyzer.preload``).
"""

from gatewayd.ai.analyze import BYTES_PER_TOKEN, Analyzer
from gatewayd.ai.bounds import (
    DEFAULT_EDGE_BYTES,
    DEFAULT_EXACT_TOKEN_CHARS,
    DEFAULT_MAX_ARGUMENT_BYTES,
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_JSON_BODY_BYTES,
    DEFAULT_MAX_NAME_CHARS,
    DEFAULT_MAX_PARSE_BYTES,
    DEFAULT_MAX_TOOL_CALLS,
    DEFAULT_MAX_TOOLS,
    DEFAULT_OUTPUT_SAMPLE_CHARS,
    DEFAULT_SUMMARY_CHARS,
    DEFAULT_TOKEN_WINDOWS,
    Bounds,
)
from gatewayd.ai.mcp import filter_tools_list
from gatewayd.ai.meter import ResponseMeter
from gatewayd.ai.request import AiRequest, Api, Estimate, Provider, Status, ToolCall
from gatewayd.ai.response import AiResponse, ResponseStatus
from gatewayd.ai.routes import Route, route_for
from gatewayd.ai.tokens import Count, Encoding, Family, TokenCounter, cl100k, family_of
from gatewayd.ai.usage import Usage

__all__ = [
    "BYTES_PER_TOKEN",
    "DEFAULT_EDGE_BYTES",
    "DEFAULT_EXACT_TOKEN_CHARS",
    "DEFAULT_MAX_ARGUMENT_BYTES",
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_JSON_BODY_BYTES",
    "DEFAULT_MAX_NAME_CHARS",
    "DEFAULT_MAX_PARSE_BYTES",
    "DEFAULT_MAX_TOOLS",
    "DEFAULT_MAX_TOOL_CALLS",
    "DEFAULT_OUTPUT_SAMPLE_CHARS",
    "DEFAULT_SUMMARY_CHARS",
    "DEFAULT_TOKEN_WINDOWS",
    "AiRequest",
    "AiResponse",
    "Analyzer",
    "Api",
    "Bounds",
    "Count",
    "Encoding",
    "Estimate",
    "Family",
    "Provider",
    "ResponseMeter",
    "ResponseStatus",
    "Route",
    "Status",
    "TokenCounter",
    "ToolCall",
    "Usage",
    "cl100k",
    "family_of",
    "filter_tools_list",
    "route_for",
]
