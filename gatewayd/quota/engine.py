"""Reserve before upstream, reconcile after: the quota stage of the request pipeline.

``QuotaEngine.reserve`` is called once a request's identity and policy decision are known
and its estimate is made. It finds the quotas that apply, turns the estimate into one line
per quota, and asks the ledger to check and hold them all in one atomic step; the outcome
of each quota is combined into one ``QuotaDecision`` (see ``decision``). An admitted
request carries an ``Admission``; when its response is done, ``reconcile`` books the actual
usage (a stream that overran its estimate is booked in full) and drops the holds;
``release`` drops them for a request that never went upstream. A request that does neither
stops holding budget when its reservation expires (``hold_ttl_s``).

Settling can wait a little (``settle_delay_s``): settlements then ride on the engine's next
reserve (one transaction, one Redis round trip per request instead of two), or go on their
own once the oldest has waited that long (checked on every call) or on ``flush``, which the
caller runs on a timer of that period and at shutdown (``close``). While a settlement
waits, its request still holds its estimate, so the check stays conservative; only an
overrun is seen that much later.

Because check and hold are one atomic step, concurrent requests cannot together hold more
than a hard limit: the budget is overshot only by what requests use beyond their estimates.

The backend may fail. The engine then applies its failure policy (``soft-fail``: count in
a local ``MemoryLedger`` and flag every decision ``quota-degraded``; ``hard-fail``: refuse
with 503), tries the backend again at most every ``probe_interval_s``, and once it answers
books there what was counted locally. Transitions are kept as ``BackendEvent`` values for
the audit log (``drain_events``). Nothing here reads a clock: ``now`` is an argument. One
engine serves one thread.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from gatewayd.quota.consumption import Consumption, UnpricedModel, amount, applies
from gatewayd.quota.decision import (
    NO_QUOTA,
    Effect,
    Outcome,
    QuotaDecision,
    bucket_outcome,
    combine,
    iso,
    unavailable,
    unpriced_outcome,
    window_outcome,
)
from gatewayd.quota.documents import Mode
from gatewayd.quota.ledger import (
    Booking,
    BucketLine,
    BucketState,
    Ledger,
    LedgerUnavailable,
    Line,
    Refund,
    Settlement,
    Snapshot,
    WindowLine,
    WindowState,
)
from gatewayd.quota.memory_ledger import MemoryLedger
from gatewayd.quota.plan import Applied, QuotaPlan, Who
from gatewayd.quota.prices import PriceLookup, PriceTable
from gatewayd.quota.settings import FailurePolicy
from gatewayd.quota.windows import first_counted_slot, slot_at, slot_leaves

Where = Literal["primary", "local", "none"]
# Backlog entries booked to the backend per call when it is back.
REPLAY_CHUNK = 500
# Settlements that wait for the next reserve at most; more are sent at once.
MAX_PENDING = 256


def new_reservation_id() -> str:
    return secrets.token_hex(8)


@dataclass(slots=True)
class Admission:
    """A request's reservation: the decision, and what to settle when it is done.

    ``where`` says which ledger holds it (``none``: nothing is held: no quota applied, or
    the request was refused).
    """

    decision: QuotaDecision
    reservation: str
    applied: tuple[Applied, ...]
    lines: tuple[Line, ...]
    estimate: Consumption
    where: Where
    settled: bool = False

    @property
    def admitted(self) -> bool:
        return self.decision.admitted


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """A change in the backend's health: ``degraded``, ``recovered``, ``backlog-dropped``."""

    kind: str
    at: float
    backend: str
    detail: str


def line_for(applied: Applied, estimate: int, now: float) -> Line:
    """The ledger line of one quota for a request estimated at ``estimate`` units."""
    q = applied.quota
    if q.bucket is not None:
        return BucketLine(applied.counter, q.bucket, estimate, q.enforce)
    cap = q.limit if q.mode is Mode.HARD_STOP and q.enforce else None
    return WindowLine(applied.counter, q.window, estimate, cap, first_counted_slot(q.window, now))


def outcome_for(applied: Applied, line: Line, state: WindowState | BucketState, fits: bool,
                now: float) -> Outcome:
    if isinstance(line, WindowLine):
        assert isinstance(state, WindowState)
        return window_outcome(applied, line, state, fits, now)
    assert isinstance(state, BucketState)
    return bucket_outcome(applied, line, state, fits, now)


def settlements(admission: Admission, actual: Consumption | None, prices: PriceLookup,
                now: float) -> list[Settlement]:
    """What settling ``admission`` books (``actual`` ``None``: it was released unused)."""
    if actual is not None and actual.model is None and admission.estimate.model is not None:
        actual = replace(actual, model=admission.estimate.model)
    out: list[Settlement] = []
    for applied, line in zip(admission.applied, admission.lines, strict=True):
        q = applied.quota
        used = 0
        if actual is not None and applies(q.metric, actual):
            try:
                used = amount(q.metric, actual, prices)
            except UnpricedModel:
                used = line.estimate  # the model changed to one without a price
        if isinstance(line, WindowLine):
            slot = slot_at(q.window, now)
            out.append(Booking(line.counter, slot, used, slot_leaves(q.window, slot),
                               admission.reservation))
        elif used != line.estimate:
            out.append(Refund(line.counter, float(line.estimate - used), line.bucket.burst,
                              line.bucket.rate))
    return out


class QuotaEngine:
    """The quota stage: plan, ledger, prices and failure policy (module docstring)."""

    def __init__(
        self,
        plan: QuotaPlan,
        ledger: Ledger,
        *,
        prices: PriceTable | None = None,
        hold_ttl_s: float = 600.0,
        on_failure: FailurePolicy = "soft-fail",
        probe_interval_s: float = 1.0,
        max_backlog: int = 100_000,
        settle_delay_s: float = 0.0,
        new_id: Callable[[], str] = new_reservation_id,
    ) -> None:
        self.plan = plan
        self.ledger = ledger
        self.local = MemoryLedger()
        self.prices = PriceLookup(prices if prices is not None else PriceTable())
        self.hold_ttl_s = hold_ttl_s
        self.on_failure: FailurePolicy = on_failure
        self.probe_interval_s = probe_interval_s
        self.max_backlog = max_backlog
        self._new_id = new_id
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._last_error = ""
        self._backlog: deque[Booking] = deque()
        self._dropped = 0
        self._events: list[BackendEvent] = []
        self.settle_delay_s = settle_delay_s
        self._pending: list[Settlement] = []
        self._pending_since = 0.0
        self._now = 0.0

    def use_plan(self, plan: QuotaPlan) -> None:
        """Enforce ``plan`` from now on (a new bundle). Admissions made under the old one
        settle what they reserved."""
        self.plan = plan

    # -- the two calls of the request pipeline ---------------------------------------

    def reserve(self, who: Who, estimate: Consumption, now: float, *,
                credential: str | None = None) -> Admission:
        """Check and hold ``estimate`` on every quota that applies (module docstring)."""
        applied_all = self.plan.applicable(who, credential)
        if not applied_all:
            return Admission(NO_QUOTA, "", (), (), estimate, "none")
        applied: list[Applied] = []
        lines: list[Line] = []
        early: list[Outcome] = []
        for a in applied_all:
            if not applies(a.quota.metric, estimate):
                continue
            try:
                est = amount(a.quota.metric, estimate, self.prices, estimate=True)
            except UnpricedModel as exc:
                early.append(unpriced_outcome(a, exc.model))
                continue
            applied.append(a)
            lines.append(line_for(a, est, now))
        if not lines or any(o.effect is Effect.DENY for o in early):
            return Admission(combine(early), "", (), (), estimate, "none")
        reservation = self._new_id()
        answer = self._reserve(reservation, lines, now)
        if answer is None:
            return Admission(unavailable(self._unavailable_reason()), "", (), (), estimate,
                             "none")
        snapshot, where = answer
        outcomes = [outcome_for(a, line, st, fit, now) for a, line, st, fit
                    in zip(applied, lines, snapshot.states, snapshot.fits, strict=True)]
        degraded = self._degraded_alert() if where == "local" else None
        decision = combine([*outcomes, *early], degraded=degraded)
        if not snapshot.admitted:
            return Admission(decision, "", (), (), estimate, "none")
        return Admission(decision, reservation, tuple(applied), tuple(lines), estimate, where)

    def reconcile(self, admission: Admission, actual: Consumption, now: float) -> None:
        """Book what the request actually used and drop its holds."""
        self._settle(admission, actual, now)

    def release(self, admission: Admission, now: float) -> None:
        """Drop the holds of a request that never reached the upstream; nothing is booked."""
        self._settle(admission, None, now)

    def flush(self, now: float) -> None:
        """Send the settlements that are waiting (see the module docstring)."""
        self._now = max(self._now, now)
        if self._pending:
            entries, self._pending = self._pending, []
            self._settle_primary(entries, now)

    # -- backend health ---------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    def health(self) -> dict[str, Any]:
        """The backend's state, for ``doctor`` and the metrics."""
        return {
            "backend": self.ledger.name,
            "state": "degraded" if self._down_since is not None else "up",
            "since": iso(self._down_since) if self._down_since is not None else None,
            "last_error": self._last_error or None,
            "on_backend_failure": self.on_failure,
            "pending": len(self._pending),
            "backlog": len(self._backlog),
            "backlog_dropped": self._dropped,
        }

    def drain_events(self) -> list[BackendEvent]:
        """Backend transitions since the last call, oldest first."""
        out, self._events = self._events, []
        return out

    def close(self) -> None:
        """Flush what waits, then close the backend."""
        self.flush(self._now)
        self.ledger.close()

    # -- internals ----------------------------------------------------------------------

    def _reserve(self, reservation: str, lines: Sequence[Line],
                 now: float) -> tuple[Snapshot, Where] | None:
        hold_until = now + self.hold_ttl_s
        self._now = max(self._now, now)
        if self._ready(now):
            carried, self._pending = self._pending, []
            try:
                snapshot = self.ledger.reserve(reservation, lines, now, hold_until, carried)
            except LedgerUnavailable as exc:
                self._went_down(now, exc)
                self._count_here(carried, now)
                # A call that timed out may still have run on the server: drop the holds
                # it may have left once the backend answers again.
                self._keep([Booking(line.counter, 0, 0, now, reservation) for line in lines
                            if isinstance(line, WindowLine)], now)
            else:
                self._came_up(now)
                return snapshot, "primary"
        if self.on_failure == "hard-fail":
            return None
        return self.local.reserve(reservation, lines, now, hold_until), "local"

    def _ready(self, now: float) -> bool:
        """Whether to ask the backend: it is up, or it is time to try it again (first by
        booking there what was counted here while it was down)."""
        if self._down_since is None:
            return not self._backlog or self._replay(now)
        return now >= self._next_probe and self._replay(now)

    def _settle(self, admission: Admission, actual: Consumption | None, now: float) -> None:
        if admission.settled:
            raise ValueError(f"reservation {admission.reservation} was already settled")
        admission.settled = True
        if admission.where == "none":
            return
        self._now = max(self._now, now)
        entries = settlements(admission, actual, self.prices, now)
        if admission.where == "local":
            self.local.settle(entries, now)
            # The backend never saw this reservation: book the usage there, no hold to drop.
            self._keep([replace(e, reservation="") if isinstance(e, Booking) else e
                        for e in entries], now)
            up = self._down_since is None
            if (up or now >= self._next_probe) and self._backlog and self._replay(now):
                self._came_up(now)
            return
        if self.settle_delay_s > 0 and self._down_since is None:
            if not self._pending:
                self._pending_since = now
            self._pending += entries
            if now - self._pending_since >= self.settle_delay_s \
                    or len(self._pending) >= MAX_PENDING:
                self.flush(now)
            return
        self._settle_primary(entries, now)

    def _settle_primary(self, entries: list[Settlement], now: float) -> None:
        if self._ready(now):
            try:
                self.ledger.settle(entries, now)
            except LedgerUnavailable as exc:
                self._went_down(now, exc)
            else:
                self._came_up(now)
                return
        self._count_here(entries, now)

    def _count_here(self, entries: Sequence[Settlement], now: float) -> None:
        """Settlements the backend did not take: counted here, and booked there once it
        answers again (dropping the reservations' holds then), whatever the policy. A call
        that timed out may have been applied after all: booking it again over-counts,
        never under-counts."""
        self.local.settle([replace(e, reservation="") if isinstance(e, Booking) else e
                           for e in entries], now)
        self._keep(entries, now)

    def _keep(self, entries: Sequence[Settlement], now: float) -> None:
        """Keep bookings for the backend (usage, holds to drop); bounded, drops counted."""
        for e in entries:
            if isinstance(e, Booking) and (e.amount or e.reservation):
                if len(self._backlog) >= self.max_backlog:
                    self._backlog.popleft()
                    self._dropped += 1
                    if self._dropped == 1 or self._dropped % 1000 == 0:
                        self._events.append(BackendEvent(
                            "backlog-dropped", now, self.ledger.name,
                            f"{self._dropped} bookings counted locally were dropped:"
                            f" more than quota.max_backlog ({self.max_backlog}) waited"))
                self._backlog.append(e)

    def _went_down(self, now: float, exc: LedgerUnavailable) -> None:
        self._last_error = str(exc)
        self._next_probe = now + self.probe_interval_s
        if self._down_since is None:
            self._down_since = now
            self._events.append(BackendEvent(
                "degraded", now, self.ledger.name,
                f"{exc}; {self.on_failure}: " + (
                    "requests are counted locally" if self.on_failure == "soft-fail"
                    else "requests are refused")))

    def _came_up(self, now: float) -> None:
        if self._down_since is None:
            return
        since = self._down_since
        self._down_since = None
        self.local.clear()
        self._events.append(BackendEvent(
            "recovered", now, self.ledger.name,
            f"back after {now - since:.1f}s; usage counted locally meanwhile is booked to it"))

    def _replay(self, now: float) -> bool:
        """Book the backlog to the backend; ``False`` (and down) if it fails."""
        while self._backlog:
            chunk = [self._backlog[i] for i in range(min(REPLAY_CHUNK, len(self._backlog)))]
            try:
                self.ledger.settle(chunk, now)
            except LedgerUnavailable as exc:
                self._went_down(now, exc)
                return False
            for _ in chunk:
                self._backlog.popleft()
        return True

    def _degraded_alert(self) -> str:
        return (f"quota backend {self.ledger.name} unavailable since"
                f" {iso(self._down_since or 0.0)} ({self._last_error}): counting in this"
                " gateway only (soft-fail)")

    def _unavailable_reason(self) -> str:
        return (f"quota backend {self.ledger.name} unavailable ({self._last_error}); requests"
                " subject to quotas are refused (quota.on_backend_failure: hard-fail)")
