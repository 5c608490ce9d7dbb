"""The one small interface quota backends implement, and the check they all make.

A *ledger* keeps three kinds of state per counter: usage booked per window slot, *holds*
(reservations of requests in flight, each with an expiry) and token buckets. Its two hot
calls are:

* ``reserve`` — atomically: read each line's counter, decide whether every line fits, and
  only if all do, hold each line's estimate under the reservation id (buckets: take it).
  A request either holds on all its quotas or on none. It may carry settlements of
  earlier requests, applied first in the same step: one transaction (one Redis round
  trip) per request instead of two.
* ``settle`` — book actual usage into the current slot, drop the reservation's holds, and
  give a bucket back what the estimate took too much (or take what it took too little).
  Each booking names the reservation whose hold it replaces, so one call can settle
  several reservations (a backlog booked after an outage) and a booking of nothing only
  drops a hold (one a timed-out call may have left on the server).

The values here are made on every request, so they are plain slotted dataclasses, not
frozen ones (a frozen dataclass pays a ``setattr`` per field); nothing mutates them.

What "fits" means is the pure ``line_fits`` below; the SQLite and in-memory ledgers call
it, the Redis ledger's Lua script repeats it (``redis_ledger``) and returns its answers,
which stay the authority. Holds past their expiry count for nothing: a request that never
completes stops holding budget after the reservation TTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gatewayd.errors import ClawgressError
from gatewayd.quota import bucket as buckets
from gatewayd.quota.bucket import Bucket
from gatewayd.quota.windows import Window


class LedgerUnavailable(ClawgressError):
    """The quota backend cannot be reached or refused the operation (disk, network)."""


@dataclass(slots=True)
class WindowLine:
    """Check and hold ``estimate`` on a windowed counter.

    ``cap`` is the most ``used + held + estimate`` may reach; ``None`` never refuses
    (soft-stop, alert-only, report mode). ``first_slot`` is the window's oldest counted
    slot at the time of the check.
    """

    counter: str
    window: Window
    estimate: int
    cap: int | None
    first_slot: int


@dataclass(slots=True)
class BucketLine:
    """Take ``estimate`` from a token bucket; refused only when ``enforce``."""

    counter: str
    bucket: Bucket
    estimate: int
    enforce: bool


Line = WindowLine | BucketLine


@dataclass(slots=True)
class WindowState:
    """A windowed counter as the check saw it: booked usage in the window, live holds,
    and the counted ``(slot, amount)`` pairs (filled where a line did not fit, and by
    ``read``) from which a ``Retry-After`` is worked out."""

    used: int
    held: int
    slots: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True)
class BucketState:
    """A bucket's level at the time of the check, before this request's take."""

    level: float


State = WindowState | BucketState


@dataclass(slots=True)
class Snapshot:
    """The answer to ``reserve``: whether the request holds, and each line's state."""

    admitted: bool
    fits: tuple[bool, ...]
    states: tuple[State, ...]


@dataclass(slots=True)
class Booking:
    """Book ``amount`` into ``slot`` (kept until ``keep_until``) and drop the hold of
    ``reservation`` (``""``: none) on ``counter``."""

    counter: str
    slot: int
    amount: int
    keep_until: float
    reservation: str = ""


@dataclass(slots=True)
class Refund:
    """Add ``tokens`` to a bucket (negative: take more), at most up to ``burst``; ``rate``
    tells when it is full again."""

    counter: str
    tokens: float
    burst: float
    rate: float


Settlement = Booking | Refund


def window_fits(used: int, held: int, estimate: int, cap: int | None) -> bool:
    return cap is None or used + held + estimate <= cap


def line_fits(line: Line, state: State) -> bool:
    """Whether ``line`` may hold against ``state`` (the check every ledger makes)."""
    if isinstance(line, WindowLine):
        assert isinstance(state, WindowState)
        return window_fits(state.used, state.held, line.estimate, line.cap)
    assert isinstance(state, BucketState)
    return not line.enforce or buckets.fits(state.level, line.estimate, line.bucket)


class Ledger(Protocol):
    """A quota backend. Calls raise ``LedgerUnavailable`` when the backend fails; one
    instance is used by one thread at a time."""

    @property
    def name(self) -> str:
        """What the backend is, for messages (``sqlite /var/lib/...``)."""
        ...

    def reserve(self, reservation: str, lines: Sequence[Line], now: float,
                hold_until: float, settle: Sequence[Settlement] = ()) -> Snapshot:
        """Apply ``settle`` (as ``settle`` would), then check every line and, only if all
        fit, hold them: one atomic step (see the module docstring)."""
        ...

    def settle(self, entries: Sequence[Settlement], now: float) -> None:
        """Book usage, drop the holds the bookings name, adjust buckets."""
        ...

    def read(self, lines: Sequence[Line], now: float) -> tuple[State, ...]:
        """Each line's state without holding anything (``slots`` filled)."""
        ...

    def counters(self) -> set[str]:
        """Every counter that has state (usage, holds or a bucket)."""
        ...

    def reset(self, counters: Iterable[str]) -> int:
        """Forget all state of ``counters``; how many had any."""
        ...

    def close(self) -> None: ...
