"""Token usage as the providers report it, normalized to one meaning.

Providers count the same things differently: OpenAI's ``prompt_tokens`` include cached
tokens, Anthropic's ``input_tokens`` exclude cache reads and writes, Gemini's
``candidatesTokenCount`` excludes thinking. ``Usage`` has one meaning whatever the source,
so quotas can add figures from any provider:

* ``input_tokens`` — every prompt token the model read, cached or not;
* ``output_tokens`` — every token it generated, reasoning included;
* ``cached_input_tokens`` — of the input, read from a prompt cache;
* ``cache_write_tokens`` — of the input, written to a prompt cache;
* ``reasoning_tokens`` — of the output, spent on reasoning ("thinking").

A detail the provider did not report is ``None``, not 0. Each ``from_*`` function takes
the provider's usage object as parsed JSON and returns ``None`` when it is not one. The
table of sources is in ``docs/ai.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gatewayd.ai.parsed import as_count, as_object


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a response reports, normalized (see the module docstring)."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, int]:
        out = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
               "total_tokens": self.total_tokens}
        for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def from_openai_chat(value: object) -> Usage | None:
    """Chat Completions, Completions and Embeddings ``usage`` (and OpenAI-compatible
    servers'): ``prompt_tokens`` include cached ones, ``completion_tokens`` reasoning."""
    u = as_object(value)
    if u is None:
        return None
    prompt, completion = as_count(u.get("prompt_tokens")), as_count(u.get("completion_tokens"))
    if prompt is None and completion is None:
        return None
    prompt_details = as_object(u.get("prompt_tokens_details")) or {}
    completion_details = as_object(u.get("completion_tokens_details")) or {}
    return Usage(prompt or 0, completion or 0,
                 as_count(prompt_details.get("cached_tokens")),
                 as_count(prompt_details.get("cache_write_tokens")),
                 as_count(completion_details.get("reasoning_tokens")))


def from_openai_responses(value: object) -> Usage | None:
    """Responses API ``usage``: ``input_tokens`` include cached ones."""
    u = as_object(value)
    if u is None:
        return None
    given, made = as_count(u.get("input_tokens")), as_count(u.get("output_tokens"))
    if given is None and made is None:
        return None
    in_details = as_object(u.get("input_tokens_details")) or {}
    out_details = as_object(u.get("output_tokens_details")) or {}
    return Usage(given or 0, made or 0, as_count(in_details.get("cached_tokens")),
                 as_count(in_details.get("cache_write_tokens")),
                 as_count(out_details.get("reasoning_tokens")))


def from_anthropic(fields: Mapping[str, Any]) -> Usage | None:
    """Anthropic Messages ``usage`` (whole, or merged from a stream's ``message_start`` and
    ``message_delta``): ``input_tokens`` exclude cache reads and writes, added back."""
    given, made = as_count(fields.get("input_tokens")), as_count(fields.get("output_tokens"))
    if given is None and made is None:
        return None
    read = as_count(fields.get("cache_read_input_tokens"))
    written = as_count(fields.get("cache_creation_input_tokens"))
    details = as_object(fields.get("output_tokens_details")) or {}
    return Usage((given or 0) + (read or 0) + (written or 0), made or 0, read, written,
                 as_count(details.get("thinking_tokens")))


def from_gemini(value: object) -> Usage | None:
    """Gemini ``usageMetadata``: the prompt count includes cached content; candidates
    exclude thoughts, added to the output."""
    u = as_object(value)
    if u is None:
        return None
    prompt = as_count(u.get("promptTokenCount"))
    candidates = as_count(u.get("candidatesTokenCount"))
    thoughts = as_count(u.get("thoughtsTokenCount"))
    tool_prompt = as_count(u.get("toolUsePromptTokenCount"))
    if prompt is None and candidates is None and thoughts is None:
        return None
    return Usage((prompt or 0) + (tool_prompt or 0), (candidates or 0) + (thoughts or 0),
                 as_count(u.get("cachedContentTokenCount")), None, thoughts)


def from_bedrock(value: object) -> Usage | None:
    """Bedrock Converse ``usage`` (and ConverseStream's ``metadata`` event, Nova's
    InvokeModel body): ``inputTokens`` exclude cache reads and writes, added back."""
    return _cache_added(value, "inputTokens", "outputTokens", "cacheReadInputTokens",
                        "cacheWriteInputTokens")


def from_bedrock_metrics(value: object) -> Usage | None:
    """``amazon-bedrock-invocationMetrics``, which Bedrock adds to the last chunk of an
    InvokeModelWithResponseStream answer, for every model."""
    return _cache_added(value, "inputTokenCount", "outputTokenCount",
                        "cacheReadInputTokenCount", "cacheWriteInputTokenCount")


def _cache_added(value: object, given_key: str, made_key: str, read_key: str,
                 written_key: str) -> Usage | None:
    """Bedrock's counts, whose input excludes cache reads and writes: added back."""
    u = as_object(value)
    if u is None:
        return None
    given, made = as_count(u.get(given_key)), as_count(u.get(made_key))
    if given is None and made is None:
        return None
    read, written = as_count(u.get(read_key)), as_count(u.get(written_key))
    return Usage((given or 0) + (read or 0) + (written or 0), made or 0, read, written)


def from_bedrock_headers(headers: Mapping[str, str]) -> Usage | None:
    """InvokeModel's ``X-Amzn-Bedrock-*-Token-Count`` response headers."""
    def count(name: str) -> int | None:
        text = headers.get(f"x-amzn-bedrock-{name}-token-count", "")
        return int(text) if text.isdigit() and len(text) < 19 else None

    given, made = count("input"), count("output")
    if given is None and made is None:
        return None
    read, written = count("cache-read-input"), count("cache-write-input")
    return Usage((given or 0) + (read or 0) + (written or 0), made or 0, read, written)


def from_counts(prompt: object, output: object) -> Usage | None:
    """A prompt and an output count (Ollama's ``prompt_eval_count`` and ``eval_count``,
    Llama on Bedrock's ``prompt_token_count`` and ``generation_token_count``)."""
    given, made = as_count(prompt), as_count(output)
    if given is None and made is None:
        return None
    return Usage(given or 0, made or 0)

