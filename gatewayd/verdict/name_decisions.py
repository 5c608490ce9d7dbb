"""What policy says of a flow by the names its agent resolved for the flow's address.

Each name is judged by the plan as the flow's host; one name decides alone. Several names
(addresses shared on a CDN) whose rules disagree: the most restrictive decides, flagged
``names-disagree`` (a TLS flow's SNI then says which name it is for, see ``hello``).

Pure: the plan and the time are passed in; no IO.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gatewayd.identity import Identity
from gatewayd.netfilter.marks import State
from gatewayd.policy import Decision, Plan, Request
from gatewayd.verdict.verdicts import state_for

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# States from the most restrictive.
_RESTRICTIVE = {State.DENY: 0, State.INSPECT: 1, State.PENDING: 2, State.ALLOW: 3,
                State.UNDECIDED: 4}


def each_name(
    plan: Plan, identity: Identity | None, names: tuple[str, ...], dest_ip: IPAddress,
    port: int, protocol: Any, now: float,
) -> list[tuple[Decision, str]]:
    """The decision for each of ``names`` as the flow's host, with that name."""
    return [
        (plan.evaluate(Request(identity=identity, dest_ip=dest_ip, host=name,
                               port=port, protocol=protocol, layer="l4"), now), name)
        for name in names
    ]


def combined(
    decisions: list[tuple[Decision, str]], *, l7_available: bool
) -> tuple[Decision, str | None, tuple[str, ...]]:
    """One name: its rules decide. Several (addresses shared on a CDN) that disagree:
    the most restrictive decides, flagged ``names-disagree``; a TLS flow's SNI says
    which name it is for."""
    if len(decisions) == 1:
        return decisions[0][0], decisions[0][1], ()
    states = {state_for(d, l7_available=l7_available) for d, _ in decisions}
    if len(states) == 1:
        return decisions[0][0], decisions[0][1], ()
    decision, name = min(decisions, key=lambda dn: _RESTRICTIVE[
        state_for(dn[0], l7_available=l7_available)])
    return decision, name, ("names-disagree",)


def by_names(
    plan: Plan, identity: Identity | None, names: tuple[str, ...], dest_ip: IPAddress,
    port: int, protocol: Any, now: float, *, l7_available: bool,
) -> tuple[Decision, str | None, tuple[str, ...]]:
    """The decision for a flow to an address the agent resolved ``names`` to, the name
    it was taken by, and flags."""
    return combined(each_name(plan, identity, names, dest_ip, port, protocol, now),
                    l7_available=l7_available)
