"""A rule as the evaluator holds it: selectors flattened, patterns compiled, rank precomputed.

How rules are ranked (documented for operators in ``docs/policy.md``): lower ``priority``
first; then the more specific match (destination, then port, then identity, then protocol,
then the number of L7 conditions); then the more restrictive action (deny-overrides); then
policy id and rule id, so that the order is total and a decision never depends on the
order rules were written in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from gatewayd.policy.condition import Condition, ConditionError
from gatewayd.policy.decision import Decision, Request
from gatewayd.policy.documents import ADMITTING, RESTRICTIVENESS, Action, EnforcementMode
from gatewayd.policy.patterns import GlobSet, class_matches
from gatewayd.policy.selectors import Protocol

# Destination specificity classes (higher is more specific).
DEST_EXACT_HOST = 4
DEST_HOST_ROUTE = 3  # a /32 or /128 CIDR
DEST_SUFFIX = 2
DEST_CIDR = 1
DEST_ANY = 0

# Port specificity classes.
PORT_EXACT = 2
PORT_RANGE = 1
PORT_ANY = 0


class Outcome(Enum):
    """What checking one candidate rule's remaining conditions gave."""

    MATCH = "match"
    NO_MATCH = "no-match"
    NEEDS_L7 = "needs-l7"  # an L4 request meets a rule only the L7 engine can decide
    ERROR = "error"  # a when: condition failed at run time (fail closed)


# The ``l7:`` conditions the AI protocol analyzer and DLP answer from the request's body.
BODY_CONDITIONS = frozenset({"providers", "models", "tools", "dlp_classes", "token_estimate"})


@dataclass(eq=False, slots=True)
class CompiledRule:
    policy_id: str
    rule_id: str
    action: Action
    mode: EnforcementMode
    priority: int
    reason: str
    order: int
    protocol: Protocol
    identity_specificity: int
    methods: frozenset[str]
    paths: GlobSet
    providers: frozenset[str]
    models: GlobSet
    tools: GlobSet
    dlp_classes: tuple[str, ...]
    token_min: int | None
    token_max: int | None
    condition: Condition | None
    l7_fields: tuple[str, ...]
    bundle_version: int | None = None
    # Filled in after construction: the decision this rule makes when it holds plainly
    # (no guard, no shadow), whether only identity, destination and port matter, and
    # whether only those and the protocol do.
    decision: Decision = field(init=False)
    plain: bool = field(init=False)
    keyed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.decision = Decision(self.action, self.reason_text(), self.policy_id, self.rule_id,
                                 self.bundle_version, self.mode)
        self.keyed = not self.l7_fields and self.condition is None
        self.plain = self.keyed and self.protocol is Protocol.ANY

    @property
    def has_l7(self) -> bool:
        return bool(self.l7_fields)

    @property
    def reads_body(self) -> bool:
        """Whether the rule can only be decided from what the request's body says."""
        return (not BODY_CONDITIONS.isdisjoint(self.l7_fields)
                or (self.condition is not None and self.condition.reads_body))

    @property
    def admitting(self) -> bool:
        return self.action in ADMITTING

    @property
    def label(self) -> str:
        return f"{self.policy_id}/{self.rule_id}"

    def reason_text(self) -> str:
        return self.reason or f"rule {self.label} ({self.action})"

    def rank(self, dest_class: int, dest_degree: int, port_class: int, port_degree: int) -> tuple[
        int, ...
    ]:
        """The sort key of this rule for one way of matching (lower ranks first)."""
        return (
            self.priority,
            -dest_class,
            -dest_degree,
            -port_class,
            -port_degree,
            -self.identity_specificity,
            0 if self.protocol is Protocol.ANY else -1,
            -len(self.l7_fields),
            -RESTRICTIVENESS[self.action],
            self.order,
        )

    def check(self, request: Request, now: float) -> tuple[Outcome, str]:
        """Protocol, L7 and ``when:`` conditions, after the indexes matched identity,
        destination and port. Returns the outcome and, unless it matched, why."""
        if self.protocol is not Protocol.ANY and self.protocol.value != request.protocol:
            return Outcome.NO_MATCH, f"protocol is {request.protocol}, rule wants {self.protocol}"
        if self.l7_fields:
            if request.layer == "l4":
                return Outcome.NEEDS_L7, "needs L7 fields: " + ", ".join(self.l7_fields)
            why = self._l7_mismatch(request)
            if why is not None:
                return Outcome.NO_MATCH, why
        cond = self.condition
        if cond is not None:
            if request.layer == "l4" and cond.needs_l7:
                return Outcome.NEEDS_L7, "when: reads L7 fields"
            try:
                ok = cond.evaluate(request.activation(now))
            except ConditionError as exc:
                return Outcome.ERROR, f"when: could not be evaluated: {exc}"
            if not ok:
                return Outcome.NO_MATCH, "when: is false"
        return Outcome.MATCH, ""

    def _l7_mismatch(self, r: Request) -> str | None:
        if self.methods and (r.method is None or r.method.upper() not in self.methods):
            return f"method {r.method or '(none)'} not in {sorted(self.methods)}"
        if self.paths and (r.path is None or not self.paths.match(r.path.split("?", 1)[0])):
            return f"path {r.path or '(none)'} does not match {list(self.paths.patterns)}"
        if self.providers and (r.provider is None or r.provider not in self.providers):
            return f"provider {r.provider or '(none)'} not in {sorted(self.providers)}"
        if self.models and (r.model is None or not self.models.match(r.model)):
            return f"model {r.model or '(none)'} does not match {list(self.models.patterns)}"
        if self.tools and not any(self.tools.match(t) for t in r.tools):
            return f"no tool matches {list(self.tools.patterns)}"
        if self.dlp_classes and not any(
            class_matches(w, c) for w in self.dlp_classes for c in r.dlp_classes
        ):
            return f"no DLP class matches {list(self.dlp_classes)}"
        if self.token_min is not None or self.token_max is not None:
            est = r.token_estimate
            if est is None:
                return "no token estimate"
            if self.token_min is not None and est < self.token_min:
                return f"token estimate {est} < {self.token_min}"
            if self.token_max is not None and est > self.token_max:
                return f"token estimate {est} > {self.token_max}"
        return None
