"""What the analyzer says about one answer: ``AiResponse``.

The meter (``meter.ResponseMeter``) builds one when an answer's body ends. ``usage`` is
what the provider reported, normalized (``usage.Usage``), or ``None``: "usage unknown",
as for a streamed OpenAI answer not asked to include usage. ``output_tokens_estimate`` is
always there, estimated from the output text the answer carried, so a quota can charge
something when usage is unknown. ``status`` says whether the body was read to its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gatewayd.ai.request import ToolCall
from gatewayd.ai.usage import Usage


class ResponseStatus(StrEnum):
    """How far an answer could be read."""

    # Read to its end: a whole body parsed, or a stream up to its end marker.
    COMPLETE = "complete"
    # Ended early: inside a message, before the stream's end marker, or past
    # ``Bounds.max_decoded_bytes`` of decompressed body.
    TRUNCATED = "truncated"
    # Not the framing or JSON the API sends (the rest of it was not read).
    MALFORMED = "malformed"
    # An HTTP error status, or an error the provider reported inside the answer.
    ERROR = "error"
    # Compressed with an encoding the analyzer does not read (only gzip and deflate).
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class AiResponse:
    """One answer, as quotas and the audit record see it.

    ``tool_calls`` are the calls the model asks for (bounded summaries, as in requests);
    ``mcp_tools`` the tools a ``tools/list`` answer offered. ``error`` is the provider's
    error type or code, never its message. ``events`` counts streamed messages read.
    """

    status: ResponseStatus
    usage: Usage | None
    output_tokens_estimate: int
    model: str | None = None
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    mcp_tools: tuple[str, ...] = ()
    events: int = 0
    body_bytes: int = 0
    error: str | None = None
    detail: str | None = None

    @property
    def output_tokens(self) -> int:
        """Reported output tokens, or the estimate when usage is unknown."""
        return self.usage.output_tokens if self.usage else self.output_tokens_estimate

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": str(self.status),
            "usage": self.usage.as_dict() if self.usage else None,
            "output_tokens_estimate": self.output_tokens_estimate,
            "model": self.model, "finish_reason": self.finish_reason,
            "tool_calls": [call.as_dict() for call in self.tool_calls],
            "events": self.events, "body_bytes": self.body_bytes,
        }
        optional = {"mcp_tools": list(self.mcp_tools), "error": self.error,
                    "detail": self.detail}
        out.update({k: v for k, v in optional.items() if v not in (None, [])})
        return out
