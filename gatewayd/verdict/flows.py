"""Which established flows must end after leases or policy changed.

Pure: the caller lists the flows conntrack holds (with their Clawgress state), passes the
new lease table and plan, and gets back the flows to end and why. A flow ends when its
source no longer has a lease on its interface (revoked, expired, agent removed), or when
the policy now denies it: judged by the name it was decided by (``hosts``), else by the
names its agent resolved for the address (``names``), else by address. A flow that any of
those names still admits goes on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from gatewayd.identity import LeaseTable, Quarantine
from gatewayd.netfilter.marks import State
from gatewayd.policy import Plan, Request
from gatewayd.verdict.resolved import ResolvedNames
from gatewayd.verdict.verdicts import state_for

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrackedFlow(Protocol):
    """What this module needs of a conntrack flow (original direction)."""

    @property
    def protocol(self) -> int: ...
    @property
    def src(self) -> IPAddress: ...
    @property
    def dst(self) -> IPAddress: ...
    @property
    def sport(self) -> int | None: ...
    @property
    def dport(self) -> int | None: ...
    @property
    def state(self) -> State | None: ...


@dataclass(frozen=True)
class Ending:
    flow: TrackedFlow
    reason: str
    agent_id: str | None


def flows_to_end(
    flows: Iterable[TrackedFlow],
    *,
    leases: LeaseTable,
    plan: Plan,
    interface_for: Callable[[IPAddress], str | None],
    now: float,
    l7_available: bool = False,
    quarantined: Mapping[str, Quarantine] | None = None,
    hosts: Mapping[tuple[bytes, int, bytes, int, int], str] | None = None,
    names: ResolvedNames | None = None,
) -> list[Ending]:
    held = quarantined or {}
    out = []
    for flow in flows:
        if flow.state not in (State.ALLOW, State.INSPECT):
            continue
        if flow.protocol not in (6, 17) or flow.dport is None:
            continue
        iface = interface_for(flow.src)
        if iface is None:
            continue  # not a flow an agent opened
        identity = leases.identity_for(flow.src.packed, iface, now)
        if identity is None:
            out.append(Ending(flow, "no lease for the source any more (revoked or expired)",
                              None))
            continue
        if identity.agent_id in held:
            out.append(Ending(flow, f"agent quarantined: {held[identity.agent_id].reason}",
                              identity.agent_id))
            continue
        protocol: Literal["tcp", "udp"] = "tcp" if flow.protocol == 6 else "udp"
        host = None
        if hosts is not None:
            host = hosts.get((flow.src.packed, flow.sport or 0, flow.dst.packed, flow.dport,
                              flow.protocol))
        candidates: tuple[str | None, ...] = (host,)
        if host is None and names is not None:
            candidates = (*names.names_for(identity.agent_id, flow.dst.packed, now), None)
        decision = None
        for candidate in candidates:
            decision = plan.evaluate(Request(identity=identity, dest_ip=flow.dst, host=candidate,
                                             port=flow.dport, protocol=protocol, layer="l4"),
                                     now)
            if state_for(decision, l7_available=l7_available) is not State.DENY:
                break
        assert decision is not None
        if state_for(decision, l7_available=l7_available) is State.DENY:
            out.append(Ending(flow, f"policy now denies it: {decision.reason}",
                              identity.agent_id))
    return out
