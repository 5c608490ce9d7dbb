"""Ledgers for the tests: each backend by name, and one whose backend can be taken down."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from gatewayd.quota import Ledger, LedgerUnavailable, MemoryLedger, SqliteLedger
from gatewayd.quota.ledger import Line, Settlement, Snapshot, State
from gatewayd.quota.redis_ledger import RedisLedger

KINDS = ("memory", "sqlite", "redis")


def open_kind(kind: str, folder: Path, redis_url: str | None) -> Ledger:
    if kind == "memory":
        return MemoryLedger()
    if kind == "sqlite":
        return SqliteLedger.open(folder / "quota.db")
    assert redis_url is not None
    return RedisLedger.from_url(redis_url)


class Switchable:
    """A ledger whose backend is "down" while ``down`` is set (a fake, for the engine's
    failure handling; the real outage tests stop a Redis server)."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner
        self.down = False
        self.calls = 0

    @property
    def name(self) -> str:
        return "switchable"

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise LedgerUnavailable("quota backend switchable: down")

    def reserve(self, reservation: str, lines: Sequence[Line], now: float,
                hold_until: float, settle: Sequence[Settlement] = ()) -> Snapshot:
        self._check()
        return self.inner.reserve(reservation, lines, now, hold_until, settle)

    def settle(self, entries: Sequence[Settlement], now: float) -> None:
        self._check()
        self.inner.settle(entries, now)

    def read(self, lines: Sequence[Line], now: float) -> tuple[State, ...]:
        self._check()
        return self.inner.read(lines, now)

    def counters(self) -> set[str]:
        self._check()
        return self.inner.counters()

    def reset(self, counters: Iterable[str]) -> int:
        self._check()
        return self.inner.reset(counters)

    def close(self) -> None:
        self.inner.close()
