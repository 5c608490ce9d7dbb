"""Compile validated policy documents into an execution plan.

Pure: documents in, ``Plan`` out. Compiling type-checks every ``when:`` condition, so a
bundle that compiles cannot fail for a reason known in advance when it is evaluated.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from gatewayd.errors import PolicyError
from gatewayd.policy.condition import Condition, compile_condition
from gatewayd.policy.documents import (
    Action,
    EnforcementMode,
    PolicyDocument,
    Rule,
    SourcedDocument,
)
from gatewayd.policy.guard import Guard, Network
from gatewayd.policy.index import DestinationIndex, Entry, IdentityIndex
from gatewayd.policy.patterns import GlobSet
from gatewayd.policy.plan import DEFAULT_MEMO_SIZE, Plan
from gatewayd.policy.rules import (
    DEST_ANY,
    DEST_CIDR,
    DEST_EXACT_HOST,
    DEST_HOST_ROUTE,
    DEST_SUFFIX,
    PORT_ANY,
    PORT_EXACT,
    PORT_RANGE,
    CompiledRule,
)
from gatewayd.policy.selectors import IDENTITY_FIELDS
from gatewayd.quota.documents import QuotaDocument
from gatewayd.quota.plan import compile_quotas

# Actions that send a flow to the L7 engine (they act on requests).
L7_ACTIONS = frozenset({Action.INSPECT, Action.THROTTLE, Action.TRANSFORM})

# Identity specificity weights: an agent selector outranks a team, and so on.
_IDENTITY_WEIGHTS = {"agent": 8, "team": 4, "project": 2, "environment": 1}


def _condition(doc: PolicyDocument, rule: Rule) -> Condition | None:
    if rule.when is None:
        return None
    try:
        return compile_condition(rule.when)
    except PolicyError as exc:
        raise PolicyError(f"policy {doc.id} rule {rule.id}: when: {exc}") from None


def compile_rule(
    doc: PolicyDocument, rule: Rule, order: int, bundle_version: int | None = None
) -> CompiledRule:
    spec = doc.spec
    report = EnforcementMode.REPORT in (spec.enforcement_mode, rule.enforcement_mode)
    sel = rule.identity
    specificity = sum(w for f, w in _IDENTITY_WEIGHTS.items() if sel.values(f) is not None)
    l7 = rule.l7
    tokens = l7.token_estimate
    return CompiledRule(
        policy_id=doc.id,
        rule_id=rule.id,
        action=rule.action,
        mode=EnforcementMode.REPORT if report else EnforcementMode.ENFORCE,
        priority=rule.priority if rule.priority is not None else spec.priority,
        reason=rule.reason,
        order=order,
        protocol=rule.destination.protocol,
        identity_specificity=specificity,
        methods=frozenset(l7.methods),
        paths=GlobSet(l7.paths),
        providers=frozenset(l7.providers),
        models=GlobSet(l7.models),
        tools=GlobSet(l7.tools),
        dlp_classes=tuple(l7.dlp_classes),
        token_min=tokens.min if tokens else None,
        token_max=tokens.max if tokens else None,
        condition=_condition(doc, rule),
        l7_fields=l7.fields(),
        bundle_version=bundle_version,
    )


def _identity_combinations(rule: Rule) -> list[tuple[str | None, ...]]:
    """Every concrete selector a rule's lists expand to (``None``: any)."""
    choices = [rule.identity.values(f) or (None,) for f in IDENTITY_FIELDS]
    return list(itertools.product(*choices))


def _add(index: DestinationIndex, rule: Rule, compiled: CompiledRule) -> None:
    dest = rule.destination
    ports = dest.port_ranges()
    # (destination leaf, class, degree, guard target, description)
    targets: list[tuple[IdentityIndex, int, int, Network | str | None, str]] = []
    for host in dest.hosts:
        if host.startswith("*."):
            suffix = host[2:]
            targets.append((index.suffix(suffix), DEST_SUFFIX, suffix.count(".") + 1, None, host))
        else:
            targets.append((index.host(host), DEST_EXACT_HOST, 0, host, host))
    for net in dest.cidrs:
        full = net.prefixlen == net.max_prefixlen
        cls, degree = (DEST_HOST_ROUTE, 0) if full else (DEST_CIDR, net.prefixlen)
        targets.append((index.cidr(net), cls, degree, net, str(net)))
    if not targets:
        targets.append((index.any, DEST_ANY, 0, None, "any destination"))
    combinations = _identity_combinations(rule)
    for leaf, cls, degree, target, via in targets:
        for values in combinations:
            ports_index = leaf.ports_for(values)
            if not ports:
                rank = compiled.rank(cls, degree, PORT_ANY, 0)
                ports_index.any.append(Entry(rank, compiled, target, via))
                continue
            for pr in ports:
                if pr.low == pr.high:
                    rank = compiled.rank(cls, degree, PORT_EXACT, 0)
                    ports_index.add_exact(pr.low, Entry(rank, compiled, target, f"{via}:{pr}"))
                else:
                    rank = compiled.rank(cls, degree, PORT_RANGE, -(pr.high - pr.low))
                    entry = Entry(rank, compiled, target, f"{via}:{pr}")
                    ports_index.ranges.append((pr.low, pr.high, entry))


def compile_plan(
    documents: Sequence[SourcedDocument],
    *,
    bundle_version: int | None,
    guard: Guard,
    memo_size: int = DEFAULT_MEMO_SIZE,
    quotas: Sequence[QuotaDocument] = (),
) -> Plan:
    """The execution plan for ``documents`` (and the bundle's ``quotas``); raises
    ``PolicyError`` naming the rule or quota at fault."""
    pairs = sorted(
        ((d.document, r) for d in documents for r in d.document.spec.rules),
        key=lambda dr: (dr[0].id, dr[1].id),
    )
    index = DestinationIndex()
    compiled_rules = []
    errors = []
    for order, (doc, rule) in enumerate(pairs):
        try:
            compiled = compile_rule(doc, rule, order, bundle_version)
        except PolicyError as exc:
            errors.append(str(exc))
            continue
        compiled_rules.append(compiled)
        _add(index, rule, compiled)
    if errors:
        raise PolicyError("\n".join(errors))
    index.freeze()
    rules = [rule for _, rule in pairs]
    return Plan(
        index=index,
        rules=tuple(compiled_rules),
        guard=guard,
        bundle_version=bundle_version,
        documents=tuple(documents),
        memo_size=memo_size,
        networks=tuple(dict.fromkeys(n for r in rules for n in r.destination.cidrs)),
        uses_names=any(r.destination.hosts for r in rules),
        sends_to_l7=any(c.action in L7_ACTIONS or c.has_l7 for c in compiled_rules),
        reads_body=any(c.reads_body for c in compiled_rules),
        quotas=compile_quotas(quotas),
        dlp={(doc.id, rule.id): {k: str(v) for k, v in rule.dlp.items()}
             for doc, rule in pairs if rule.dlp},
    )
