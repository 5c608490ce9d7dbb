"""Deciding one queued packet: bytes and context in, a stamped mark and an audit event out.

Pure: the caller passes the packet, its mark and input interface, the lease table, the
plan and the time; nothing here touches a socket, the kernel or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from gatewayd.audit import AuditEvent, new_event_id
from gatewayd.errors import ParseError
from gatewayd.identity import Identity, LeaseTable, Quarantine
from gatewayd.netfilter.marks import Marks, State
from gatewayd.packets import Packet, format_address, parse_packet
from gatewayd.policy import Action, Decision, Plan, Request

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

_PROTOCOLS = {6: "tcp", 17: "udp"}

NO_L7 = "the L7 engine is not running here, so flows to inspect are refused"

# While a UDP flow's first datagram waits for its verdict, its next datagrams arrive as new
# flows too (their conntrack entries are not confirmed yet), and a denied UDP flow is never
# confirmed at all. The decider remembers UDP verdicts this long, so one flow is one
# decision and one audit record.
UDP_REPEAT_S = 2.0
MAX_REMEMBERED = 65536


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
    l7_refused: bool = False
    # A later datagram of a UDP flow this decider decided a moment ago: same verdict, and
    # no second audit record.
    repeat: bool = False

    @property
    def agent_id(self) -> str | None:
        return self.identity.agent_id if self.identity is not None else None

    def event(self) -> AuditEvent:
        now = self.now
        fields: dict[str, Any] = {"iface": self.iface}
        packet = self.packet
        if packet is not None:
            fields.update(_flow_fields(packet, _PROTOCOLS.get(packet.protocol, str(
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
            fields["reason"] = (f"{decision.reason}; {NO_L7}" if self.l7_refused
                                else decision.reason)
        fields["state"] = self.state.name.lower()
        fields["gateway"] = self.gateway
        fields["layer"] = "l4"
        return AuditEvent("flow.verdict", now, fields, new_event_id(now))


def state_for(decision: Decision, *, l7_available: bool) -> State:
    state = _STATES[decision.action]
    if state is State.INSPECT and not l7_available:
        return State.DENY
    return state


class Decider:
    """Decides queued packets against one lease table and one plan (both immutable)."""

    def __init__(
        self,
        *,
        plan: Plan,
        leases: LeaseTable,
        marks: Marks,
        interfaces: Mapping[int, str],
        gateway: str,
        l7_available: bool = False,
        quarantined: Mapping[str, Quarantine] | None = None,
    ) -> None:
        self.plan = plan
        self.leases = leases
        self.quarantined: Mapping[str, Quarantine] = quarantined or {}
        self.marks = marks
        self.interfaces = interfaces
        self.gateway = gateway
        self.l7_available = l7_available
        self._udp: dict[tuple[int, bytes, int, bytes, int], tuple[float, FlowVerdict]] = {}

    def decide(self, payload: bytes, mark: int, indev: int, now: float) -> FlowVerdict:
        iface = self.interfaces.get(indev)
        try:
            packet = parse_packet(payload)
        except ParseError as exc:
            return self._refuse(mark, now, iface, f"unreadable packet: {exc}", "parse-error")
        protocol = _PROTOCOLS.get(packet.protocol)
        if protocol is None or packet.fragment == "later":
            return self._refuse(mark, now, iface, "not the first packet of a TCP or UDP flow",
                                "not-a-flow", packet)
        key = None
        if protocol == "udp":
            key = (indev, packet.src, packet.sport, packet.dst, packet.dport)
            seen = self._udp.get(key)
            if seen is not None and now < seen[0]:
                first = seen[1]
                return first._replace(mark=self.marks.stamp(mark, first.state), now=now,
                                      repeat=True)
        verdict = self._decide(packet, protocol, iface, mark, now)
        if key is not None:
            if len(self._udp) >= MAX_REMEMBERED:
                self._udp.clear()
            self._udp[key] = (now + UDP_REPEAT_S, verdict)
        return verdict

    def _decide(
        self, packet: Packet, protocol: str, iface: str | None, mark: int, now: float
    ) -> FlowVerdict:
        identity = (
            self.leases.identity_for(packet.src, iface, now) if iface is not None else None
        )
        if identity is not None and identity.agent_id in self.quarantined:
            held = self.quarantined[identity.agent_id]
            return self._refuse(mark, now, iface, f"agent {identity.agent_id} is quarantined:"
                                f" {held.reason}", "quarantined", packet, identity)
        request = Request(
            identity=identity,
            dest_ip=packet.dst_ip,
            port=packet.dport,
            protocol="tcp" if protocol == "tcp" else "udp",
            layer="l4",
        )
        decision = self.plan.evaluate(request, now)
        state = state_for(decision, l7_available=self.l7_available)
        l7_refused = state is State.DENY and decision.action not in (Action.DENY,
                                                                      Action.QUARANTINE)
        return FlowVerdict(state, self.marks.stamp(mark, state), decision, now, self.gateway,
                           iface, packet, identity, None, l7_refused)

    def _refuse(
        self,
        mark: int,
        now: float,
        iface: str | None,
        reason: str,
        flag: str,
        packet: Packet | None = None,
        identity: Identity | None = None,
    ) -> FlowVerdict:
        return FlowVerdict(State.DENY, self.marks.stamp(mark, State.DENY), None, now,
                           self.gateway, iface, packet, identity, (reason, flag))


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
