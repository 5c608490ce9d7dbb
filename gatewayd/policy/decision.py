"""What the policy engine is asked, and what it answers.

``Request`` is everything a stage knows about a flow or HTTP request; fields a stage cannot
know yet are ``None`` (at L4: method, path, model, ...). ``Decision`` is the engine's answer.
Both are plain values: the engine never reads the clock, a socket or the store.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from gatewayd.identity import Identity
from gatewayd.policy.documents import Action, EnforcementMode
from gatewayd.policy.selectors import normalize_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Layer = Literal["l4", "l7"]


@dataclass(frozen=True, slots=True)
class Request:
    """A flow (``layer="l4"``) or an HTTP request (``layer="l7"``) to decide.

    ``identity`` is ``None`` when the source is unknown, which is always denied.
    ``host`` is the destination's name when one is known (from DNS, SNI or Host).
    """

    identity: Identity | None
    dest_ip: IPAddress | None = None
    host: str | None = None
    port: int | None = None
    protocol: Literal["tcp", "udp"] = "tcp"
    layer: Layer = "l4"
    sni: str | None = None
    method: str | None = None
    path: str | None = None
    provider: str | None = None
    model: str | None = None
    tools: tuple[str, ...] = ()
    dlp_classes: tuple[str, ...] = ()
    token_estimate: int | None = None
    # Derived from dest_ip once, for the evaluator's index probes: the address as an
    # integer and its IP version (0 when there is no address).
    ip_value: int = field(default=0, init=False, compare=False, repr=False)
    ip_version: int = field(default=0, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.host is not None:
            object.__setattr__(self, "host", normalize_host(self.host) or None)
        ip = self.dest_ip
        if ip is not None:
            if ip.version == 6:
                mapped = ip.ipv4_mapped
                if mapped is not None:
                    # ::ffff:a.b.c.d reaches a.b.c.d: decide it as the IPv4 address it is.
                    ip = mapped
                    object.__setattr__(self, "dest_ip", ip)
            object.__setattr__(self, "ip_value", int(ip))
            object.__setattr__(self, "ip_version", ip.version)

    def activation(self, now: float) -> dict[str, Any]:
        """The CEL activation for ``when:`` conditions: only fields that are set."""
        ident: dict[str, Any] = {}
        if self.identity is not None:
            ident = {
                "agent_id": self.identity.agent_id,
                "team_id": self.identity.team_id,
                "project_id": self.identity.project_id,
                "environment": self.identity.environment,
                "workload_fingerprint": self.identity.workload_fingerprint,
            }
        dest: dict[str, Any] = {"protocol": self.protocol}
        if self.host is not None:
            dest["host"] = self.host
        if self.dest_ip is not None:
            dest["ip"] = str(self.dest_ip)
        if self.port is not None:
            dest["port"] = self.port
        req: dict[str, Any] = {"layer": self.layer}
        for name in ("sni", "method", "path", "provider", "model", "token_estimate"):
            value = getattr(self, name)
            if value is not None:
                req[name] = value
        if self.layer == "l7":
            req["tools"] = list(self.tools)
            req["dlp_classes"] = list(self.dlp_classes)
        unix = int(now)
        return {
            "identity": ident,
            "destination": dest,
            "request": req,
            "time": {
                "unix": unix,
                "hour": (unix // 3600) % 24,
                # 1970-01-01 was a Thursday (4 when Sunday is 0).
                "weekday": (unix // 86400 + 4) % 7,
            },
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer: the same request and bundle always give the same decision.

    ``enforcement_mode`` is the mode of the rule that decided. ``shadow`` is the decision a
    report-mode (shadow) rule ranked above it would have made: recorded, not enforced.
    ``flags`` are machine-readable notes (``guarded:metadata``, ``condition-error``,
    ``needs-l7``, ``unknown-identity``, ``no-policy``).
    """

    action: Action
    reason: str
    policy_id: str | None
    rule_id: str | None
    bundle_version: int | None
    enforcement_mode: EnforcementMode = EnforcementMode.ENFORCE
    shadow: Decision | None = None
    flags: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": str(self.action),
            "reason": self.reason,
            "policy_id": self.policy_id,
            "rule_id": self.rule_id,
            "bundle_version": self.bundle_version,
            "enforcement_mode": str(self.enforcement_mode),
            "flags": list(self.flags),
        }
        out["shadow"] = self.shadow.as_dict() if self.shadow is not None else None
        return out
