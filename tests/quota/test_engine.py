"""The engine on every backend: reserve, reconcile, release, expiry, several quotas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd.quota import Consumption, Effect, Ledger, QuotaEngine, QuotaPlan, usage_rows
from gatewayd.quota.engine import line_for
from gatewayd.quota.ledger import WindowState
from gatewayd.quota.windows import Window, slot_width
from tests.quota.conftest import AGENT, NOW, OTHER, PRICES, plan_of, quota
from tests.quota.ledgers import KINDS, open_kind
from tests.quota.redis_server import RedisServer

AI = Consumption(input_tokens=1000, output_tokens=500, model="gpt-4o")
PLAIN = Consumption()


@pytest.fixture(params=KINDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = request.getfixturevalue("redis_url")
        assert url == server.url
    opened = open_kind(request.param, tmp_path, url)
    yield opened
    opened.close()


def engine(ledger: Ledger, plan: QuotaPlan, hold_ttl_s: float = 600.0) -> QuotaEngine:
    ids = iter(range(1_000_000))
    return QuotaEngine(plan, ledger, prices=PRICES, hold_ttl_s=hold_ttl_s,
                       new_id=lambda: f"r{next(ids)}")


def used(ledger: Ledger, plan: QuotaPlan, now: float) -> dict[str, tuple[int, int]]:
    return {f"{r.quota.id}:{r.subject}": (r.used, r.held)
            for r in usage_rows(plan, ledger, now, who=AGENT)}


def test_reserve_holds_the_estimate_and_reconcile_books_the_actual(ledger: Ledger) -> None:
    plan = plan_of(quota("tokens", metric="total-tokens", limit=10_000))
    eng = engine(ledger, plan)
    adm = eng.reserve(AGENT, AI, NOW)
    assert adm.admitted and adm.where == "primary" and adm.decision.effect is Effect.ALLOW
    assert used(ledger, plan, NOW) == {"tokens:research": (0, 1500)}
    eng.reconcile(adm, Consumption(input_tokens=1000, output_tokens=20, model="gpt-4o"), NOW + 2)
    assert used(ledger, plan, NOW + 2) == {"tokens:research": (1020, 0)}
    with pytest.raises(ValueError, match="already settled"):
        eng.reconcile(adm, AI, NOW + 3)


def test_a_hard_budget_refuses_what_does_not_fit_and_holds_nothing(ledger: Ledger) -> None:
    plan = plan_of(quota("req", limit=3), quota("tokens", metric="total-tokens", limit=2000))
    eng = engine(ledger, plan)
    first = eng.reserve(AGENT, AI, NOW)
    second = eng.reserve(AGENT, AI, NOW)  # 1500 + 1500 > 2000 tokens
    assert first.admitted and not second.admitted
    assert second.decision.quota_id == "tokens" and second.decision.status == 429
    assert second.where == "none"
    # the refused request holds nothing on the requests quota either (all or nothing)
    assert used(ledger, plan, NOW) == {"req:research": (0, 1), "tokens:research": (0, 1500)}


def test_every_applying_quota_is_counted(ledger: Ledger) -> None:
    plan = plan_of(quota("team-req", limit=100), quota("agent-req", scope="agent", limit=100),
                   quota("cost", scope="agent", metric="cost-usd", window="calendar-month",
                         limit="5"),
                   quota("bytes", scope="project", metric="bytes-out", limit=10**6))
    eng = engine(ledger, plan)
    adm = eng.reserve(AGENT, Consumption(input_tokens=1000, output_tokens=100, model="gpt-4o",
                                         bytes_out=400), NOW)
    eng.reconcile(adm, Consumption(input_tokens=1000, output_tokens=300, model="gpt-4o",
                                   bytes_out=420), NOW + 1)
    assert used(ledger, plan, NOW + 1) == {
        "team-req:research": (1, 0), "agent-req:agent-1": (1, 0),
        "cost:agent-1": (5500, 0),  # 1000 × 2.5 + 300 × 10 µUSD
        "bytes:atlas": (420, 0),
    }


def test_an_overrunning_stream_is_booked_in_full(ledger: Ledger) -> None:
    plan = plan_of(quota("tokens", metric="output-tokens", limit=1000))
    eng = engine(ledger, plan)
    adm = eng.reserve(AGENT, Consumption(output_tokens=100, model="gpt-4o"), NOW)
    eng.reconcile(adm, Consumption(output_tokens=1700, model="gpt-4o"), NOW + 30)
    assert used(ledger, plan, NOW + 30)["tokens:research"] == (1700, 0)
    after = eng.reserve(AGENT, Consumption(output_tokens=1, model="gpt-4o"), NOW + 31)
    assert not after.admitted


def test_a_request_that_never_completes_stops_holding_at_expiry(ledger: Ledger) -> None:
    plan = plan_of(quota("req", limit=1, window="calendar-day"))
    eng = engine(ledger, plan, hold_ttl_s=60.0)
    lost = eng.reserve(AGENT, PLAIN, NOW)
    assert lost.admitted
    assert not eng.reserve(AGENT, PLAIN, NOW + 59).admitted
    late = eng.reserve(AGENT, PLAIN, NOW + 61)
    assert late.admitted
    # a reconcile that comes after all still books what was used
    eng.reconcile(lost, PLAIN, NOW + 62)
    eng.reconcile(late, PLAIN, NOW + 62)
    assert used(ledger, plan, NOW + 62)["req:research"] == (2, 0)


def test_release_books_nothing(ledger: Ledger) -> None:
    plan = plan_of(quota("req", limit=1))
    eng = engine(ledger, plan)
    adm = eng.reserve(AGENT, PLAIN, NOW)
    eng.release(adm, NOW + 1)
    assert used(ledger, plan, NOW + 1) == {"req:research": (0, 0)}
    assert eng.reserve(AGENT, PLAIN, NOW + 1).admitted


def test_a_rolling_window_forgets_after_its_length(ledger: Ledger) -> None:
    plan = plan_of(quota("req", limit=2, window="rolling-hour"))
    eng = engine(ledger, plan)
    for t in (NOW, NOW + 600):
        eng.reconcile(eng.reserve(AGENT, PLAIN, t), PLAIN, t)
    refused = eng.reserve(AGENT, PLAIN, NOW + 1200)
    assert not refused.admitted
    width = slot_width(Window.ROLLING_HOUR)
    # the first request leaves between 1 h and 1 h + one sub-bucket after it was booked
    retry = refused.decision.retry_after
    assert retry is not None and 3600 - 1200 <= retry <= 3600 + width - 1200 + 1
    assert eng.reserve(AGENT, PLAIN, NOW + 3600 + width).admitted


def test_token_and_cost_quotas_count_ai_calls_only(ledger: Ledger) -> None:
    plan = plan_of(quota("tokens", metric="total-tokens", limit=1),
                   quota("cost", metric="cost-usd", limit="0.000001"))
    eng = engine(ledger, plan)
    plain = eng.reserve(AGENT, PLAIN, NOW)
    assert plain.admitted and plain.where == "none" and plain.decision.outcomes == ()
    ai = eng.reserve(AGENT, AI, NOW)
    assert not ai.admitted


def test_an_unpriced_model_is_refused_by_a_cost_budget(ledger: Ledger) -> None:
    plan = plan_of(quota("cost", metric="cost-usd", limit=100), quota("req", limit=10))
    eng = engine(ledger, plan)
    adm = eng.reserve(AGENT, Consumption(input_tokens=5, model="mystery-1"), NOW)
    assert not adm.admitted and "no price" in adm.decision.reason
    assert used(ledger, plan, NOW)["req:research"] == (0, 0)  # nothing held


def test_soft_stop_lets_through_and_flags_the_agent(ledger: Ledger) -> None:
    plan = plan_of(quota("soft", scope="agent", limit=1, mode="soft-stop"))
    eng = engine(ledger, plan)
    eng.reconcile(eng.reserve(AGENT, PLAIN, NOW), PLAIN, NOW)
    over = eng.reserve(AGENT, PLAIN, NOW + 1)
    assert over.admitted and over.decision.flag_agent
    assert over.decision.flags == ("quota-soft-stop",)
    eng.reconcile(over, PLAIN, NOW + 1)
    assert used(ledger, plan, NOW + 1)["soft:agent-1"] == (2, 0)  # still counted
    assert not eng.reserve(OTHER, PLAIN, NOW + 1).decision.flag_agent


def test_throttle_delays_then_refuses(ledger: Ledger) -> None:
    plan = plan_of(quota("rate", scope="agent", mode="throttle", limit=60,
                         throttle={"burst": 2, "max_delay": 1}))
    eng = engine(ledger, plan)
    got = [eng.reserve(AGENT, PLAIN, NOW) for _ in range(4)]
    assert [a.decision.effect for a in got] == [Effect.ALLOW, Effect.ALLOW, Effect.DELAY,
                                               Effect.DENY]
    assert got[2].decision.delay == pytest.approx(1.0)
    assert got[3].decision.retry_after == 1
    assert eng.reserve(AGENT, PLAIN, NOW + 2.0).admitted


def test_a_new_plan_applies_to_new_requests(ledger: Ledger) -> None:
    eng = engine(ledger, plan_of(quota("req", limit=1)))
    adm = eng.reserve(AGENT, PLAIN, NOW)
    eng.use_plan(plan_of(quota("req", limit=5)))
    assert eng.reserve(AGENT, PLAIN, NOW).admitted
    eng.reconcile(adm, PLAIN, NOW)


def test_read_fills_the_slots(ledger: Ledger) -> None:
    plan = plan_of(quota("req", limit=10, window="rolling-minute"))
    eng = engine(ledger, plan)
    for dt in (0.0, 5.0, 5.5):
        eng.reconcile(eng.reserve(AGENT, PLAIN, NOW + dt), PLAIN, NOW + dt)
    applied, = plan.applicable(AGENT)
    state, = ledger.read([line_for(applied, 0, NOW + 6)], NOW + 6)
    assert state == WindowState(3, 0, ((int(NOW), 1), (int(NOW) + 5, 2)))


def test_settlements_wait_for_the_next_check_or_their_delay(ledger: Ledger) -> None:
    plan = plan_of(quota("req", limit=10, window="calendar-day"))
    eng = QuotaEngine(plan, ledger, settle_delay_s=0.05)
    eng.reconcile(eng.reserve(AGENT, PLAIN, NOW), PLAIN, NOW)
    assert used(ledger, plan, NOW) == {"req:research": (0, 1)}  # still held, not booked
    assert eng.health()["pending"] == 1
    second = eng.reserve(AGENT, PLAIN, NOW + 0.01)  # carries the first one's booking
    assert used(ledger, plan, NOW) == {"req:research": (1, 1)}
    assert eng.health()["pending"] == 0
    eng.reconcile(second, PLAIN, NOW + 0.02)
    third = eng.reserve(AGENT, PLAIN, NOW + 0.03)
    fourth = eng.reserve(AGENT, PLAIN, NOW + 0.031)
    eng.reconcile(third, PLAIN, NOW + 0.04)
    assert eng.health()["pending"] == 1
    eng.reconcile(fourth, PLAIN, NOW + 0.1)  # the oldest waited 60 ms: both sent now
    assert eng.health()["pending"] == 0
    assert used(ledger, plan, NOW + 0.1) == {"req:research": (4, 0)}
    fifth = eng.reserve(AGENT, PLAIN, NOW + 0.2)
    eng.reconcile(fifth, PLAIN, NOW + 0.2)
    eng.flush(NOW + 0.21)
    assert used(ledger, plan, NOW + 0.21) == {"req:research": (5, 0)}
