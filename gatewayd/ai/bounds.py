"""The analyzer's bounds: every size, count and budget it holds to, named in one place.

A request body and a response stream are written by a remote peer (an agent, a model
server); nothing they contain may make the analyzer use unbounded memory or time. Each
limit below has a constant (the default) and a field of ``Bounds``, which an ``Analyzer``
takes whole. What happens when a bound is met is stated next to it and in ``docs/ai.md``;
no bound raises an error: the value is classified or estimated instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# Prompt text encoded with the tokenizer exactly; above it, evenly spaced windows of this
# many characters in all are encoded and the rest extrapolated (``tokens``).
DEFAULT_EXACT_TOKEN_CHARS = 64 * 1024
# How many windows the sample above is taken in.
DEFAULT_TOKEN_WINDOWS = 16
# Request bodies larger than this (after decompression) are not parsed: their token
# estimate comes from their size (status ``oversize``).
DEFAULT_MAX_PARSE_BYTES = 16 * 1024 * 1024
# Messages (contents, inputs, JSON-RPC batch entries) read per request; beyond it the
# newest are read and the estimate is scaled by count.
DEFAULT_MAX_ITEMS = 4096
# Tool names kept per request (declared) and tool calls kept per request or response.
DEFAULT_MAX_TOOLS = 512
DEFAULT_MAX_TOOL_CALLS = 128
# A tool call's arguments read to summarize them (larger: summarized by size only).
DEFAULT_MAX_ARGUMENT_BYTES = 64 * 1024
# Length of one arguments summary, and of a model or tool name kept.
DEFAULT_SUMMARY_CHARS = 256
DEFAULT_MAX_NAME_CHARS = 256
# A whole (non-streamed) JSON response is parsed up to this; beyond it only its first
# and last ``DEFAULT_EDGE_BYTES`` are kept, where model and usage are.
DEFAULT_MAX_JSON_BODY_BYTES = 4 * 1024 * 1024
# One streamed event (an SSE event, an event-stream message, an NDJSON line, an element
# of a streamed JSON array); beyond it, as for a large body, only its edges are kept.
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
DEFAULT_EDGE_BYTES = 64 * 1024
# Output text kept to estimate output tokens when a response reports no usage.
DEFAULT_OUTPUT_SAMPLE_CHARS = 16 * 1024
# Decompressed bytes read from a gzip or deflate body before metering stops.
DEFAULT_MAX_DECODED_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Bounds:
    """The analyzer's limits (see the module constants for what each one bounds)."""

    exact_token_chars: int = DEFAULT_EXACT_TOKEN_CHARS
    token_windows: int = DEFAULT_TOKEN_WINDOWS
    max_parse_bytes: int = DEFAULT_MAX_PARSE_BYTES
    max_items: int = DEFAULT_MAX_ITEMS
    max_tools: int = DEFAULT_MAX_TOOLS
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS
    max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES
    summary_chars: int = DEFAULT_SUMMARY_CHARS
    max_name_chars: int = DEFAULT_MAX_NAME_CHARS
    max_json_body_bytes: int = DEFAULT_MAX_JSON_BODY_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    edge_bytes: int = DEFAULT_EDGE_BYTES
    output_sample_chars: int = DEFAULT_OUTPUT_SAMPLE_CHARS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES

    def __post_init__(self) -> None:
        if self.token_windows < 1 or self.exact_token_chars < self.token_windows:
            raise ValueError("exact_token_chars must hold at least one character per window")
        if self.max_event_bytes < 2 * self.edge_bytes or \
                self.max_json_body_bytes < 2 * self.edge_bytes:
            raise ValueError("an event or body bound must hold both edges")
        for name in ("max_items", "max_tools", "max_tool_calls", "summary_chars",
                     "max_name_chars", "edge_bytes", "max_argument_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
