"""A ledger in the process's memory: where a gateway counts while its backend is down.

Used for ``soft-fail`` (the engine counts here until the real backend answers again, then
books what it counted there), and by tests as a reference. Thread-safe by one lock;
nothing survives the process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from gatewayd.quota import bucket as buckets
from gatewayd.quota.ledger import (
    Booking,
    BucketState,
    Line,
    Refund,
    Settlement,
    Snapshot,
    State,
    WindowLine,
    WindowState,
    line_fits,
)

# How often expired usage and holds are dropped (on a settle).
COLLECT_INTERVAL_S = 10.0


class MemoryLedger:
    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # counter -> slot -> (amount, keep_until)
        self._usage: dict[str, dict[int, tuple[int, float]]] = {}
        # counter -> reservation -> (amount, expires_at)
        self._holds: dict[str, dict[str, tuple[int, float]]] = {}
        # counter -> (tokens, stamp)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._next_collect = 0.0

    def _state(self, line: Line, now: float) -> State:
        if isinstance(line, WindowLine):
            slots = self._usage.get(line.counter, {})
            counted = tuple(sorted((s, a) for s, (a, _) in slots.items() if s >= line.first_slot))
            holds = self._holds.get(line.counter, {})
            held = sum(a for a, exp in holds.values() if exp > now)
            return WindowState(sum(a for _, a in counted), held, counted)
        found = self._buckets.get(line.counter)
        tokens, stamp = found if found is not None else (None, now)
        return BucketState(buckets.level(tokens, stamp, now, line.bucket))

    def reserve(self, reservation: str, lines: Sequence[Line], now: float,
                hold_until: float, settle: Sequence[Settlement] = ()) -> Snapshot:
        with self._lock:
            self._apply(settle, now)
            states = tuple(self._state(line, now) for line in lines)
            fits = tuple(line_fits(line, st) for line, st in zip(lines, states, strict=True))
            admitted = all(fits)
            # As the other ledgers: the slots only where a line did not fit.
            states = tuple(WindowState(st.used, st.held) if ok and isinstance(st, WindowState)
                           else st for st, ok in zip(states, fits, strict=True))
            if admitted:
                for line, st in zip(lines, states, strict=True):
                    if isinstance(line, WindowLine):
                        if line.estimate:
                            self._holds.setdefault(line.counter, {})[reservation] = (
                                line.estimate, hold_until)
                    else:
                        assert isinstance(st, BucketState)
                        self._buckets[line.counter] = (st.level - line.estimate, now)
            return Snapshot(admitted, fits, states)

    def settle(self, entries: Sequence[Settlement], now: float) -> None:
        with self._lock:
            self._apply(entries, now)

    def _apply(self, entries: Sequence[Settlement], now: float) -> None:
        for entry in entries:
            if isinstance(entry, Booking):
                if entry.reservation:
                    self._holds.get(entry.counter, {}).pop(entry.reservation, None)
                if entry.amount:
                    slots = self._usage.setdefault(entry.counter, {})
                    amount, _ = slots.get(entry.slot, (0, 0.0))
                    slots[entry.slot] = (amount + entry.amount, entry.keep_until)
            elif isinstance(entry, Refund):
                found = self._buckets.get(entry.counter)
                if found is not None:
                    tokens, stamp = found
                    self._buckets[entry.counter] = (
                        min(entry.burst, tokens + entry.tokens), stamp)
        if now >= self._next_collect:
            self._collect(now)
            self._next_collect = now + COLLECT_INTERVAL_S

    def _collect(self, now: float) -> None:
        for counter in list(self._usage):
            slots = {s: v for s, v in self._usage[counter].items() if v[1] > now}
            if slots:
                self._usage[counter] = slots
            else:
                del self._usage[counter]
        for counter in list(self._holds):
            holds = {r: v for r, v in self._holds[counter].items() if v[1] > now}
            if holds:
                self._holds[counter] = holds
            else:
                del self._holds[counter]

    def read(self, lines: Sequence[Line], now: float) -> tuple[State, ...]:
        with self._lock:
            return tuple(self._state(line, now) for line in lines)

    def counters(self) -> set[str]:
        with self._lock:
            return set(self._usage) | set(self._holds) | set(self._buckets)

    def reset(self, counters: Iterable[str]) -> int:
        n = 0
        with self._lock:
            for counter in counters:
                had = self._usage.pop(counter, None) is not None
                had = self._holds.pop(counter, None) is not None or had
                had = self._buckets.pop(counter, None) is not None or had
                n += had
        return n

    def clear(self) -> None:
        with self._lock:
            self._usage.clear()
            self._holds.clear()
            self._buckets.clear()

    def close(self) -> None:
        pass

