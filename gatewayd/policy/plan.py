"""The execution plan and its evaluator: the hot path of every decision.

``Plan.evaluate(request, now)`` gathers the candidate rules from the indexes, ranks them
(see ``gatewayd.policy.rules``) and walks them in order:

* a rule whose remaining conditions fail is skipped;
* a report-mode (shadow) rule that matches is remembered as the would-be decision and the
  walk goes on — shadow rules never change what happens to traffic;
* the first enforce-mode rule that matches decides;
* at L4, an enforce-mode rule that has L7 conditions decides ``inspect``: only the L7
  engine can tell whether it matches;
* a ``when:`` condition that cannot be evaluated decides ``deny`` (fail closed) and says so;
* admitting rules that do not name a guarded destination are skipped for it.

Nothing matching means deny. No identity means deny. A plan without a valid bundle denies
everything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter

from gatewayd.identity import Identity
from gatewayd.policy.decision import Decision, IPAddress, Request
from gatewayd.policy.documents import Action, EnforcementMode, SourcedDocument
from gatewayd.policy.guard import Guard, GuardHit, GuardIndex, Network
from gatewayd.policy.index import DestinationIndex, Entry
from gatewayd.policy.rules import CompiledRule, Outcome
from gatewayd.quota.plan import QuotaPlan

_rank = attrgetter("rank")

# How many fast-path decisions a plan remembers before it starts over.
DEFAULT_MEMO_SIZE = 65536


def _ranked(sources: list[list[Entry]]) -> list[Entry]:
    """The entries of several rank-sorted lists, in rank order."""
    if not sources:
        return []
    if len(sources) == 1:
        return sources[0]
    merged = [e for src in sources for e in src]
    merged.sort(key=_rank)
    return merged


@dataclass(frozen=True, slots=True)
class Step:
    """One candidate's fate in an evaluation (for ``explain``)."""

    rule: CompiledRule
    via: str
    outcome: str  # decided | shadow | skipped | ranked-below
    why: str


class Plan:
    def __init__(
        self,
        *,
        index: DestinationIndex | None,
        rules: tuple[CompiledRule, ...],
        guard: Guard,
        bundle_version: int | None,
        documents: Sequence[SourcedDocument] = (),
        deny_all_reason: str | None = None,
        memo_size: int = DEFAULT_MEMO_SIZE,
        networks: tuple[Network, ...] = (),
        uses_names: bool = False,
        sends_to_l7: bool = False,
        reads_body: bool = False,
        quotas: QuotaPlan | None = None,
        dlp: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
    ) -> None:
        self.memo_size = memo_size
        # Every CIDR a rule names, and whether any rule names a host: the data plane
        # reads TLS names only for a policy that decides by name.
        self.networks = networks
        self.uses_names = uses_names
        # Whether any rule can send a flow to the L7 engine (inspect, throttle, transform,
        # or L7 conditions): the data plane then lets the L7 engine read TLS names.
        self.sends_to_l7 = sends_to_l7
        # Whether any rule needs what a request's body says (provider, model, tools, token
        # estimate, DLP classes): the L7 engine then reads the body before it decides.
        self.reads_body = reads_body
        # The bundle's budgets (Quota documents), counted by the L7 engine's quota stage.
        self.quotas = quotas if quotas is not None else QuotaPlan()
        # Rules' DLP actions per class, by (policy id, rule id); only rules that set some.
        self.dlp: Mapping[tuple[str, str], Mapping[str, str]] = dlp or {}
        # The CIDRs that lie inside a guarded or private range: only these let a DNS
        # answer point there.
        self._named_inside = tuple(
            net for net in networks
            if any(net.version == g.version and net.subnet_of(g)  # type: ignore[arg-type]
                   for g in (*(n for _, n in guard.networks), *guard.private))
        )
        self._memo: dict[object, Decision] = {}
        self.index = index if index is not None else DestinationIndex()
        self.rules = rules
        self.guard = guard
        self.guard_index: GuardIndex = guard.index()
        self.bundle_version = bundle_version
        self.documents = tuple(documents)
        self.deny_all_reason = deny_all_reason
        version = bundle_version
        self._default = Decision(Action.DENY, "no rule matched; default deny", None, None,
                                 version)
        self._unknown = Decision(Action.DENY, "unknown identity: no agent is bound to this"
                                 " source", None, None, version, flags=("unknown-identity",))
        self._no_policy = Decision(Action.DENY, deny_all_reason or "", None, None, version,
                                   flags=("no-policy",))

    @classmethod
    def deny_all(cls, reason: str, bundle_version: int | None = None) -> Plan:
        """A plan that denies everything with ``reason`` (no valid bundle, expired, ...)."""
        return cls(
            index=None,
            rules=(),
            guard=Guard.builtin(),
            bundle_version=bundle_version,
            deny_all_reason=reason,
        )

    def __len__(self) -> int:
        return len(self.rules)

    def resolution_guard(self, ip: IPAddress) -> GuardHit | None:
        """Why a DNS answer must not bind a name to ``ip``, or ``None`` when it may.

        An answer may point into the guard class (loopback, link-local, metadata, the
        gateway's own addresses, configured ones) or a private range only when a rule names
        the address by a CIDR inside that range: an allowed name resolving to the metadata
        service or an internal address is DNS rebinding, whatever the name's rules say.
        """
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        hit = self.guard_index.classify(ip, None)
        if hit is None:
            for net in self.guard.private:
                if net.version == ip.version and ip in net:
                    hit = GuardHit("private", net, None)
                    break
        if hit is None:
            return None
        for net in self._named_inside:
            if net.version == ip.version and ip in net and hit.named_by(net):
                return None
        return hit

    def denies_name(self, identity: Identity, host: str, now: float) -> Decision | None:
        """The deciding deny (or quarantine) rule when policy denies ``host`` to ``identity``
        outright: on every port and protocol, whatever address it resolves to. ``None``
        when the name may resolve (rules that allow or deny by port, address or L7 field
        decide its flows later)."""
        decision = self.evaluate(Request(identity=identity, host=host, layer="l4"), now)
        if decision.rule_id is None or decision.action not in (Action.DENY, Action.QUARANTINE):
            return None
        return decision

    def _sources(self, request: Request) -> list[list[Entry]]:
        ident = request.identity
        assert ident is not None
        values = (ident.agent_id, ident.team_id, ident.project_id, ident.environment)
        out: list[list[Entry]] = []
        self.index.collect(values, request.host, request.ip_value, request.ip_version,
                           request.port, out)
        return out

    def dlp_actions(self, decision: Decision) -> Mapping[str, str]:
        """What DLP does, per class, to a request ``decision`` admits (its rule's ``dlp:``;
        empty when the rule sets none)."""
        if decision.policy_id is None or decision.rule_id is None:
            return {}
        return self.dlp.get((decision.policy_id, decision.rule_id), {})

    def candidates(self, request: Request) -> list[Entry]:
        """Every way a rule's identity, destination and port match ``request``, ranked."""
        if request.identity is None:
            return []
        return sorted((e for src in self._sources(request) for e in src), key=_rank)

    def evaluate(self, request: Request, now: float = 0.0) -> Decision:
        """The decision for ``request`` (``now`` is only read by ``when:`` conditions).

        Decisions taken on the fast path — the best-ranked match is an enforce-mode rule
        with nothing left to check, or nothing matches, and the destination is not guarded
        — and those of a walk whose every candidate rule checks nothing but identity,
        destination, port and protocol depend only on the identity's selector fields, the
        destination, the port and the protocol, so they are remembered (up to
        ``memo_size`` of them; the plan is immutable, so they never go stale). Flows
        repeat: an agent opens many connections to the same few destinations.
        """
        if self.deny_all_reason is not None:
            return self._no_policy
        ident = request.identity
        if ident is None:
            return self._unknown
        host = request.host
        values = (ident.agent_id, ident.team_id, ident.project_id, ident.environment)
        key = (values, host, request.ip_value, request.ip_version, request.port,
               request.protocol)
        memo = self._memo
        known = memo.get(key)
        if known is not None:
            return known
        sources: list[list[Entry]] = []
        self.index.collect(values, host, request.ip_value, request.ip_version, request.port,
                           sources)
        guarded = self.guard_index.classify_value(request.ip_value, request.ip_version, host)
        if guarded is None:
            # The common case, decided without the general walk.
            decision: Decision | None = None
            if not sources:
                decision = self._default
            else:
                best = sources[0][0] if len(sources) == 1 else min(
                    (src[0] for src in sources), key=_rank)
                rule = best.rule
                if rule.plain and rule.mode is EnforcementMode.ENFORCE:
                    decision = rule.decision
            if decision is not None:
                self._remember(key, decision)
                return decision
        decision = self._walk(request, now, None, sources, guarded)
        if all(entry.rule.keyed for src in sources for entry in src):
            # No candidate looked past the identity, the destination, the port and the
            # protocol (a guarded destination, a report-mode rule, a rule for TCP only):
            # the same key decides the same.
            self._remember(key, decision)
        return decision

    def _remember(self, key: object, decision: Decision) -> None:
        if self.memo_size:
            memo = self._memo
            if len(memo) >= self.memo_size:
                memo.clear()
            memo[key] = decision

    def walk(self, request: Request, now: float) -> tuple[Decision, list[Step]]:
        """``evaluate`` that also says what happened to every candidate."""
        steps: list[Step] = []
        if self.deny_all_reason is not None:
            return self._no_policy, steps
        if request.identity is None:
            return self._unknown, steps
        guarded = self.guard_index.classify(request.dest_ip, request.host)
        return self._walk(request, now, steps, self._sources(request), guarded), steps

    def _walk(
        self,
        request: Request,
        now: float,
        steps: list[Step] | None,
        sources: list[list[Entry]],
        guarded: GuardHit | None,
    ) -> Decision:
        ordered = _ranked(sources)
        shadow: Decision | None = None
        seen: set[int] = set()
        # Rules held back by the guard on a way that does not name it; one that is judged
        # on another way (which names it) was not held back after all.
        held_back: set[int] = set()
        decided: Decision | None = None
        for entry in ordered:
            rule = entry.rule
            if id(rule) in seen:
                continue
            if decided is not None:
                if steps is None:
                    break
                seen.add(id(rule))
                steps.append(Step(rule, entry.via, "ranked-below", "a higher-ranked rule"
                                  " decided"))
                continue
            if guarded is not None and rule.admitting and not guarded.named_by(entry.target):
                held_back.add(id(rule))
                if steps is not None:
                    steps.append(Step(rule, entry.via, "skipped",
                                      f"destination is guarded ({guarded.kind}) and the rule"
                                      " does not name it"))
                continue
            # A rule may match several ways (a host and a CIDR); it is judged once, on its
            # best-ranked way that is not held back by the guard.
            seen.add(id(rule))
            held_back.discard(id(rule))
            if rule.plain:
                outcome, why = Outcome.MATCH, ""
            else:
                outcome, why = rule.check(request, now)
            report = rule.mode is EnforcementMode.REPORT
            if outcome is Outcome.NO_MATCH or (report and outcome is Outcome.NEEDS_L7):
                if steps is not None:
                    steps.append(Step(rule, entry.via, "skipped", why))
                continue
            if outcome is Outcome.MATCH and guarded is None:
                decision = rule.decision
            else:
                decision = self._decision(rule, outcome, why, guarded)
            if report:
                if shadow is None:
                    shadow = decision
                if steps is not None:
                    steps.append(Step(rule, entry.via, "shadow", "report mode: recorded as"
                                      " would-be, not enforced"))
                continue
            decided = decision if shadow is None else replace(decision, shadow=shadow)
            if steps is not None:
                steps.append(Step(rule, entry.via, "decided", why or "all conditions match"))
        if decided is not None:
            return decided
        return self._no_match(guarded, bool(held_back), shadow)

    def _no_match(
        self, guarded: GuardHit | None, guard_skipped: bool, shadow: Decision | None
    ) -> Decision:
        if guarded is None:
            return self._default if shadow is None else replace(self._default, shadow=shadow)
        if guard_skipped:
            reason = (f"destination is in the guard class ({guarded.kind}) and no rule names"
                      " it; default deny")
        else:
            reason = "no rule matched; default deny"
        return Decision(Action.DENY, reason, None, None, self.bundle_version, shadow=shadow,
                        flags=(f"guarded:{guarded.kind}",))

    def _decision(
        self, rule: CompiledRule, outcome: Outcome, why: str, guarded: GuardHit | None
    ) -> Decision:
        version = self.bundle_version
        flags: tuple[str, ...] = (f"guarded:{guarded.kind}",) if guarded is not None else ()
        if outcome is Outcome.NEEDS_L7:
            return Decision(
                Action.INSPECT,
                f"rule {rule.label} can only be decided by the L7 engine ({why})",
                rule.policy_id, rule.rule_id, version, rule.mode, flags=(*flags, "needs-l7"),
            )
        if outcome is Outcome.ERROR:
            return Decision(
                Action.DENY,
                f"rule {rule.label}: {why}; failing closed",
                rule.policy_id, rule.rule_id, version, rule.mode,
                flags=(*flags, "condition-error"),
            )
        return replace(rule.decision, flags=flags)
