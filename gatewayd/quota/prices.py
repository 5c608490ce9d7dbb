"""What a model call costs: the price table from the configuration, and cost arithmetic.

The table lists models (globs, matched case-insensitively against the model a request
names) with their prices in USD per million input and output tokens; the first entry that
matches wins, so specific names go before broad globs, and a last ``"*"`` entry prices
every other model. A model that no entry matches has no price: ``cost-usd`` quotas that
enforce refuse its requests, others alert (``docs/quota.md``).

Costs are whole micro-dollars (µUSD), the unit budgets are counted in, so that backends add
integers. A price given with at most 6 decimals per million tokens is an exact integer of
picodollars per token, so the arithmetic is exact; a request's cost is rounded up to the
next micro-dollar. Pure.
"""

from __future__ import annotations

import fnmatch
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

MICRO = 1_000_000
# Bound on the entries of the table and on one price (USD per million tokens).
MAX_PRICES = 10_000
MAX_PRICE = Decimal(1_000_000)

Price = Annotated[Decimal, Field(ge=0, le=MAX_PRICE, decimal_places=6)]


class ModelPrice(BaseModel):
    """One entry of the price table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(pattern=r"^[A-Za-z0-9*?\[\]._:/@+-]{1,200}$")
    input_per_million: Price
    output_per_million: Price

    @field_validator("model")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @property
    def input_pico_per_token(self) -> int:
        """Picodollars (1e-12 USD) per input token: exact for 6 decimals per million."""
        return int(self.input_per_million * MICRO)

    @property
    def output_pico_per_token(self) -> int:
        return int(self.output_per_million * MICRO)


class PriceTable(RootModel[tuple[ModelPrice, ...]]):
    """The configured prices, in order; the first matching entry prices a model."""

    model_config = ConfigDict(frozen=True)

    root: tuple[ModelPrice, ...] = Field(default=(), max_length=MAX_PRICES)

    def price_for(self, model: str) -> ModelPrice | None:
        """The entry that prices ``model``, or ``None``."""
        name = model.lower()
        for entry in self.root:
            if entry.model == name or fnmatch.fnmatchcase(name, entry.model):
                return entry
        return None


# A model's price as the arithmetic uses it: picodollars per input and per output token.
Rates = tuple[int, int]


class PriceLookup:
    """``PriceTable.price_for`` as integer rates, with a bounded memo: the data plane asks
    on every request."""

    def __init__(self, table: PriceTable, memo_size: int = 4096) -> None:
        self.table = table
        self._memo: dict[str, Rates | None] = {}
        self._memo_size = memo_size

    def rates_for(self, model: str) -> Rates | None:
        try:
            return self._memo[model]
        except KeyError:
            pass
        price = self.table.price_for(model)
        found = (None if price is None
                 else (price.input_pico_per_token, price.output_pico_per_token))
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[model] = found
        return found


def cost_micro_usd(input_tokens: int, output_tokens: int, price: ModelPrice | Rates) -> int:
    """The cost of a call in whole micro-dollars, rounded up."""
    rin, rout = (price if isinstance(price, tuple)
                 else (price.input_pico_per_token, price.output_pico_per_token))
    return -(-(input_tokens * rin + output_tokens * rout) // MICRO)


def usd_to_micro(usd: Decimal) -> int:
    """A limit in USD (at most 6 decimals) as micro-dollars."""
    return int(usd * MICRO)


def micro_to_usd(micro: int) -> Decimal:
    return (Decimal(micro) / MICRO).quantize(Decimal("0.000001"))
