from __future__ import annotations

from gatewayd.quota.decision import (
    Effect,
    QuotaDecision,
    bucket_outcome,
    combine,
    unavailable,
    unpriced_outcome,
    window_outcome,
)
from gatewayd.quota.engine import line_for
from gatewayd.quota.ledger import BucketLine, BucketState, Line, WindowLine, WindowState
from gatewayd.quota.plan import Applied
from gatewayd.quota.windows import slot_at, slot_leaves
from tests.quota.conftest import AGENT, NOW, plan_of, quota


def one(**spec: object) -> tuple[Applied, Line]:
    applied, = plan_of(quota("q", **spec)).applicable(AGENT)
    return applied, line_for(applied, 3, NOW)


def one_window(**spec: object) -> tuple[Applied, WindowLine]:
    applied, line = one(**spec)
    assert isinstance(line, WindowLine)
    return applied, line


def test_hard_stop_refusal_names_the_quota_and_when_room_comes() -> None:
    applied, line = one_window(limit=10, window="calendar-day")
    assert line.cap == 10
    slot = slot_at(line.window, NOW)
    out = window_outcome(applied, line, WindowState(9, 0, ((slot, 9),)), False, NOW)
    assert out.effect is Effect.DENY and out.over
    assert out.retry_after == slot_leaves(line.window, slot) - NOW
    assert out.reason == ("quota q (team research): 9 requests of 10 requests used in the"
                          " calendar-day window; this request needs 3 requests; room again at"
                          " 2027-01-16T00:00:00Z")
    d = combine([out])
    assert (d.status, d.kind, d.quota_id, d.admitted) == (429, "quota-exceeded", "q", False)
    assert d.retry_after == 16 * 3600
    assert d.headers() == ((b"retry-after", str(16 * 3600).encode()),)
    assert d.flags == ("quota-exceeded",)


def test_requests_in_flight_alone_mean_retry_shortly() -> None:
    applied, line = one_window(limit=10)
    out = window_outcome(applied, line, WindowState(0, 9, ()), False, NOW)
    assert out.retry_after == 1.0 and "retry shortly" in out.reason
    assert "(9 requests more held by requests in flight)" in out.reason


def test_an_estimate_above_the_limit_never_fits() -> None:
    applied, line = one_window(limit=2)
    out = window_outcome(applied, line, WindowState(0, 0, ()), False, NOW)
    assert out.retry_after is None and "alone exceeds the limit" in out.reason
    assert combine([out]).headers() == ()


def test_soft_stop_and_alert_only_let_through_and_say_so() -> None:
    applied, line = one_window(limit=10, mode="soft-stop")
    assert line.cap is None
    soft = window_outcome(applied, line, WindowState(9, 0), True, NOW)
    assert soft.effect is Effect.ALLOW and soft.over
    applied2, line2 = one_window(limit=10, mode="alert-only")
    alert = window_outcome(applied2, line2, WindowState(9, 0), True, NOW)
    d = combine([soft, alert])
    assert d.admitted and d.flag_agent and d.status is None
    assert d.flags == ("quota-soft-stop", "quota-alert")
    assert [a.split(":")[0] for a in d.alerts] == ["quota q (team research) is over its limit"] * 2
    assert "let through (soft-stop), agent flagged" in d.alerts[0]


def test_report_mode_records_what_would_happen() -> None:
    applied, line = one_window(limit=10, enforcement_mode="report")
    assert line.cap is None
    out = window_outcome(applied, line, WindowState(9, 0), True, NOW)
    assert out.effect is Effect.ALLOW and out.shadow
    d = combine([out])
    assert d.admitted and d.flags == ("quota-shadow",) and "(report mode)" in d.alerts[0]


def test_throttle_delays_within_its_bound_and_refuses_beyond() -> None:
    applied, line = one(mode="throttle", limit=60, throttle={"burst": 10, "max_delay": 2})
    assert isinstance(line, BucketLine)
    delayed = bucket_outcome(applied, line, BucketState(1.5), True, NOW)
    assert delayed.effect is Effect.DELAY and delayed.delay == 1.5
    refused = bucket_outcome(applied, line, BucketState(-1.0), False, NOW)
    assert refused.effect is Effect.DENY and refused.retry_after == 2.0
    d = combine([delayed])
    assert d.effect is Effect.DELAY and d.delay == 1.5 and d.admitted
    d = combine([delayed, refused])
    assert d.kind == "throttled" and d.retry_after == 2 and d.flags[0] == "throttled"


def test_the_strictest_wins_and_every_quota_is_named() -> None:
    plan = plan_of(quota("minute", limit=5), quota("day", window="calendar-day", limit=5),
                   quota("soft", mode="soft-stop", limit=1))
    outs = []
    for applied in plan.applicable(AGENT):
        line = line_for(applied, 1, NOW)
        assert isinstance(line, WindowLine)
        slot = slot_at(line.window, NOW)
        st = WindowState(5, 0, ((slot, 5),))
        fits = line.cap is None
        outs.append(window_outcome(applied, line, st, fits, NOW))
    d = combine(outs)
    assert d.quota_id == "day"  # keeps the request out longest
    assert d.reason.endswith("(also refused by quota minute)")
    assert d.retry_after == 16 * 3600
    assert d.flag_agent and "quota-soft-stop" in d.flags
    assert [o.quota_id for o in d.outcomes] == ["minute", "day", "soft"]


def test_unpriced_models_are_refused_by_enforcing_quotas_only() -> None:
    applied, _ = one(metric="cost-usd", limit=1)
    out = unpriced_outcome(applied, "mystery-1")
    assert out.effect is Effect.DENY and "'mystery-1' has no price" in out.reason
    applied2, _ = one(metric="cost-usd", limit=1, mode="alert-only")
    assert unpriced_outcome(applied2, "mystery-1").effect is Effect.ALLOW


def test_backend_down_and_hard_fail_is_a_503() -> None:
    d = unavailable("quota backend redis down")
    assert (d.status, d.kind, d.admitted, d.degraded) == (503, "quota-unavailable", False, True)
    assert isinstance(d.as_dict()["quotas"], list)
    assert QuotaDecision(Effect.ALLOW).admitted
