"""The AI protocol analyzer as an L7 inspection: what a request asks of a model API, for
the policy and the record, and what its answer cost.

``AiStage.look`` hands a request whose body was read to ``gatewayd.ai.Analyzer``. Traffic
that is not an AI API's finds nothing. For an AI request, the findings carry the provider,
the model, the tools called and the prompt token estimate (what the policy's ``providers``,
``models``, ``tools`` and ``token_estimate`` conditions read), the analyzer's summary for
the record (``ai``: never the prompt's text, never a tool argument's value), the parsed
request (``details["ai"]``: what quotas reserve against) and a ``UsageWatch`` that meters
the answer as it streams back: the usage the provider reported (or an estimate when it
reported none) joins the record as ``ai_usage``.

The analyzer is pure and bounded in time and memory (``gatewayd.ai.Bounds``); this module
only adapts it to the engine's inspection and watch protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gatewayd.ai import AiRequest, AiResponse, Analyzer, ResponseMeter
from gatewayd.l7.inspection import NOTHING, Findings, Headers
from gatewayd.l7.target import Target


class UsageWatch:
    """Meters one AI answer as it streams to the client."""

    __slots__ = ("_analyzer", "_meter", "answer", "request")

    def __init__(self, analyzer: Analyzer, request: AiRequest) -> None:
        self._analyzer = analyzer
        self.request = request
        self._meter: ResponseMeter | None = None
        self.answer: AiResponse | None = None  # once the answer ended

    def head(self, status: int, headers: Headers) -> None:
        self._meter = self._analyzer.response(self.request, status, headers)

    def feed(self, data: bytes) -> None:
        if self._meter is not None:
            self._meter.feed(data)

    def end(self, status: int | None, complete: bool) -> Mapping[str, Any]:
        if self._meter is None:
            return {"ai_usage": None}  # no answer came
        answer = self.answer = self._meter.close()
        said = answer.as_dict()
        if not complete:
            said["cut_short"] = True
        return {"ai_usage": said}


def ai_of(found: Findings) -> tuple[AiRequest, AiResponse | None] | None:
    """The AI request the findings carry, and its answer once it ended (``None`` for a
    request that is not an AI API's)."""
    ai = found.details.get("ai")
    if not isinstance(ai, AiRequest):
        return None
    for watch in found.watches:
        if isinstance(watch, UsageWatch):
            return ai, watch.answer
    return ai, None


class AiStage:
    """The inspection that recognizes AI API requests (``docs/ai.md``)."""

    name = "ai"

    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer or Analyzer()

    def preload(self) -> None:
        """Load the tokenizer's data now (at start-up), not on the first request."""
        self.analyzer.preload()

    def look(self, method: str, target: Target, headers: Headers, body: bytes,
             whole: bool) -> Findings:
        ai = self.analyzer.request(method, target.host, target.upstream, headers, body,
                                   complete=whole)
        if ai is None:
            return NOTHING
        return Findings(
            provider=str(ai.provider),
            model=ai.model,
            tools=ai.tools_called,
            token_estimate=ai.prompt_tokens_estimate,
            record={"ai": ai.as_dict()},
            details={"ai": ai},
            watches=(UsageWatch(self.analyzer, ai),),
        )
