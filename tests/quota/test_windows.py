from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.quota.windows import (
    ROLLING_SLOTS,
    Window,
    first_counted_slot,
    relief_at,
    slot_at,
    slot_leaves,
    slot_width,
    window_start,
)
from tests.quota.conftest import NOW

ROLLING = [Window.ROLLING_MINUTE, Window.ROLLING_HOUR, Window.ROLLING_DAY]
times = st.floats(min_value=1_500_000_000, max_value=2_500_000_000, allow_nan=False)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_slot_widths_are_a_sixtieth_of_the_window() -> None:
    assert [slot_width(w) for w in ROLLING] == [1, 60, 1440]
    assert all(slot_width(w) * ROLLING_SLOTS == w.length for w in ROLLING)


def test_calendar_day_is_the_utc_day() -> None:
    now = ts("2027-01-15T23:59:59")
    assert slot_at(Window.CALENDAR_DAY, now) == ts("2027-01-15T00:00:00")
    assert slot_leaves(Window.CALENDAR_DAY, slot_at(Window.CALENDAR_DAY, now)) == ts(
        "2027-01-16T00:00:00")
    assert slot_at(Window.CALENDAR_DAY, now + 1) == ts("2027-01-16T00:00:00")


@pytest.mark.parametrize(("now", "start", "end"), [
    ("2027-01-15T08:00:00", "2027-01-01T00:00:00", "2027-02-01T00:00:00"),
    ("2027-12-31T23:59:59", "2027-12-01T00:00:00", "2028-01-01T00:00:00"),
    ("2028-02-29T12:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
])
def test_calendar_month_bounds(now: str, start: str, end: str) -> None:
    slot = slot_at(Window.CALENDAR_MONTH, ts(now))
    assert slot == ts(start)
    assert first_counted_slot(Window.CALENDAR_MONTH, ts(now)) == slot
    assert slot_leaves(Window.CALENDAR_MONTH, slot) == ts(end)
    assert window_start(Window.CALENDAR_MONTH, ts(now)) == ts(start)


@given(st.sampled_from(ROLLING), times, st.floats(min_value=0, max_value=3 * 86400))
def test_rolling_usage_counts_at_least_the_window_and_at_most_one_slot_more(
        window: Window, booked: float, age: float) -> None:
    """Booked at ``booked``, read at ``booked + age``: counted iff age < L, or L <= age <
    L + w possibly, never beyond."""
    slot = slot_at(window, booked)
    counted = slot >= first_counted_slot(window, booked + age)
    if age < window.length:
        assert counted
    if age >= window.length + slot_width(window):
        assert not counted
    # slot_leaves says the same as first_counted_slot
    assert counted == (booked + age < slot_leaves(window, slot))


@given(st.sampled_from(list(Window)), times)
def test_a_slot_is_counted_from_its_booking_until_it_leaves(window: Window, now: float) -> None:
    slot = slot_at(window, now)
    assert first_counted_slot(window, now) <= slot
    assert slot_leaves(window, slot) > now
    assert window_start(window, now) <= now


def test_relief_frees_the_oldest_slots_first() -> None:
    w = Window.ROLLING_MINUTE
    now = NOW + 0.5
    first = first_counted_slot(w, now)
    slots = [(first - 1, 100), (first, 3), (first + 10, 4), (first + 30, 5)]  # one stale
    assert relief_at(w, slots, now, 0) == now
    assert relief_at(w, slots, now, 3) == slot_leaves(w, first)
    assert relief_at(w, slots, now, 4) == slot_leaves(w, first + 10)
    assert relief_at(w, slots, now, 12) == slot_leaves(w, first + 30)
    assert relief_at(w, slots, now, 13) is None  # stale usage does not count


def test_relief_of_a_calendar_window_is_its_end() -> None:
    w = Window.CALENDAR_DAY
    slot = slot_at(w, NOW)
    assert relief_at(w, [(slot, 10)], NOW, 5) == slot_leaves(w, slot)
    assert relief_at(w, [(slot, 10)], NOW, 11) is None


@given(st.sampled_from(ROLLING), times,
       st.lists(st.tuples(st.integers(-70, 0), st.integers(0, 1000)), max_size=20),
       st.integers(1, 5000))
def test_relief_makes_room(window: Window, now: float, rel: list[tuple[int, int]],
                           excess: int) -> None:
    """At the time ``relief_at`` names, at least ``excess`` has left; a moment before, not."""
    base = slot_at(window, now)
    slots: dict[int, int] = {}
    for offset, amount in rel:
        slots[base + offset] = slots.get(base + offset, 0) + amount

    def counted(at: float) -> int:
        return sum(a for s, a in slots.items() if s >= first_counted_slot(window, at))

    at = relief_at(window, slots.items(), now, excess)
    if at is None:
        assert counted(now) < excess
    else:
        assert counted(now) - counted(at) >= excess
        assert counted(now) - counted(at - 1e-3) < excess or at - 1e-3 < now
