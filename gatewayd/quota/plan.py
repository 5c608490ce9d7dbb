"""Compiled quotas: which apply to a request, and the counter each one books on.

``compile_quotas`` turns validated documents into a ``QuotaPlan``; ``QuotaPlan.applicable``
answers, for an identity (and the credential a request carries), every quota that applies
with the *subject* it is counted for (the agent, team, project, environment or credential
its scope names). Answers are memoized per identity: a gateway asks on every request.

A counter is named ``quota-id|shape|subject``. The shape (scope, metric, window, and
``bucket`` for throttles) is part of the name, so that editing a quota's limit keeps its
usage while changing what it counts starts afresh. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from gatewayd.errors import PolicyError
from gatewayd.quota.bucket import Bucket
from gatewayd.quota.documents import EnforcementMode, Metric, Mode, QuotaDocument, Scope
from gatewayd.quota.prices import usd_to_micro
from gatewayd.quota.windows import Window

MEMO_SIZE = 65_536


class Who(Protocol):
    """The identity fields a quota selects on (``gatewayd.identity.Identity`` has them)."""

    @property
    def agent_id(self) -> str: ...
    @property
    def team_id(self) -> str: ...
    @property
    def project_id(self) -> str: ...
    @property
    def environment(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CounterKey:
    quota_id: str
    shape: str
    subject: str

    def __str__(self) -> str:
        return f"{self.quota_id}|{self.shape}|{self.subject}"

    @classmethod
    def parse(cls, text: str) -> CounterKey | None:
        """The key ``str`` made, or ``None`` for text that is not one."""
        parts = text.split("|")
        if len(parts) != 3 or not all(parts):
            return None
        return cls(*parts)


@dataclass(frozen=True, slots=True)
class Quota:
    """One compiled quota. ``limit`` (and ``bucket``) are in the metric's integer units:
    micro-dollars for ``cost-usd``."""

    id: str
    scope: Scope
    metric: Metric
    window: Window
    limit: int
    mode: Mode
    enforce: bool
    agents: frozenset[str] | None = None
    teams: frozenset[str] | None = None
    projects: frozenset[str] | None = None
    environments: frozenset[str] | None = None
    credentials: frozenset[str] | None = None
    bucket: Bucket | None = None
    description: str = ""

    @property
    def shape(self) -> str:
        base = f"{self.scope}/{self.metric}/{self.window}"
        return base + "/bucket" if self.bucket is not None else base

    def counter(self, subject: str) -> str:
        return str(CounterKey(self.id, self.shape, subject))

    def selects(self, who: Who, credential: str | None) -> bool:
        return (
            (self.agents is None or who.agent_id in self.agents)
            and (self.teams is None or who.team_id in self.teams)
            and (self.projects is None or who.project_id in self.projects)
            and (self.environments is None or who.environment in self.environments)
            and (self.credentials is None or credential in self.credentials)
        )

    def subject(self, who: Who, credential: str | None) -> str | None:
        """What the quota counts this request for; ``None``: it does not apply."""
        if not self.selects(who, credential):
            return None
        if self.scope is Scope.AGENT:
            return who.agent_id
        if self.scope is Scope.TEAM:
            return who.team_id
        if self.scope is Scope.PROJECT:
            return who.project_id
        if self.scope is Scope.ENVIRONMENT:
            return who.environment
        return credential

    def scope_admits(self, subject: str) -> bool:
        """Whether a counter for ``subject`` can exist under this quota's selector."""
        allowed = {
            Scope.AGENT: self.agents,
            Scope.TEAM: self.teams,
            Scope.PROJECT: self.projects,
            Scope.ENVIRONMENT: self.environments,
            Scope.CREDENTIAL: self.credentials,
        }[self.scope]
        return allowed is None or subject in allowed


@dataclass(frozen=True, slots=True)
class Applied:
    """A quota that applies to a request, and the subject it counts the request for."""

    quota: Quota
    subject: str
    counter: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counter", self.quota.counter(self.subject))


def _units(value: Decimal, metric: Metric) -> int:
    return usd_to_micro(value) if metric is Metric.COST_USD else int(value)


def compile_quota(doc: QuotaDocument) -> Quota:
    spec = doc.spec
    sel = spec.selector

    limit = _units(spec.limit, spec.metric)
    bucket = None
    if spec.mode is Mode.THROTTLE:
        throttle = spec.throttle
        burst = (_units(throttle.burst, spec.metric)
                 if throttle and throttle.burst is not None else limit)
        bucket = Bucket(rate=limit / spec.window.length, burst=float(burst),
                        max_delay=throttle.max_delay if throttle else 0.0)
    return Quota(
        id=doc.id,
        scope=spec.scope,
        metric=spec.metric,
        window=spec.window,
        limit=limit,
        mode=spec.mode,
        enforce=spec.enforcement_mode is EnforcementMode.ENFORCE,
        agents=sel.values("agent"),
        teams=sel.values("team"),
        projects=sel.values("project"),
        environments=sel.values("environment"),
        credentials=sel.values("credential"),
        bucket=bucket,
        description=doc.metadata.description,
    )


class QuotaPlan:
    """Every quota in force, and which apply to whom."""

    def __init__(self, quotas: Iterable[Quota] = ()) -> None:
        self.quotas: tuple[Quota, ...] = tuple(quotas)
        self._by_id = {q.id: q for q in self.quotas}
        self._memo: dict[tuple[str, str, str, str, str | None], tuple[Applied, ...]] = {}

    def __len__(self) -> int:
        return len(self.quotas)

    def get(self, quota_id: str) -> Quota | None:
        return self._by_id.get(quota_id)

    def applicable(self, who: Who, credential: str | None = None) -> tuple[Applied, ...]:
        """The quotas that apply to a request of ``who`` made with ``credential``."""
        key = (who.agent_id, who.team_id, who.project_id, who.environment, credential)
        try:
            return self._memo[key]
        except KeyError:
            pass
        found = []
        for quota in self.quotas:
            subject = quota.subject(who, credential)
            if subject is not None:
                found.append(Applied(quota, subject))
        out = tuple(found)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[key] = out
        return out


def compile_quotas(documents: Iterable[QuotaDocument]) -> QuotaPlan:
    """The plan of ``documents``; quota ids must be unique (``PolicyError``)."""
    quotas: list[Quota] = []
    seen: set[str] = set()
    errors: list[str] = []
    for doc in documents:
        if doc.id in seen:
            errors.append(f"quota id {doc.id!r} is used twice")
            continue
        seen.add(doc.id)
        quotas.append(compile_quota(doc))
    if errors:
        raise PolicyError("\n".join(errors))
    return QuotaPlan(quotas)
