"""What the decider returns for a queued packet: the state its flow gets, and the record.

``FlowVerdict`` says what to do with the packet (the mark to set, then accept; or drop it,
rewrite it, answer it) and why; its ``event()`` is the flow's ``flow.verdict`` audit record,
built on demand after the packet is on its way. ``state_for`` maps a policy decision to the
state its flow gets at L4.

Pure: values and the functions that read them; no IO, and the time is a field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from gatewayd.audit import AuditEvent, new_event_id
from gatewayd.identity import Identity
from gatewayd.netfilter.marks import State
from gatewayd.packets import ClientHello, Packet, format_address, ja4
from gatewayd.policy import Action, Decision

# What each action means for a flow at L4. Actions that need the L7 engine (inspect, and
# throttle and transform, which act on requests) send the flow there.
_STATES: dict[Action, State] = {
    Action.ALLOW: State.ALLOW,
    Action.ALERT: State.ALLOW,
    Action.LOG_ONLY: State.ALLOW,
    Action.DENY: State.DENY,
    Action.QUARANTINE: State.DENY,
    Action.INSPECT: State.INSPECT,
    Action.THROTTLE: State.INSPECT,
    Action.TRANSFORM: State.INSPECT,
}

# The IP protocols a flow can have, by number.
PROTOCOLS = {6: "tcp", 17: "udp"}

NO_L7 = "the L7 engine is not running here, so flows to inspect are refused"
# Why a flow that must be inspected is refused although the L7 engine runs.
UDP_L7 = "the L7 engine inspects TCP only, so UDP flows to inspect are refused"
MID_FLOW_L7 = ("this flow was admitted at L4 to read its ClientHello, and a flow cannot move"
               " to the L7 engine once it has started; refused")


class FlowVerdict(NamedTuple):
    """What to do with a queued packet — the mark to set, then accept — and why.

    The audit event is built on demand (``event()``), so the caller can release the
    packet first and pay for the record after. (A named tuple: it is made once per new
    flow, and builds several times faster than a frozen dataclass.)
    """

    state: State
    mark: int
    decision: Decision | None
    now: float
    gateway: str
    iface: str | None
    packet: Packet | None = None
    identity: Identity | None = None
    # For refusals decided before the policy (no decision): why, and a flag naming it.
    refusal: tuple[str, str] | None = None
    # Why a flow policy sends to the L7 engine is refused (the engine is not running...).
    l7_refused: str | None = None
    # A later datagram of a UDP flow this decider decided a moment ago: same verdict, and
    # no second audit record.
    repeat: bool = False
    # A packet read, not decided (a DNS message, part of a ClientHello): no flow record.
    observed: bool = False
    # Drop the packet instead of accepting it; or accept it with this payload instead.
    drop: bool = False
    rewrite: bytes | None = None
    # A packet for the engine to send toward the agent (the gateway's DNS answer).
    reply: bytes | None = None
    # More records than the flow's own: DNS refusals, tunnelling signals.
    extra: tuple[AuditEvent, ...] = ()
    # Names for the flow record, and flags beyond the decision's.
    details: Mapping[str, Any] | None = None
    flags: tuple[str, ...] = ()
    # The ClientHello a pending flow was decided by: its facts (SNI, ALPN, versions, JA4)
    # go into the record, computed when the record is written, after the verdict.
    hello: ClientHello | None = None
    quic: bool = False

    @property
    def agent_id(self) -> str | None:
        return self.identity.agent_id if self.identity is not None else None

    def event(self) -> AuditEvent:
        now = self.now
        fields: dict[str, Any] = {"iface": self.iface}
        packet = self.packet
        if packet is not None:
            fields.update(_flow_fields(packet, PROTOCOLS.get(packet.protocol, str(
                packet.protocol)), self.iface))
        fields.update(_identity_fields(self.identity))
        decision = self.decision
        if decision is None:
            assert self.refusal is not None
            reason, flag = self.refusal
            fields.update({"action": "deny", "enforcement_mode": "enforce", "reason": reason,
                           "flags": [flag]})
        else:
            fields.update(_decision_fields(decision))
            fields["reason"] = (f"{decision.reason}; {self.l7_refused}" if self.l7_refused
                                else decision.reason)
        if self.flags:
            fields["flags"] = [*fields.get("flags", ()), *self.flags]
        if self.details:
            fields.update(self.details)
        hello = self.hello
        if hello is not None:
            fingerprint = ja4(hello, transport="quic" if self.quic else "tcp")
            fields.update(sni=hello.sni, alpn=[p.decode("ascii", "replace") for p in hello.alpn],
                          tls_versions=[f"{v:#06x}" for v in hello.supported_versions],
                          ja4=fingerprint, signals={"workload_fingerprint": fingerprint})
        fields["state"] = self.state.name.lower()
        fields["gateway"] = self.gateway
        fields["layer"] = "l4"
        return AuditEvent("flow.verdict", now, fields, new_event_id(now))


def state_for(decision: Decision, *, l7_available: bool) -> State:
    state = _STATES[decision.action]
    if state is State.INSPECT and not l7_available:
        return State.DENY
    return state


def _flow_fields(packet: Packet, protocol: str, iface: str | None) -> dict[str, Any]:
    return {
        "src_ip": format_address(packet.src),
        "src_port": packet.sport,
        "dst_ip": format_address(packet.dst),
        "dst_port": packet.dport,
        "protocol": protocol,
        "ip_version": packet.version,
        "iface": iface,
    }


def _identity_fields(identity: Identity | None) -> dict[str, Any]:
    if identity is None:
        return {"agent_id": None}
    return {
        "agent_id": identity.agent_id,
        "team_id": identity.team_id,
        "project_id": identity.project_id,
        "environment": identity.environment,
        "workload_fingerprint": identity.workload_fingerprint or None,
    }


def _decision_fields(decision: Decision) -> dict[str, Any]:
    shadow = decision.shadow
    return {
        "action": str(decision.action),
        "enforcement_mode": str(decision.enforcement_mode),
        "policy_id": decision.policy_id,
        "rule_id": decision.rule_id,
        "bundle_version": decision.bundle_version,
        "flags": list(decision.flags),
        "shadow": None if shadow is None else {
            "action": str(shadow.action),
            "policy_id": shadow.policy_id,
            "rule_id": shadow.rule_id,
            "reason": shadow.reason,
        },
    }
