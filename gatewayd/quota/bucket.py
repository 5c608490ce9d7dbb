"""Token-bucket arithmetic for ``throttle`` quotas.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second (a quota's
limit over its window's length). A request takes its estimate. When the bucket holds
enough, it goes at once; when it is short by at most ``max_delay`` seconds of refill, it
goes after that delay and leaves the bucket in debt (the level may go below zero, down to
``-max_delay * rate``), so later requests wait their turn; otherwise it is refused with
the time after which it would be let through. Reconciling adds the difference between the
estimate and the actual amount back (refund, capped at ``burst``) or takes it (more debt).

Pure: the level, the time and the amounts are arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket's shape: tokens a second, capacity, and the longest a request may wait."""

    rate: float
    burst: float
    max_delay: float = 0.0

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst > 0 and self.max_delay >= 0):
            raise ValueError("a bucket needs rate > 0, burst > 0 and max_delay >= 0")

    @property
    def floor(self) -> float:
        """The lowest level a take may leave (debt of at most ``max_delay`` of refill)."""
        return -self.max_delay * self.rate


@dataclass(frozen=True, slots=True)
class Take:
    """What taking ``amount`` does: let through now, after ``delay``, or not before
    ``retry_after`` seconds (``None``: never, the amount is larger than the bucket)."""

    granted: bool
    delay: float
    retry_after: float | None
    level_after: float


def level(tokens: float | None, stamp: float, now: float, bucket: Bucket) -> float:
    """Tokens in the bucket at ``now``; ``tokens`` ``None`` is a bucket never used (full).

    A clock that went back refills nothing.
    """
    if tokens is None:
        return bucket.burst
    return min(bucket.burst, tokens + max(0.0, now - stamp) * bucket.rate)


def fits(current: float, amount: float, bucket: Bucket) -> bool:
    """Whether ``amount`` may be taken from a bucket at level ``current``."""
    return current - amount >= bucket.floor


def take(current: float, amount: float, bucket: Bucket) -> Take:
    """Take ``amount`` from a bucket at level ``current`` (see the module docstring)."""
    after = current - amount
    if after >= 0:
        return Take(True, 0.0, None, after)
    if after >= bucket.floor:
        return Take(True, -after / bucket.rate, None, after)
    if amount > bucket.burst - bucket.floor:
        return Take(False, 0.0, None, current)
    wait = (amount - current) / bucket.rate - bucket.max_delay
    return Take(False, 0.0, max(wait, 0.0), current)


def refill_after(current: float, bucket: Bucket) -> float:
    """Seconds until a bucket at level ``current`` is full again."""
    return max(0.0, (bucket.burst - current) / bucket.rate)


def settle(current: float, estimate: float, actual: float, bucket: Bucket) -> float:
    """The level after a request that took ``estimate`` turned out to use ``actual``."""
    return min(bucket.burst, current + estimate - actual)


def ceil_seconds(seconds: float) -> int:
    """Whole seconds for a ``Retry-After`` header: rounded up, at least 1."""
    return max(1, math.ceil(seconds - 1e-9))
