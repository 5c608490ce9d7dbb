"""What ``clawgress quota show`` and ``quota reset`` do, as functions returning data.

``usage_rows`` reads, for the quotas and subjects asked about, usage against the limit,
what is left and when the window gives room again; ``reset_counters`` forgets the state of
the counters a selection names. The click commands (``cli``) only print what these return.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gatewayd.errors import ClawgressError
from gatewayd.quota import bucket as buckets
from gatewayd.quota.decision import format_amount, iso
from gatewayd.quota.documents import Metric, Scope
from gatewayd.quota.engine import line_for
from gatewayd.quota.ledger import BucketState, Ledger, WindowState
from gatewayd.quota.plan import Applied, CounterKey, Quota, QuotaPlan, Who
from gatewayd.quota.prices import micro_to_usd
from gatewayd.quota.windows import relief_at, slot_at, slot_leaves, window_start


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One quota's counter for one subject. Amounts are in the metric's integer units
    (micro-dollars for ``cost-usd``); a throttle's ``limit`` is its bucket's capacity."""

    quota: Quota
    subject: str
    used: int
    held: int
    limit: int
    window_start: float | None
    resets_at: float | None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used - self.held)

    def _value(self, units: int) -> int | float:
        if self.quota.metric is Metric.COST_USD:
            return float(micro_to_usd(units))
        return units

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: amounts in the metric's unit (USD for costs), times twice."""
        q = self.quota
        return {
            "quota_id": q.id,
            "scope": str(q.scope),
            "subject": self.subject,
            "metric": str(q.metric),
            "unit": q.metric.unit,
            "window": str(q.window),
            "mode": str(q.mode),
            "enforcement_mode": "enforce" if q.enforce else "report",
            "used": self._value(self.used),
            "held": self._value(self.held),
            "limit": self._value(self.limit),
            "remaining": self._value(self.remaining),
            "window_start": iso(self.window_start) if self.window_start is not None else None,
            "window_start_unix": self.window_start,
            "resets_at": iso(self.resets_at) if self.resets_at is not None else None,
            "resets_at_unix": self.resets_at,
        }

    def table_row(self) -> dict[str, Any]:
        """For people: one row of the table ``quota show`` prints."""
        q = self.quota
        m = q.metric
        return {
            "quota": q.id,
            "scope": f"{q.scope} {self.subject}",
            "window": str(q.window),
            "mode": str(q.mode) + ("" if q.enforce else " (report)"),
            "used": format_amount(m, self.used) + (
                f" (+{format_amount(m, self.held)} held)" if self.held else ""),
            "limit": format_amount(m, self.limit),
            "remaining": format_amount(m, self.remaining),
            "resets": iso(self.resets_at) if self.resets_at is not None else None,
        }


TABLE_COLUMNS = ("quota", "scope", "window", "mode", "used", "limit", "remaining", "resets")


def _pairs(plan: QuotaPlan, ledger: Ledger, who: Who | None, team: str | None,
           project: str | None) -> list[Applied]:
    if who is not None:
        return list(plan.applicable(who))
    if team is not None or project is not None:
        scope, subject = (Scope.TEAM, team) if team is not None else (Scope.PROJECT, project)
        assert subject is not None
        return [Applied(q, subject) for q in plan.quotas
                if q.scope is scope and q.scope_admits(subject)]
    seen: dict[tuple[str, str], Applied] = {}
    by_shape = {(q.id, q.shape): q for q in plan.quotas}
    for text in ledger.counters():
        key = CounterKey.parse(text)
        quota = by_shape.get((key.quota_id, key.shape)) if key else None
        if key is not None and quota is not None:
            seen[(quota.id, key.subject)] = Applied(quota, key.subject)
    for q in plan.quotas:  # subjects a selector names, used or not
        names = {Scope.AGENT: q.agents, Scope.TEAM: q.teams, Scope.PROJECT: q.projects,
                 Scope.ENVIRONMENT: q.environments, Scope.CREDENTIAL: q.credentials}[q.scope]
        for subject in sorted(names or ()):
            seen.setdefault((q.id, subject), Applied(q, subject))
    return [seen[k] for k in sorted(seen)]


def usage_rows(plan: QuotaPlan, ledger: Ledger, now: float, *, who: Who | None = None,
               team: str | None = None, project: str | None = None) -> list[UsageRow]:
    """Usage against limits: for the quotas that apply to ``who`` (an agent's identity),
    the team-scoped quotas of ``team``, the project-scoped quotas of ``project``, or with
    none of these every counter the ledger has and every subject a selector names."""
    if sum(x is not None for x in (who, team, project)) > 1:
        raise ClawgressError("choose one of --agent, --team and --project")
    pairs = _pairs(plan, ledger, who, team, project)
    lines = [line_for(a, 0, now) for a in pairs]
    states = ledger.read(lines, now) if lines else ()
    rows = []
    for a, state in zip(pairs, states, strict=True):
        q = a.quota
        if isinstance(state, BucketState):
            assert q.bucket is not None
            level = state.level
            rows.append(UsageRow(q, a.subject, max(0, round(q.bucket.burst - level)), 0,
                                 round(q.bucket.burst), None,
                                 now + buckets.refill_after(level, q.bucket)))
            continue
        assert isinstance(state, WindowState)
        if q.window.rolling:
            resets = relief_at(q.window, state.slots, now, 1) if state.used else None
        else:
            resets = slot_leaves(q.window, slot_at(q.window, now))
        rows.append(UsageRow(q, a.subject, state.used, state.held, q.limit,
                             window_start(q.window, now), resets))
    return rows


@dataclass(frozen=True, slots=True)
class ResetSelection:
    """Which counters ``quota reset`` forgets: those of one quota, of one subject of a
    scope, both, or (``everything``) all."""

    quota_id: str | None = None
    scope: Scope | None = None
    subject: str | None = None
    everything: bool = False

    def __post_init__(self) -> None:
        named = self.quota_id is not None or self.subject is not None
        if self.everything and named:
            raise ClawgressError("--all resets every counter: do not combine it with a selection")
        if not self.everything and not named:
            raise ClawgressError(
                "say what to reset: --quota ID, one of --agent/--team/--project/--environment/"
                "--credential, both, or --all")
        if (self.scope is None) != (self.subject is None):
            raise ClawgressError("a subject needs its scope")

    def matches(self, key: CounterKey) -> bool:
        if self.everything:
            return True
        if self.quota_id is not None and key.quota_id != self.quota_id:
            return False
        if self.scope is not None:
            return key.shape.startswith(f"{self.scope}/") and key.subject == self.subject
        return True

    def describe(self) -> str:
        if self.everything:
            return "every quota counter"
        parts = []
        if self.quota_id is not None:
            parts.append(f"quota {self.quota_id}")
        if self.scope is not None:
            parts.append(f"{self.scope} {self.subject}")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class ResetResult:
    counters: tuple[str, ...]
    done: bool
    reset: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"counters": list(self.counters), "done": self.done, "reset": self.reset}


def select_counters(counters: Iterable[str], selection: ResetSelection) -> list[str]:
    out = []
    for text in counters:
        key = CounterKey.parse(text)
        if key is not None and selection.matches(key):
            out.append(text)
    return sorted(out)


def reset_counters(ledger: Ledger, selection: ResetSelection, *, confirm: bool) -> ResetResult:
    """The counters ``selection`` names, forgotten only when ``confirm`` is set."""
    chosen = select_counters(ledger.counters(), selection)
    if not confirm or not chosen:
        return ResetResult(tuple(chosen), False)
    return ResetResult(tuple(chosen), True, ledger.reset(chosen))
