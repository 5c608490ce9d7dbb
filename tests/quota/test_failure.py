"""The engine's failure policy with a backend that fails on demand (a fake; the outage
tests in ``test_redis_ledger`` stop a real server)."""

from __future__ import annotations

import pytest

from gatewayd.quota import Consumption, Effect, MemoryLedger, QuotaEngine, usage_rows
from gatewayd.quota.settings import FailurePolicy
from tests.quota.conftest import AGENT, NOW, plan_of, quota
from tests.quota.ledgers import Switchable

PLAIN = Consumption()
PLAN = plan_of(quota("req", limit=5, window="calendar-day"))


def engine(policy: FailurePolicy, max_backlog: int = 100_000) -> tuple[QuotaEngine, Switchable]:
    backend = Switchable(MemoryLedger())
    return QuotaEngine(PLAN, backend, on_failure=policy, probe_interval_s=1.0,
                       max_backlog=max_backlog), backend


def booked(backend: Switchable) -> int:
    row, = usage_rows(PLAN, backend.inner, NOW, who=AGENT)
    return row.used


def test_soft_fail_counts_locally_flags_and_books_when_back() -> None:
    eng, backend = engine("soft-fail")
    eng.reconcile(eng.reserve(AGENT, PLAIN, NOW), PLAIN, NOW)
    backend.down = True
    during = [eng.reserve(AGENT, PLAIN, NOW + 0.1 * i) for i in range(6)]
    # the local count enforces the limit on what this gateway saw since the outage
    assert [a.admitted for a in during] == [True] * 5 + [False]
    assert all(a.decision.degraded for a in during)
    assert during[0].decision.flags == ("quota-degraded",)
    assert "quota backend switchable unavailable since" in during[0].decision.alerts[0]
    calls = backend.calls
    for a in during[:5]:
        eng.reconcile(a, PLAIN, NOW + 0.5)
    assert backend.calls == calls  # not retried before the probe interval
    # 5 bookings, and the hold the failed call may have left on the backend
    assert eng.health()["state"] == "degraded" and eng.health()["backlog"] == 6
    events = eng.drain_events()
    assert [e.kind for e in events] == ["degraded"]
    assert "soft-fail: requests are counted locally" in events[0].detail
    backend.down = False
    back = eng.reserve(AGENT, PLAIN, NOW + 2)
    # what was counted locally is booked first: the budget is used up everywhere now
    assert not back.admitted and not back.decision.degraded
    assert back.decision.quota_id == "req"
    assert [e.kind for e in eng.drain_events()] == ["recovered"]
    assert booked(backend) == 6 and eng.health()["backlog"] == 0


def test_hard_fail_refuses_with_503_until_the_backend_is_back() -> None:
    eng, backend = engine("hard-fail")
    backend.down = True
    refused = eng.reserve(AGENT, PLAIN, NOW)
    assert not refused.admitted and refused.decision.status == 503
    assert refused.decision.kind == "quota-unavailable"
    assert "hard-fail" in refused.decision.reason
    backend.down = False
    assert not eng.reserve(AGENT, PLAIN, NOW + 0.5).admitted  # before the next probe
    assert eng.reserve(AGENT, PLAIN, NOW + 1.0).admitted


def test_usage_of_requests_reserved_before_the_outage_is_not_lost() -> None:
    eng, backend = engine("hard-fail")
    adm = eng.reserve(AGENT, PLAIN, NOW)
    backend.down = True
    eng.reconcile(adm, PLAIN, NOW + 1)
    assert eng.health()["backlog"] == 1
    backend.down = False
    eng.reserve(AGENT, PLAIN, NOW + 5)
    assert booked(backend) == 1


def test_the_backlog_is_bounded_and_drops_are_reported() -> None:
    eng, backend = engine("soft-fail", max_backlog=3)
    eng.use_plan(plan_of(quota("req", limit=100, window="calendar-day")))
    backend.down = True
    for i in range(5):
        eng.reconcile(eng.reserve(AGENT, PLAIN, NOW + i / 10), PLAIN, NOW + i / 10)
    health = eng.health()
    assert (health["backlog"], health["backlog_dropped"]) == (3, 3)
    kinds = [e.kind for e in eng.drain_events()]
    assert kinds == ["degraded", "backlog-dropped"]


def test_no_quota_no_backend_call() -> None:
    eng, backend = engine("hard-fail")
    eng.use_plan(plan_of())
    backend.down = True
    adm = eng.reserve(AGENT, PLAIN, NOW)
    assert adm.admitted and adm.decision.effect is Effect.ALLOW and backend.calls == 0
    eng.reconcile(adm, PLAIN, NOW)


@pytest.mark.parametrize("policy", ["soft-fail", "hard-fail"])
def test_settling_a_locally_held_request_after_recovery_books_it(policy: FailurePolicy) -> None:
    eng, backend = engine(policy)
    backend.down = True
    adm = eng.reserve(AGENT, PLAIN, NOW)
    assert adm.admitted == (policy == "soft-fail")
    backend.down = False
    eng.reserve(AGENT, PLAIN, NOW + 2)  # the backend answers again
    eng.reconcile(adm, PLAIN, NOW + 3)
    assert booked(backend) == (1 if policy == "soft-fail" else 0)
