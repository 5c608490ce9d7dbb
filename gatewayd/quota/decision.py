"""From counters to a decision: each quota's outcome, and the strictest of them.

``window_outcome`` and ``bucket_outcome`` read what a ledger answered for one quota (the
counter's state, and whether the line fitted) and say what that quota does to the request:
let it through, delay it (a throttle within its bound), or refuse it, with a reason an
agent's operator can act on and, for a refusal, when to retry. ``combine`` makes one
``QuotaDecision`` of them: a refusal beats a delay beats letting through; among refusals
the one that keeps the request out longest decides (its ``Retry-After`` is the earliest
time every quota could let it through), and every outcome's alerts and flags are kept.

Pure: states, amounts and the time are arguments. ``Outcome`` and ``QuotaDecision`` are
made per request: slotted, not frozen (see ``ledger``); nothing mutates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from gatewayd.quota import bucket as buckets
from gatewayd.quota.documents import Metric, Mode, Scope
from gatewayd.quota.ledger import BucketLine, BucketState, WindowLine, WindowState
from gatewayd.quota.plan import Applied
from gatewayd.quota.prices import micro_to_usd
from gatewayd.quota.windows import Window, relief_at

# Retry-After when only requests in flight fill the budget: they settle within seconds.
IN_FLIGHT_RETRY_S = 1.0


class Effect(IntEnum):
    """What a quota does to a request, ordered by strictness."""

    ALLOW = 0
    DELAY = 1
    DENY = 2


@dataclass(slots=True)
class Outcome:
    """One quota's say on one request.

    ``over``: the request does not fit the quota's limit (whatever its mode did about it).
    ``used`` is the booked usage (a bucket: ``burst`` less its level), ``held`` what
    requests in flight hold, in the metric's units. ``shadow``: a report-mode quota that
    would have refused or delayed the request.
    """

    quota_id: str
    subject: str
    scope: Scope
    metric: Metric
    window: Window
    mode: Mode
    enforced: bool
    effect: Effect
    over: bool
    limit: int
    used: int
    held: int
    estimate: int
    reason: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    shadow: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "quota_id": self.quota_id,
            "scope": str(self.scope),
            "subject": self.subject,
            "metric": str(self.metric),
            "window": str(self.window),
            "mode": str(self.mode),
            "effect": self.effect.name.lower(),
            "over": self.over,
            "limit": self.limit,
            "used": self.used,
            "held": self.held,
            "estimate": self.estimate,
            "shadow": self.shadow,
        }


def format_amount(metric: Metric, units: float) -> str:
    """An amount for people: USD with cents and beyond for costs, whole units otherwise."""
    if metric is Metric.COST_USD:
        return f"${micro_to_usd(round(units)).normalize():f}"
    return f"{round(units):,} {metric.unit}"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _who(applied: Applied) -> str:
    q = applied.quota
    return f"quota {q.id} ({q.scope} {applied.subject})"


def window_outcome(applied: Applied, line: WindowLine, state: WindowState, fits: bool,
                   now: float) -> Outcome:
    """What a windowed quota does, given its counter's state and whether the line fitted."""
    q = applied.quota
    est = line.estimate
    over = state.used + state.held + est > q.limit
    if fits and not over:  # the common case: nothing to say
        return Outcome(q.id, applied.subject, q.scope, q.metric, q.window, q.mode, q.enforce,
                       Effect.ALLOW, False, q.limit, state.used, state.held, est)
    effect = Effect.ALLOW
    retry: float | None = None
    m = q.metric
    status = (f"{format_amount(m, state.used)} of {format_amount(m, q.limit)} used in the"
              f" {q.window} window")
    if state.held:
        status += f" ({format_amount(m, state.held)} more held by requests in flight)"
    if not fits:  # only an enforced hard-stop line can fail to fit
        effect = Effect.DENY
        if est > q.limit:
            reason = (f"{_who(applied)}: this request's estimate of {format_amount(m, est)}"
                      f" alone exceeds the limit of {format_amount(m, q.limit)}")
        else:
            excess = state.used + state.held + est - q.limit
            at = relief_at(q.window, state.slots, now, excess)
            retry = (at - now) if at is not None else IN_FLIGHT_RETRY_S
            when = f"room again at {iso(at)}" if at is not None else "retry shortly"
            reason = (f"{_who(applied)}: {status}; this request needs"
                      f" {format_amount(m, est)}; {when}")
    else:
        reason = f"{_who(applied)} is over its limit: {status}; {_let_through(q.mode, q.enforce)}"
    return Outcome(q.id, applied.subject, q.scope, m, q.window, q.mode, q.enforce, effect,
                   over, q.limit, state.used, state.held, est, reason, retry,
                   shadow=over and not q.enforce and q.mode is Mode.HARD_STOP)


def _let_through(mode: Mode, enforced: bool) -> str:
    if not enforced and mode in (Mode.HARD_STOP, Mode.THROTTLE):
        return "would be refused (report mode)"
    if mode is Mode.SOFT_STOP:
        return "let through (soft-stop), agent flagged"
    return f"let through ({mode})"


def bucket_outcome(applied: Applied, line: BucketLine, state: BucketState, fits: bool,
                   now: float) -> Outcome:
    """What a throttle quota does, given its bucket's level and whether the take fitted."""
    del now  # a bucket's answer depends on its level only
    q = applied.quota
    b = line.bucket
    est = line.estimate
    took = buckets.take(state.level, est, b)
    used = max(0, round(b.burst - state.level))
    over = not took.granted or took.delay > 0
    if fits and not over:
        return Outcome(q.id, applied.subject, q.scope, q.metric, q.window, q.mode, q.enforce,
                       Effect.ALLOW, False, round(b.burst), used, 0, est)
    m = q.metric
    status = (f"{format_amount(m, max(state.level, 0.0))} of {format_amount(m, b.burst)} left"
              f" in the bucket, refilling {format_amount(m, q.limit)} per {q.window}")
    effect = Effect.ALLOW
    retry: float | None = None
    delay = 0.0
    reason = ""
    if q.enforce and not fits:
        effect = Effect.DENY
        # The ledger's answer stands; where float rounding made it differ from ours, a
        # refill of one unit is the wait.
        retry = 1.0 / b.rate if took.granted else took.retry_after
        if retry is None:
            reason = (f"{_who(applied)}: this request's estimate of {format_amount(m, est)}"
                      f" is larger than the bucket ({format_amount(m, b.burst)})")
        else:
            reason = (f"{_who(applied)}: throttled: {status}; this request needs"
                      f" {format_amount(m, est)}; retry in {buckets.ceil_seconds(retry)}s")
    elif q.enforce and took.delay > 0:
        effect = Effect.DELAY
        delay = took.delay
        reason = f"{_who(applied)}: throttled: {status}; delayed {delay:.3f}s"
    elif over:
        reason = f"{_who(applied)}: throttled: {status}; {_let_through(q.mode, q.enforce)}"
    return Outcome(q.id, applied.subject, q.scope, m, q.window, q.mode, q.enforce, effect,
                   over, round(b.burst), used, 0, est, reason, retry, delay,
                   shadow=over and not q.enforce)


def unpriced_outcome(applied: Applied, model: str) -> Outcome:
    """A cost quota on a call whose model has no price: enforcing quotas refuse it."""
    q = applied.quota
    refuse = q.enforce and q.mode in (Mode.HARD_STOP, Mode.THROTTLE)
    reason = (f"{_who(applied)}: model {model!r} has no price in quota.prices, so its cost"
              f" cannot be counted; {'refused' if refuse else _let_through(q.mode, q.enforce)}")
    return Outcome(q.id, applied.subject, q.scope, q.metric, q.window, q.mode, q.enforce,
                   Effect.DENY if refuse else Effect.ALLOW, True, q.limit, 0, 0, 0, reason,
                   shadow=not q.enforce and q.mode in (Mode.HARD_STOP, Mode.THROTTLE))


@dataclass(slots=True)
class QuotaDecision:
    """What the quotas say about one request, all of them together.

    ``status`` is 429 for a refusal by a quota, 503 when the backend is down and the
    gateway fails hard; ``kind`` names it in the response body (``quota-exceeded``,
    ``throttled``, ``quota-unavailable``). ``delay``: seconds to hold the request before
    forwarding it. ``alerts`` are the reasons of quotas that let an over-limit request
    through; ``flag_agent`` asks for the agent to be flagged (soft-stop).
    """

    effect: Effect
    outcomes: tuple[Outcome, ...] = ()
    status: int | None = None
    kind: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    reason: str = ""
    quota_id: str | None = None
    alerts: tuple[str, ...] = ()
    flag_agent: bool = False
    flags: tuple[str, ...] = ()
    degraded: bool = False

    @property
    def admitted(self) -> bool:
        return self.effect is not Effect.DENY

    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Response headers for a refusal: ``Retry-After`` when a retry can succeed."""
        if self.effect is Effect.DENY and self.retry_after is not None:
            return ((b"retry-after", str(self.retry_after).encode()),)
        return ()

    def as_dict(self) -> dict[str, Any]:
        """For the audit record."""
        return {
            "effect": self.effect.name.lower(),
            "status": self.status,
            "kind": self.kind,
            "retry_after": self.retry_after,
            "delay_s": round(self.delay, 3),
            "reason": self.reason,
            "quota_id": self.quota_id,
            "alerts": list(self.alerts),
            "flag_agent": self.flag_agent,
            "flags": list(self.flags),
            "degraded": self.degraded,
            "quotas": [o.as_dict() for o in self.outcomes],
        }


NO_QUOTA = QuotaDecision(Effect.ALLOW)


def combine(outcomes: Iterable[Outcome], *, degraded: str | None = None) -> QuotaDecision:
    """The strictest of ``outcomes`` (see the module docstring). ``degraded`` is the
    alert to add when the counts came from the local fallback."""
    outs = tuple(outcomes)
    if degraded is None and not any(o.over or o.effect is not Effect.ALLOW for o in outs):
        return QuotaDecision(Effect.ALLOW, outs)
    alerts = [o.reason for o in outs if o.over and o.effect is Effect.ALLOW and o.reason]
    flags: list[str] = []
    flag_agent = any(o.over and o.mode is Mode.SOFT_STOP and o.enforced for o in outs)
    if flag_agent:
        flags.append("quota-soft-stop")
    if any(o.over and o.mode is Mode.ALERT_ONLY for o in outs):
        flags.append("quota-alert")
    if any(o.shadow for o in outs):
        flags.append("quota-shadow")
    if degraded is not None:
        alerts.append(degraded)
        flags.append("quota-degraded")
    denies = [o for o in outs if o.effect is Effect.DENY]
    if denies:
        decider = max(denies, key=lambda o: (o.retry_after is None, o.retry_after or 0.0))
        throttled = decider.mode is Mode.THROTTLE
        flags.insert(0, "throttled" if throttled else "quota-exceeded")
        others = [o.quota_id for o in denies if o is not decider]
        reason = decider.reason
        if others:
            reason += f" (also refused by quota {', '.join(others)})"
        retry = None if decider.retry_after is None else buckets.ceil_seconds(decider.retry_after)
        return QuotaDecision(Effect.DENY, outs, 429, "throttled" if throttled else
                             "quota-exceeded", retry, 0.0, reason, decider.quota_id,
                             tuple(alerts), flag_agent, tuple(flags), degraded is not None)
    delays = [o for o in outs if o.effect is Effect.DELAY]
    if delays:
        decider = max(delays, key=lambda o: o.delay)
        flags.insert(0, "quota-delayed")
        return QuotaDecision(Effect.DELAY, outs, None, None, None, decider.delay,
                             decider.reason, decider.quota_id, tuple(alerts), flag_agent,
                             tuple(flags), degraded is not None)
    return QuotaDecision(Effect.ALLOW, outs, alerts=tuple(alerts), flag_agent=flag_agent,
                         flags=tuple(flags), degraded=degraded is not None)


def unavailable(reason: str) -> QuotaDecision:
    """The refusal of a gateway whose quota backend is down and fails hard."""
    return QuotaDecision(Effect.DENY, status=503, kind="quota-unavailable", reason=reason,
                         flags=("quota-unavailable",), degraded=True)
