"""One HTTP request through the decision pipeline: identity → policy → action → audit.

The L7 engine's IO shell reads a request head and asks this module, in order:

* ``who_sent`` — the identity the request is decided for: the lease of its source (on
  the interface it came in on), or on the explicit proxy a per-request assertion
  (``Proxy-Authorization``, a client certificate) that must agree with that lease when
  there is one. Nobody → refused (407 on the proxy, 403 otherwise). A quarantined agent →
  refused.
* ``which_host`` — the name the request is decided by. A connection bound to a name (a
  TLS connection decided by its SNI, a ``CONNECT`` tunnel) serves that name only: a
  request for another gets 421. On a transparent connection, the ``Host`` decides when the
  agent resolved it to the address it connected to; otherwise the request is decided by
  address and flagged ``host-mismatch`` (as for an SNI, ``names.sni_mismatch``).
* ``decide`` — the policy's decision at L7 (method, path, host, port, address, and what
  the request's body says when the policy reads it: ``gatewayd.l7.inspection``).
* ``action_for`` — what the decision does to the request: forward it, or answer in place
  of the upstream (403, 429), and whether the agent is to be quarantined.
* ``request_event`` — its one audit record, once the response is done.

Pure: the view of leases and policy, and the time, are arguments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gatewayd.audit import AuditEvent
from gatewayd.config import Config
from gatewayd.credentials import Claim, Injector
from gatewayd.identity import Identity, LeaseTable, Quarantine
from gatewayd.identity.registry import ApiKey
from gatewayd.l7.assertions import (
    AssertionRefused,
    AssertionSettings,
    KeyLookup,
    verify_client_certificate,
    verify_proxy_authorization,
)
from gatewayd.l7.inspection import NOTHING, Findings
from gatewayd.l7.responses import Answer, answer
from gatewayd.l7.target import Target
from gatewayd.policy import Action, Decision, Plan, Request
from gatewayd.quota import Admission
from gatewayd.verdict.resolved import ResolvedNames

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Via = Literal["transparent", "proxy"]

# Actions after which the request goes on upstream. `inspect` at L7 means: it was
# inspected, and nothing refused it.
FORWARDED = frozenset({Action.ALLOW, Action.ALERT, Action.LOG_ONLY, Action.INSPECT,
                       Action.TRANSFORM})


@dataclass(frozen=True, slots=True)
class View:
    """What the engine knows when a request arrives: the plan, the lease table, the
    quarantined agents, the registered agents, the names agents resolved, and the API
    keys proxy assertions are checked against (by key id), and the provider credentials
    injected for agents."""

    plan: Plan
    leases: LeaseTable
    quarantined: Mapping[str, Quarantine]
    agents: Mapping[str, Identity]
    names: ResolvedNames
    api_keys: Mapping[str, ApiKey] = field(default_factory=dict)
    # Provider credentials injected in place of agents' placeholders (none: not set up).
    credentials: Injector | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """How a connection reached the engine.

    ``dst_ip`` is where it was going (transparent) or what the proxy connected to; ``bound``
    is the name the connection serves once that is settled (the SNI a TLS connection was
    decided by, the host of a ``CONNECT``); ``tls`` says whether the engine terminated TLS.
    """

    via: Via
    src_ip: IPAddress
    src_port: int
    dst_ip: IPAddress | None
    dst_port: int
    iface: str | None
    bound: str | None = None
    tls: Literal["intercepted", "none"] = "none"
    sni: str | None = None
    # The addresses as text (what records and upstream keys use), made once.
    src_text: str = field(init=False, compare=False)
    dst_text: str | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "src_text", self.src_ip.compressed)
        object.__setattr__(self, "dst_text",
                           self.dst_ip.compressed if self.dst_ip is not None else None)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request answered by the engine: the answer, the record's reason and flag."""

    status: int
    reason: str
    flag: str
    decision: Decision | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    kind: str | None = None  # the body's `error` (by default, named by the status)

    def answer(self, request_id: str, *, close: bool = False) -> Answer:
        d = self.decision
        return answer(self.status, self.reason, request_id,
                      policy_id=d.policy_id if d else None, rule_id=d.rule_id if d else None,
                      headers=self.headers, close=close, kind=self.kind)


@dataclass(frozen=True, slots=True)
class Asserted:
    """Who a per-request assertion says sent the request, and how it said so."""

    agent_id: str
    method: str
    detail: str | None = None


def proxy_assertion(value: bytes, settings: AssertionSettings, keys: KeyLookup,
                    now: float) -> Asserted | Refusal:
    """What a ``Proxy-Authorization`` header asserts, or its refusal (407: the client
    may try again with other credentials). Secrets never reach the reason."""
    try:
        found = verify_proxy_authorization(value, settings, keys, now)
    except AssertionRefused as exc:
        return Refusal(407, f"Proxy-Authorization refused: {exc.reason}", exc.flag.value,
                       headers=((b"proxy-authenticate", b'Basic realm="clawgress"'),))
    return Asserted(found.agent_id, found.method, found.credential)


def certificate_assertion(der: bytes, settings: AssertionSettings,
                          now: float) -> Asserted | Refusal | None:
    """What a client certificate on the proxy listener asserts (``None``: nothing)."""
    try:
        found = verify_client_certificate(der, settings, now)
    except AssertionRefused as exc:
        return Refusal(403, f"client certificate refused: {exc.reason}", exc.flag.value)
    if found is None:
        return None
    return Asserted(found.agent_id, found.method, found.credential)


def who_sent(origin: Origin, view: View, asserted: Asserted | None,
             now: float) -> Identity | Refusal:
    """The identity a request is decided for (see the module docstring)."""
    lease = (view.leases.identity_for(origin.src_ip.packed, origin.iface, now)
             if origin.iface is not None else None)
    identity = lease
    if asserted is not None:
        if lease is not None and lease.agent_id != asserted.agent_id:
            return Refusal(403, f"the {asserted.method} assertion names agent"
                           f" {asserted.agent_id}, but {origin.src_ip} is leased to"
                           f" {lease.agent_id}", "assertion-mismatch")
        if lease is None:
            identity = view.agents.get(asserted.agent_id)
            if identity is None:
                return Refusal(403, f"agent {asserted.agent_id} is not registered",
                               "unknown-identity")
    if identity is None:
        if origin.via == "proxy":
            return Refusal(407, f"no agent holds {origin.src_ip} and the request carries no"
                           " Proxy-Authorization", "unknown-identity",
                           headers=((b"proxy-authenticate", b'Basic realm="clawgress"'),))
        return Refusal(403, f"unknown identity: no agent is bound to {origin.src_ip}",
                       "unknown-identity")
    held = view.quarantined.get(identity.agent_id)
    if held is not None:
        return Refusal(403, f"agent {identity.agent_id} is quarantined: {held.reason}",
                       "quarantined")
    return identity


def which_host(origin: Origin, target: Target, identity: Identity, view: View,
               settings: Config, now: float) -> tuple[str | None, tuple[str, ...]] | Refusal:
    """The name the request is decided by (``None``: by address), and flags."""
    if origin.bound is not None:
        if target.host != origin.bound:
            return Refusal(421, f"this connection serves {origin.bound}, not {target.host}",
                           "host-mismatch")
        return (None if target.is_address else origin.bound), ()
    if origin.via == "proxy":
        return (None if target.is_address else target.host), ()
    if target.is_address:
        if origin.dst_ip is not None and target.host == origin.dst_text:
            return None, ()
        return None, ("host-mismatch",)
    assert origin.dst_ip is not None
    names = view.names.names_for(identity.agent_id, origin.dst_ip.packed, now)
    if target.host in names:
        return target.host, ()
    # Not a name the agent resolved to this address (on an intercepted connection: one
    # whose SNI was missing or did not match either). As for an SNI, the address decides,
    # unless mismatches are only flagged.
    if settings.names.sni_mismatch == "flag":
        return target.host, ("host-mismatch",)
    return None, ("host-mismatch",)


def decide(origin: Origin, identity: Identity, host: str | None, method: str, path: str,
           port: int, dst_ip: IPAddress | None, plan: Plan, now: float,
           found: Findings = NOTHING) -> Decision:
    """The policy's decision on one request (with what its body says, when it was read)."""
    return plan.evaluate(Request(
        identity=identity, dest_ip=dst_ip, host=host, port=port, protocol="tcp",
        layer="l7", sni=origin.sni, method=method, path=path, provider=found.provider,
        model=found.model, tools=found.tools, dlp_classes=found.dlp_classes,
        token_estimate=found.token_estimate,
    ), now)


def decide_flow(identity: Identity, host: str | None, port: int, dst_ip: IPAddress | None,
                plan: Plan, now: float, sni: str | None = None) -> Decision:
    """The policy's decision on a connection before any request is read (a ``CONNECT``,
    a TLS connection by its ClientHello): as at L4, by host, address and port."""
    return plan.evaluate(Request(identity=identity, dest_ip=dst_ip, host=host, port=port,
                                 protocol="tcp", layer="l4", sni=sni), now)


@dataclass(frozen=True, slots=True)
class Action7:
    """What a decision does to one request: forward it (``refusal`` is ``None``) or answer
    it; ``quarantine`` says the agent is to be flagged."""

    refusal: Refusal | None
    quarantine: bool = False
    flags: tuple[str, ...] = ()


_FORWARDED = Action7(None)
_ALERTED = Action7(None, flags=("alert",))


def action_for(decision: Decision, retry_after: int) -> Action7:
    """What ``decision`` does to the request it was made for."""
    act = decision.action
    if act in FORWARDED:
        return _ALERTED if act is Action.ALERT else _FORWARDED
    if act is Action.THROTTLE:
        return Action7(Refusal(429, decision.reason, "throttled", decision,
                               headers=((b"retry-after", str(retry_after).encode()),)))
    if act is Action.QUARANTINE:
        return Action7(Refusal(403, decision.reason, "quarantine", decision), quarantine=True)
    return Action7(Refusal(403, decision.reason, "denied", decision))


@dataclass(slots=True)
class Exchange:
    """One request's record, filled in as it goes through the engine."""

    request_id: str
    started: float
    origin: Origin
    method: str = ""
    host: str | None = None
    port: int | None = None
    path: str | None = None
    identity: Identity | None = None
    decision: Decision | None = None
    status: int | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    flags: list[str] = field(default_factory=list)
    reason: str | None = None
    upstream: str | None = None
    found: Findings = NOTHING
    complete: bool = False  # the response reached the client whole
    admission: Admission | None = None  # what the quotas hold for it (quota_stage)
    reframe: bool = False  # the body was rewritten (redacted): sent with its new length
    # The placeholder credential the request carries, checked, and what injects its key.
    credential: tuple[Injector, Claim] | None = None
    # For an MCP tools/list: which tools its answer may offer (the rest are cut out).
    tool_allowed: Callable[[str], bool] | None = None
    after: dict[str, Any] = field(default_factory=dict)  # what the response watches said

    def refused(self, refusal: Refusal) -> Answer:
        self.status = refusal.status
        self.reason = refusal.reason
        if refusal.decision is not None:
            self.decision = refusal.decision
        self.flags.append(refusal.flag)
        return refusal.answer(self.request_id)


def request_event(ex: Exchange, ended: float, gateway: str) -> AuditEvent:
    """The request's audit record: ``http.request``."""
    o = ex.origin
    fields: dict[str, Any] = {
        "request_id": ex.request_id,
        "layer": "l7",
        "via": o.via,
        "tls": o.tls,
        "src_ip": o.src_text,
        "src_port": o.src_port,
        "dst_ip": o.dst_text,
        "dst_port": ex.port if ex.port is not None else o.dst_port,
        "iface": o.iface,
        "method": ex.method,
        "host": ex.host,
        "path": ex.path,
        "sni": o.sni,
        "status": ex.status,
        "bytes_out": ex.bytes_out,
        "bytes_in": ex.bytes_in,
        "latency_ms": round((ended - ex.started) * 1000, 3),
        "gateway": gateway,
    }
    if ex.upstream is not None:
        fields["upstream"] = ex.upstream
    fields.update(ex.found.record)
    fields.update(ex.after)
    ident = ex.identity
    fields.update(ident.as_dict() if ident is not None else {"agent_id": None})
    d = ex.decision
    if d is not None:
        fields.update(d.as_dict())
        if ex.reason is not None and ex.reason != d.reason:
            fields["reason"] = f"{d.reason}; {ex.reason}"
        fields["flags"] = [*d.flags, *ex.flags]
    else:
        fields.update(action="deny", reason=ex.reason, policy_id=None, rule_id=None,
                      enforcement_mode="enforce", flags=list(ex.flags), shadow=None,
                      bundle_version=None)
    fields["decision"] = fields["action"]
    return AuditEvent("http.request", ex.started, fields, ex.request_id)

