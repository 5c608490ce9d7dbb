"""Audit events: what happened, to whom, and why — as plain values."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_counter = 0
_pid = os.getpid() & 0xFFFF  # kept, not asked for per event (getpid() is a system call)


def _forked() -> None:
    global _pid  # noqa: PLW0603 - the process's own
    _pid = os.getpid() & 0xFFFF


os.register_at_fork(after_in_child=_forked)


def new_event_id(now: float) -> str:
    """A sortable, unique id: milliseconds since the epoch, the pid, and a counter."""
    global _counter  # noqa: PLW0603 - one process-wide sequence
    _counter = (_counter + 1) & 0xFFFFFF
    return f"{int(now * 1000):013x}-{_pid:04x}-{_counter:06x}"


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def timestamp(ts: float) -> str:
    """``ts`` as ISO 8601 in UTC with microseconds (``2026-11-24T09:25:14.123456+00:00``),
    what ``datetime.isoformat(timespec="microseconds")`` writes; the date and time of the
    second are formatted once per second."""
    global _second  # noqa: PLW0603 - a one-entry cache
    # Rounded the way datetime.fromtimestamp rounds: the fraction, half to even.
    fraction, seconds = math.modf(ts)
    whole, frac = int(seconds), round(fraction * 1e6)
    if frac >= 1_000_000:
        whole, frac = whole + 1, frac - 1_000_000
    elif frac < 0:
        whole, frac = whole - 1, frac + 1_000_000
    cached = _second  # read once: another thread may replace it meanwhile
    if cached[0] != whole:
        cached = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        _second = cached
    return f"{cached[1]}.{frac:06d}+00:00"


@dataclass(frozen=True)
class AuditEvent:
    """One audit record. ``kind`` names what happened (``flow.verdict``, ``flow.ended``,
    ``ruleset.restored``, ``policy.loaded``, ...); ``fields`` carries the details."""

    kind: str
    ts: float
    fields: dict[str, Any] = field(default_factory=dict)
    event_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id or new_event_id(self.ts),
            "kind": self.kind,
            "ts": timestamp(self.ts),
            **self.fields,
        }

    @classmethod
    def now(cls, kind: str, **fields: Any) -> AuditEvent:
        """An event stamped with the current time (for the IO shell, not the core)."""
        ts = time.time()
        return cls(kind, ts, fields, new_event_id(ts))
