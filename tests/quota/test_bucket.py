from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.quota.bucket import Bucket, ceil_seconds, fits, level, refill_after, settle, take

rates = st.floats(min_value=0.01, max_value=10_000)
bursts = st.floats(min_value=1, max_value=1_000_000)
delays = st.floats(min_value=0, max_value=60)


def test_a_new_bucket_is_full_and_refills_up_to_its_burst() -> None:
    b = Bucket(rate=2.0, burst=10.0)
    assert level(None, 0.0, 100.0, b) == 10.0
    assert level(4.0, 100.0, 101.5, b) == 7.0
    assert level(4.0, 100.0, 1000.0, b) == 10.0
    assert level(4.0, 100.0, 90.0, b) == 4.0  # a clock that went back refills nothing


def test_take_now_later_or_never() -> None:
    b = Bucket(rate=1.0, burst=10.0, max_delay=2.0)
    assert take(10.0, 4.0, b) == take(10.0, 4.0, b)
    now = take(10.0, 4.0, b)
    assert (now.granted, now.delay, now.level_after) == (True, 0.0, 6.0)
    later = take(1.0, 2.5, b)  # short by 1.5 tokens = 1.5 s of refill, within 2 s
    assert later.granted and later.delay == pytest.approx(1.5)
    assert later.level_after == pytest.approx(-1.5)
    refused = take(1.0, 5.0, b)  # short by 4 s of refill: retry after 4 - 2 s
    assert not refused.granted and refused.retry_after == pytest.approx(2.0)
    assert refused.level_after == 1.0
    never = take(10.0, 12.5, b)  # more than burst + max_delay * rate
    assert not never.granted and never.retry_after is None


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        Bucket(rate=0.0, burst=1.0)


def test_settle_refunds_up_to_the_burst_and_charges_overruns() -> None:
    b = Bucket(rate=1.0, burst=10.0)
    assert settle(6.0, 4.0, 1.0, b) == 9.0
    assert settle(9.0, 4.0, 0.0, b) == 10.0
    assert settle(6.0, 4.0, 20.0, b) == -10.0


@given(st.floats(min_value=-100, max_value=1_000_000), st.floats(min_value=0, max_value=2e6),
       rates, bursts, delays)
def test_take_agrees_with_fits_and_keeps_its_bounds(current: float, amount: float,
                                                    rate: float, burst: float,
                                                    max_delay: float) -> None:
    b = Bucket(rate=rate, burst=burst, max_delay=max_delay)
    t = take(current, amount, b)
    assert t.granted == fits(current, amount, b)
    if t.granted:
        assert 0 <= t.delay <= max_delay + 1e-9
        assert t.level_after == current - amount
    else:
        assert t.level_after == current
        if t.retry_after is not None:
            # after waiting retry_after, the take is let through within its bound
            later = min(burst, current + t.retry_after * rate)
            assert later - amount >= b.floor - 1e-6 * max(1.0, amount)


@given(st.floats(min_value=-100, max_value=1000), rates, bursts)
def test_refill_after_fills_the_bucket(current: float, rate: float, burst: float) -> None:
    b = Bucket(rate=rate, burst=burst)
    current = min(current, burst)
    wait = refill_after(current, b)
    assert level(current, 0.0, wait, b) == pytest.approx(burst)


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [ceil_seconds(x) for x in (0.0, 0.2, 1.0, 1.01, 59.5)] == [1, 1, 1, 2, 60]
