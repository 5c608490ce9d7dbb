"""What the analyzer says about one request: ``AiRequest`` and the names it is made of.

An ``AiRequest`` is read once per request, from its method, host, path, headers and body
(as much of the body as the L7 engine inspects), and never changes afterwards. Policy
conditions, quotas and the audit record read its plain attributes; the response meter
reads ``provider`` and ``api`` to know how the answer is framed.

``status`` says how far the body could be read. A request that is not ``ok`` still names
its provider and API (and what the URL says: Gemini, Bedrock and Azure put the model or
deployment there), so policy can decide on it; its token estimate then comes from the
body's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Provider(StrEnum):
    """Who serves the API: by host for the hosted services, by path and body elsewhere."""

    OPENAI = "openai"
    AZURE_OPENAI = "azure-openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    VERTEX_AI = "vertex-ai"
    BEDROCK = "bedrock"
    OPENROUTER = "openrouter"
    MISTRAL = "mistral"
    GROQ = "groq"
    TOGETHER = "together"
    DEEPSEEK = "deepseek"
    XAI = "xai"
    FIREWORKS = "fireworks"
    PERPLEXITY = "perplexity"
    OLLAMA = "ollama"
    # An OpenAI-shaped (vLLM, llama.cpp, LiteLLM, Ollama's /v1) or Anthropic-shaped API on
    # a host the analyzer does not know by name.
    OPENAI_COMPATIBLE = "openai-compatible"
    ANTHROPIC_COMPATIBLE = "anthropic-compatible"
    MCP = "mcp"


class Api(StrEnum):
    """Which API of the provider the request calls (the body's shape)."""

    CHAT_COMPLETIONS = "chat.completions"
    COMPLETIONS = "completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    COUNT_TOKENS = "count-tokens"
    GENERATE_CONTENT = "generate-content"
    EMBED_CONTENT = "embed-content"
    INVOKE_MODEL = "invoke-model"
    CONVERSE = "converse"
    OLLAMA_CHAT = "ollama.chat"
    OLLAMA_GENERATE = "ollama.generate"
    OLLAMA_EMBED = "ollama.embed"
    MCP = "mcp"
    # A provider's host, but no endpoint the analyzer reads (files, models, batches...).
    OTHER = "other"


class Status(StrEnum):
    """How far the request body could be read."""

    OK = "ok"
    # Not JSON, not UTF-8, or a compressed body that does not inflate.
    MALFORMED = "malformed"
    # The body was cut at the L7 engine's inspect limit, so it was not parsed.
    TRUNCATED = "truncated"
    # Whole, but larger than the analyzer parses (``Bounds.max_parse_bytes``).
    OVERSIZE = "oversize"
    # JSON, but not what the endpoint takes (no model, messages not a list...), or a
    # content encoding the analyzer does not read.
    UNKNOWN_SHAPE = "unknown-shape"


class Estimate(StrEnum):
    """How ``prompt_tokens_estimate`` was made (``docs/ai.md``, "Token estimates")."""

    EXACT = "exact"  # every character of the prompt encoded with cl100k_base
    SAMPLED = "sampled"  # windows encoded, the rest extrapolated by their ratio
    BYTES = "bytes"  # from the body's size: it was not parsed
    NONE = "none"  # nothing to count (MCP, an unknown endpoint)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call: the tool's name and a bounded summary of its arguments.

    ``arguments`` is their shape — keys, types and lengths, as in
    ``{path:str(12),recursive:bool}`` — never their values, which may carry secrets;
    ``argument_chars`` is the size of the arguments as JSON text.
    """

    name: str
    arguments: str
    argument_chars: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments,
                "argument_chars": self.argument_chars}


@dataclass(frozen=True, slots=True)
class AiRequest:
    """One request to an AI API, as policy, quotas and the audit record see it.

    ``tool_calls`` are the calls the conversation carries (an agent sends the calls its
    model asked for, with their results); ``tools_declared`` the tools it offers the
    model. ``mcp_methods`` and ``mcp_tools`` list every JSON-RPC message of an MCP request
    (a batch has several); ``mcp_method`` and ``mcp_tool`` are the first of each.
    ``stream_usage`` is whether a streamed OpenAI-style answer was asked to report usage
    (``stream_options.include_usage``), ``None`` where the API has no such option.
    """

    provider: Provider
    api: Api
    status: Status
    model: str | None = None
    stream: bool = False
    max_output_tokens: int | None = None
    prompt_tokens_estimate: int = 0
    estimate: Estimate = Estimate.NONE
    tools_declared: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    mcp_method: str | None = None
    mcp_tool: str | None = None
    mcp_methods: tuple[str, ...] = ()
    mcp_tools: tuple[str, ...] = ()
    messages: int = 0
    attachments: int = 0
    stream_usage: bool | None = None
    deployment: str | None = None
    region: str | None = None
    body_truncated: bool = False
    detail: str | None = None

    @property
    def tools_called(self) -> tuple[str, ...]:
        """Every tool the request calls, once each: the conversation's tool calls and the
        MCP tools it calls (what policy's ``tools`` condition matches)."""
        seen: dict[str, None] = {}
        for call in self.tool_calls:
            seen.setdefault(call.name)
        for name in self.mcp_tools:
            seen.setdefault(name)
        return tuple(seen)

    def as_dict(self) -> dict[str, Any]:
        """The fields an audit record carries (JSON-ready; no payload text)."""
        out: dict[str, Any] = {
            "provider": str(self.provider), "api": str(self.api), "status": str(self.status),
            "model": self.model, "stream": self.stream,
            "max_output_tokens": self.max_output_tokens,
            "prompt_tokens_estimate": self.prompt_tokens_estimate,
            "estimate": str(self.estimate),
            "tools_declared": list(self.tools_declared),
            "tool_calls": [call.as_dict() for call in self.tool_calls],
            "messages": self.messages, "attachments": self.attachments,
        }
        optional = {"mcp_methods": list(self.mcp_methods), "mcp_tools": list(self.mcp_tools),
                    "stream_usage": self.stream_usage, "deployment": self.deployment,
                    "region": self.region, "detail": self.detail,
                    "body_truncated": self.body_truncated or None}
        out.update({k: v for k, v in optional.items() if v not in (None, [])})
        return out
