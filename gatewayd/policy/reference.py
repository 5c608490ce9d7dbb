"""A deliberately naive policy evaluator: the oracle the compiled plan is tested against.

It reads the validated documents directly and checks every rule against the request with
the most obvious code, sharing nothing with the plan's indexes or rank computation (it does
share the CEL condition compiler and the guard's list of destinations). Property tests
demand that both always agree; the policy benchmark measures the plan against it. It also
explains, for ``clawgress policy test --all``, why a rule that the indexes never offered
cannot match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from gatewayd.errors import ClawgressError
from gatewayd.policy.condition import compile_condition
from gatewayd.policy.decision import Decision, Request
from gatewayd.policy.documents import (
    ADMITTING,
    RESTRICTIVENESS,
    Action,
    EnforcementMode,
    PolicyDocument,
    Rule,
    SourcedDocument,
)
from gatewayd.policy.guard import Guard
from gatewayd.policy.selectors import Protocol


def _glob(pattern: str, text: str) -> bool:
    """``*`` any run (slashes too), ``?`` one character, all else literal."""
    if not pattern:
        return not text
    head = pattern[0]
    if head == "*":
        return any(_glob(pattern[1:], text[i:]) for i in range(len(text) + 1))
    if not text:
        return False
    if head == "?" or head == text[0]:
        return _glob(pattern[1:], text[1:])
    return False


def _identity_ok(rule: Rule, request: Request) -> bool:
    ident = request.identity
    assert ident is not None
    pairs = (
        (rule.identity.agent, ident.agent_id),
        (rule.identity.team, ident.team_id),
        (rule.identity.project, ident.project_id),
        (rule.identity.environment, ident.environment),
    )
    for wanted, actual in pairs:
        if wanted == "*":
            continue
        if isinstance(wanted, str):
            if wanted != actual:
                return False
        elif actual not in wanted:
            return False
    return True


Target = ipaddress.IPv4Network | ipaddress.IPv6Network | str | None


@dataclass(frozen=True)
class _Way:
    dest_class: int
    degree: int
    port_class: int
    port_degree: int
    target: Target


@dataclass(frozen=True)
class _Hit:
    kind: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    host: str | None


def _ways(rule: Rule, request: Request) -> list[_Way]:
    dest = rule.destination
    dests: list[tuple[int, int, Target]] = []
    host = request.host
    if host is not None:
        for pattern in dest.hosts:
            if pattern.startswith("*."):
                suffix = pattern[1:]  # ".example.com"
                if host.endswith(suffix) and len(host) > len(suffix):
                    dests.append((2, pattern.count("."), None))
            elif host == pattern:
                dests.append((4, 0, pattern))
    ip = request.dest_ip
    if ip is not None:
        for net in dest.cidrs:
            if net.version == ip.version and ip in net:
                if net.prefixlen == net.max_prefixlen:
                    dests.append((3, 0, net))
                else:
                    dests.append((1, net.prefixlen, net))
    if not dest.hosts and not dest.cidrs:
        dests.append((0, 0, None))
    ports: list[tuple[int, int]] = []
    if not dest.ports:
        ports.append((0, 0))
    elif request.port is not None:
        for pr in dest.port_ranges():
            if pr.low <= request.port <= pr.high:
                ports.append((2, 0) if pr.low == pr.high else (1, -(pr.high - pr.low)))
    return [_Way(d, g, pc, pd, t) for d, g, t in dests for pc, pd in ports]


def mismatch(rule: Rule, request: Request) -> str | None:
    """Why ``rule``'s identity, destination or port cannot match (``None`` if they can)."""
    if request.identity is None:
        return "no identity"
    if not _identity_ok(rule, request):
        return "identity selector does not match"
    if not _ways(rule, request):
        dest = rule.destination
        if not dest.hosts and not dest.cidrs:
            return "port does not match"
        return "destination or port does not match"
    return None


def _guard_hit(guard: Guard, request: Request) -> _Hit | None:
    kind = None
    network = None
    ip = request.dest_ip
    if ip is not None:
        hits = [(name, net) for name, net in guard.networks
                if net.version == ip.version and ip in net]
        if hits:
            kind, network = max(hits, key=lambda h: h[1].prefixlen)
    host = request.host
    guarded_host = None
    if host is not None:
        names = [name for name, h in guard.hosts if h == host]
        if not names and host.endswith(".localhost"):
            names = ["loopback"]
        if names:
            guarded_host = host
            kind = kind or names[0]
    return _Hit(kind, network, guarded_host) if kind else None


def _names(hit: _Hit, target: Target) -> bool:
    if isinstance(target, str):
        return target == hit.host
    if target is None or hit.network is None or target.version != hit.network.version:
        return False
    return (
        target.network_address in hit.network
        and target.broadcast_address in hit.network
    )


def _l7_fields(rule: Rule) -> list[str]:
    l7 = rule.l7
    names = ["methods", "paths", "providers", "models", "tools", "dlp_classes", "token_estimate"]
    return [n for n in names if getattr(l7, n)]


def _l7_ok(rule: Rule, r: Request) -> bool:
    l7 = rule.l7
    if l7.methods and (r.method is None or r.method.upper() not in l7.methods):
        return False
    if l7.paths:
        path = r.path.split("?")[0] if r.path is not None else None
        if path is None or not any(_glob(p, path) for p in l7.paths):
            return False
    if l7.providers and r.provider not in l7.providers:
        return False
    if l7.models and (r.model is None or not any(_glob(p, r.model) for p in l7.models)):
        return False
    if l7.tools and not any(_glob(p, t) for p in l7.tools for t in r.tools):
        return False
    if l7.dlp_classes and not any(
        c == w or c.startswith(w + ".") for w in l7.dlp_classes for c in r.dlp_classes
    ):
        return False
    bounds = l7.token_estimate
    if bounds is not None:
        if r.token_estimate is None:
            return False
        if bounds.min is not None and r.token_estimate < bounds.min:
            return False
        if bounds.max is not None and r.token_estimate > bounds.max:
            return False
    return True


def _key(doc: PolicyDocument, rule: Rule, ways: list[_Way]) -> tuple[object, ...]:
    best = max(ways, key=lambda w: (w.dest_class, w.degree, w.port_class, w.port_degree))
    sel = rule.identity
    id_spec = (8 if sel.agent != "*" else 0) + (4 if sel.team != "*" else 0) + (
        2 if sel.project != "*" else 0) + (1 if sel.environment != "*" else 0)
    priority = rule.priority if rule.priority is not None else doc.spec.priority
    return (
        priority,
        -best.dest_class,
        -best.degree,
        -best.port_class,
        -best.port_degree,
        -id_spec,
        0 if rule.destination.protocol == Protocol.ANY else -1,
        -len(_l7_fields(rule)),
        -RESTRICTIVENESS[rule.action],
        doc.id,
        rule.id,
    )


def _judge(
    doc: PolicyDocument,
    rule: Rule,
    request: Request,
    now: float,
    version: int | None,
    flags: tuple[str, ...],
) -> Decision | None:
    """What ``rule`` decides for ``request`` once ranked, or ``None`` if it does not hold."""
    report = EnforcementMode.REPORT in (doc.spec.enforcement_mode, rule.enforcement_mode)
    mode = EnforcementMode.REPORT if report else EnforcementMode.ENFORCE
    proto = rule.destination.protocol
    if proto != Protocol.ANY and proto.value != request.protocol:
        return None
    label = f"{doc.id}/{rule.id}"
    l7_names = _l7_fields(rule)
    if l7_names and request.layer == "l4":
        if report:
            return None
        return Decision(
            Action.INSPECT,
            f"rule {label} can only be decided by the L7 engine (needs L7 fields: "
            f"{', '.join(l7_names)})",
            doc.id, rule.id, version, mode, flags=(*flags, "needs-l7"),
        )
    if l7_names and not _l7_ok(rule, request):
        return None
    if rule.when is not None:
        cond = compile_condition(rule.when)
        if request.layer == "l4" and cond.needs_l7:
            if report:
                return None
            return Decision(
                Action.INSPECT,
                f"rule {label} can only be decided by the L7 engine (when: reads L7 fields)",
                doc.id, rule.id, version, mode, flags=(*flags, "needs-l7"),
            )
        try:
            ok = cond.evaluate(request.activation(now))
        except ClawgressError as exc:
            return Decision(
                Action.DENY,
                f"rule {label}: when: could not be evaluated: {exc}; failing closed",
                doc.id, rule.id, version, mode, flags=(*flags, "condition-error"),
            )
        if not ok:
            return None
    return Decision(rule.action, rule.reason or f"rule {label} ({rule.action})",
                    doc.id, rule.id, version, mode, flags=flags)


def evaluate(
    documents: Sequence[SourcedDocument],
    request: Request,
    *,
    guard: Guard,
    bundle_version: int | None,
    now: float = 0.0,
) -> Decision:
    """The decision for ``request``, found by checking every rule of every document."""
    if request.identity is None:
        return Decision(Action.DENY, "unknown identity: no agent is bound to this source",
                        None, None, bundle_version, flags=("unknown-identity",))
    hit = _guard_hit(guard, request)
    guarded = hit.kind if hit else None
    flags: tuple[str, ...] = (f"guarded:{guarded}",) if guarded else ()
    ranked: list[tuple[tuple[object, ...], PolicyDocument, Rule]] = []
    guard_skipped = False
    for sd in documents:
        doc = sd.document
        for rule in doc.spec.rules:
            if not _identity_ok(rule, request):
                continue
            ways = _ways(rule, request)
            if not ways:
                continue
            if hit and rule.action in ADMITTING:
                kept = [w for w in ways if _names(hit, w.target)]
                if not kept:
                    guard_skipped = True
                    continue
                ways = kept
            ranked.append((_key(doc, rule, ways), doc, rule))
    ranked.sort(key=lambda t: t[0])
    shadow: Decision | None = None
    for _, doc, rule in ranked:
        result = _judge(doc, rule, request, now, bundle_version, flags)
        if result is None:
            continue
        if result.enforcement_mode is EnforcementMode.REPORT:
            shadow = shadow or result
            continue
        return Decision(result.action, result.reason, result.policy_id, result.rule_id,
                        bundle_version, result.enforcement_mode, shadow, result.flags)
    if guarded and guard_skipped:
        reason = f"destination is in the guard class ({guarded}) and no rule names it; default deny"
    else:
        reason = "no rule matched; default deny"
    return Decision(Action.DENY, reason, None, None, bundle_version, shadow=shadow, flags=flags)
