from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gatewayd.quota.prices import (
    ModelPrice,
    PriceLookup,
    PriceTable,
    cost_micro_usd,
    micro_to_usd,
    usd_to_micro,
)
from tests.quota.conftest import PRICES


def test_first_matching_entry_prices_a_model() -> None:
    mini = PRICES.price_for("gpt-4o-mini-2024-07-18")
    assert mini is not None and mini.input_per_million == Decimal("0.15")
    full = PRICES.price_for("GPT-4o-2024-08-06")  # case does not matter
    assert full is not None and full.output_per_million == Decimal("10.00")
    assert PRICES.price_for("claude-3-opus") is None


def test_cost_is_exact_micro_dollars_rounded_up() -> None:
    price = PRICES.price_for("gpt-4o")
    assert price is not None
    # 1M input tokens at $2.50 and 1M output at $10: $12.50
    assert cost_micro_usd(1_000_000, 1_000_000, price) == 12_500_000
    # 1000 input tokens: 2500 µUSD; 1 output token: 10 µUSD
    assert cost_micro_usd(1000, 1, price) == 2510
    mini = PRICES.price_for("gpt-4o-mini")
    assert mini is not None
    assert cost_micro_usd(1, 0, mini) == 1  # 0.15 µUSD rounds up


@given(st.integers(0, 10**9), st.integers(0, 10**9),
       st.decimals(min_value=0, max_value=1000, places=6),
       st.decimals(min_value=0, max_value=1000, places=6))
def test_cost_matches_decimal_arithmetic(tokens_in: int, tokens_out: int, pin: Decimal,
                                         pout: Decimal) -> None:
    price = ModelPrice(model="m", input_per_million=pin, output_per_million=pout)
    exact = (tokens_in * pin + tokens_out * pout)  # µUSD: USD per million tokens = µUSD/token
    got = cost_micro_usd(tokens_in, tokens_out, price)
    assert got - 1 < exact <= got


def test_prices_are_validated() -> None:
    with pytest.raises(ValidationError, match="decimal places"):
        ModelPrice(model="m", input_per_million=Decimal("0.0000001"), output_per_million=Decimal(0))
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        ModelPrice(model="m", input_per_million=Decimal(-1), output_per_million=Decimal(0))
    with pytest.raises(ValidationError, match="pattern"):
        ModelPrice(model="gpt 4", input_per_million=Decimal(1), output_per_million=Decimal(1))
    with pytest.raises(ValidationError, match="Extra inputs"):
        PriceTable.model_validate([{"model": "m", "input_per_million": 1,
                                    "output_per_million": 1, "currency": "EUR"}])


def test_lookup_memo_answers_as_the_table() -> None:
    lookup = PriceLookup(PRICES, memo_size=2)
    for name in ("gpt-4o", "gpt-4o-mini", "other", "gpt-4o", "other"):
        price = PRICES.price_for(name)
        rates = lookup.rates_for(name)
        assert rates == (None if price is None else (price.input_pico_per_token,
                                                     price.output_pico_per_token))
    assert cost_micro_usd(1000, 1, (2_500_000, 10_000_000)) == 2510


def test_usd_conversions() -> None:
    assert usd_to_micro(Decimal("12.345678")) == 12_345_678
    assert micro_to_usd(12_345_678) == Decimal("12.345678")
