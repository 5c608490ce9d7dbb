"""What a request consumes, and how much of it each metric counts.

The L7 engine describes a request twice: before it goes upstream (the *estimate*: the
analyzer's token count of the prompt, ``max_tokens`` or a default for the completion, the
body's size) and when its response is done (the *actual* figures: the usage the provider
reported, the bytes the engine sent). Both are ``Consumption`` values; ``amount`` turns one
into the integer a quota of a given metric books. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatewayd.quota.documents import Metric
from gatewayd.quota.prices import PriceLookup, cost_micro_usd


@dataclass(frozen=True, slots=True)
class Consumption:
    """One request's figures. ``model`` is ``None`` for a request that is not an AI call:
    token and cost quotas do not apply to it."""

    requests: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    bytes_out: int = 0
    connections: int = 0
    model: str | None = None

    def __post_init__(self) -> None:
        for name in ("requests", "input_tokens", "output_tokens", "bytes_out", "connections"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class UnpricedModel(LookupError):
    """A cost quota applies to a call whose model the price table does not list."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model


def applies(metric: Metric, usage: Consumption) -> bool:
    """Whether a quota counting ``metric`` counts this request at all."""
    return not metric.ai_only or usage.model is not None


def amount(metric: Metric, usage: Consumption, prices: PriceLookup, *,
           estimate: bool = False) -> int:
    """What ``usage`` books on a quota of ``metric`` (cost: micro-dollars).

    With ``estimate``, an AI call counts at least one token: a budget that is used up
    refuses calls whose estimate is missing instead of letting them through as free.
    Raises ``UnpricedModel`` for a cost the price table cannot say.
    """
    if metric is Metric.REQUESTS:
        return usage.requests
    if metric is Metric.BYTES_OUT:
        return usage.bytes_out
    if metric is Metric.NEW_CONNECTIONS:
        return usage.connections
    if usage.model is None:
        return 0
    floor = 1 if estimate else 0
    if metric is Metric.INPUT_TOKENS:
        return max(floor, usage.input_tokens)
    if metric is Metric.OUTPUT_TOKENS:
        return max(floor, usage.output_tokens)
    if metric is Metric.TOTAL_TOKENS:
        return max(floor, usage.total_tokens)
    price = prices.rates_for(usage.model)
    if price is None:
        raise UnpricedModel(usage.model)
    tokens_in = usage.input_tokens
    if estimate and usage.total_tokens == 0:
        tokens_in = 1
    return cost_micro_usd(tokens_in, usage.output_tokens, price)
