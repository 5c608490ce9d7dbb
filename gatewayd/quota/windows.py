"""Quota windows: which counter slot a moment falls in, and when counted usage leaves.

Usage is booked into *slots*, integers a backend stores one counter under (a SQLite row, a
Redis hash field). Two families of windows:

* **Calendar** windows (``calendar-day``, ``calendar-month``, UTC): one slot per window,
  named by the window's start in unix seconds. Usage counts until the window ends, then
  all of it goes at once.
* **Rolling** windows (``rolling-minute``, ``-hour``, ``-day``) of length ``L`` are cut into
  ``ROLLING_SLOTS`` sub-buckets of width ``w = L / ROLLING_SLOTS`` (1 s, 1 min, 24 min);
  slot ``floor(t / w)``. At time ``t`` the window counts the current slot and the
  ``ROLLING_SLOTS`` before it, so usage booked at ``t0`` counts for at least ``L`` and at
  most ``L + w`` seconds. The approximation errs one way only: nothing younger than ``L``
  is ever forgotten; usage between ``L`` and ``L + w`` old may still be counted (at most
  one sub-bucket's worth, 1/60 of the window's length in time).

Pure: time is an argument.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum

ROLLING_SLOTS = 60
DAY = 86400


class Window(StrEnum):
    ROLLING_MINUTE = "rolling-minute"
    ROLLING_HOUR = "rolling-hour"
    ROLLING_DAY = "rolling-day"
    CALENDAR_DAY = "calendar-day"
    CALENDAR_MONTH = "calendar-month"

    @property
    def rolling(self) -> bool:
        return self in _ROLLING_LENGTH

    @property
    def length(self) -> int:
        """Seconds the window spans (a calendar month: 30 days, for rates only)."""
        if self is Window.CALENDAR_MONTH:
            return 30 * DAY
        if self is Window.CALENDAR_DAY:
            return DAY
        return _ROLLING_LENGTH[self]


_ROLLING_LENGTH = {
    Window.ROLLING_MINUTE: 60,
    Window.ROLLING_HOUR: 3600,
    Window.ROLLING_DAY: DAY,
}


# Seconds per sub-bucket of each rolling window (looked up on every request).
_WIDTH = {w: length // ROLLING_SLOTS for w, length in _ROLLING_LENGTH.items()}


def slot_width(window: Window) -> int:
    """Seconds per sub-bucket of a rolling window."""
    return _WIDTH[window]


@functools.lru_cache(maxsize=64)
def _month_of_day(day: int) -> tuple[int, int]:
    """The UTC month a day (days since the epoch) is in: its start and end, unix seconds."""
    dt = datetime.fromtimestamp(day * DAY, UTC)
    start = datetime(dt.year, dt.month, 1, tzinfo=UTC)
    end = (datetime(dt.year + 1, 1, 1, tzinfo=UTC) if dt.month == 12
           else datetime(dt.year, dt.month + 1, 1, tzinfo=UTC))
    return int(start.timestamp()), int(end.timestamp())


def slot_at(window: Window, now: float) -> int:
    """The slot usage booked at ``now`` goes into."""
    width = _WIDTH.get(window)
    if width is not None:
        return int(now // width)
    if window is Window.CALENDAR_DAY:
        return int(now // DAY) * DAY
    return _month_of_day(int(now // DAY))[0]


def first_counted_slot(window: Window, now: float) -> int:
    """The oldest slot the window counts at ``now``; slots below it are stale."""
    slot = slot_at(window, now)
    return slot - ROLLING_SLOTS if window in _WIDTH else slot


def slot_leaves(window: Window, slot: int) -> float:
    """When usage in ``slot`` stops counting (and its counter may be deleted)."""
    width = _WIDTH.get(window)
    if width is not None:
        return float((slot + ROLLING_SLOTS + 1) * width)
    if window is Window.CALENDAR_DAY:
        return float(slot + DAY)
    return float(_month_of_day(slot // DAY)[1])


def window_start(window: Window, now: float) -> float:
    """Where the window counting at ``now`` begins (rolling: its oldest sub-bucket)."""
    if window.rolling:
        return float(first_counted_slot(window, now) * slot_width(window))
    return float(slot_at(window, now))


def relief_at(window: Window, slots: Iterable[tuple[int, int]], now: float,
              excess: int) -> float | None:
    """The earliest time at which ``excess`` of the usage counted at ``now`` has left.

    ``slots`` are ``(slot, amount)`` pairs as a backend stores them (stale ones are
    ignored). ``None`` when the counted usage is smaller than ``excess``: waiting alone
    never makes that much room.
    """
    if excess <= 0:
        return now
    first = first_counted_slot(window, now)
    freed = 0
    for slot, amount in sorted(s for s in slots if s[0] >= first):
        freed += amount
        if freed >= excess:
            return slot_leaves(window, slot)
    return None
