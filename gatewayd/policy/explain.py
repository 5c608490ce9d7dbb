"""Why a decision came out the way it did: the evaluator's walk, made readable.

Used by ``clawgress policy test``. Pure: a plan and a request in, an ``Explanation`` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gatewayd.policy.decision import Decision, Request
from gatewayd.policy.plan import Plan
from gatewayd.policy.reference import mismatch


@dataclass(frozen=True)
class Considered:
    policy_id: str
    rule_id: str
    action: str
    mode: str
    priority: int
    via: str
    outcome: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    considered: tuple[Considered, ...]
    # Rules the indexes never offered, with why (filled only when asked for).
    not_candidates: tuple[tuple[str, str], ...]
    not_candidate_count: int
    guarded: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.as_dict(),
            "guarded": self.guarded,
            "considered": [c.as_dict() for c in self.considered],
            "not_candidate_count": self.not_candidate_count,
            "not_candidates": [{"rule": r, "why": w} for r, w in self.not_candidates],
        }


def explain(plan: Plan, request: Request, now: float, *, all_rules: bool = False) -> Explanation:
    decision, steps = plan.walk(request, now)
    considered = tuple(
        Considered(
            policy_id=s.rule.policy_id,
            rule_id=s.rule.rule_id,
            action=str(s.rule.action),
            mode=str(s.rule.mode),
            priority=s.rule.priority,
            via=s.via,
            outcome=s.outcome,
            why=s.why,
        )
        for s in steps
    )
    offered = {(c.policy_id, c.rule_id) for c in considered}
    offered |= {(e.rule.policy_id, e.rule.rule_id) for e in plan.candidates(request)}
    rest: list[tuple[str, str]] = []
    count = 0
    for sd in plan.documents:
        for rule in sd.document.spec.rules:
            if (sd.document.id, rule.id) in offered:
                continue
            count += 1
            if all_rules:
                why = mismatch(rule, request) or "not offered"
                rest.append((f"{sd.document.id}/{rule.id}", why))
    hit = plan.guard_index.classify(request.dest_ip, request.host)
    guarded = hit.kind if hit is not None else None
    return Explanation(decision, considered, tuple(rest), count, guarded)
