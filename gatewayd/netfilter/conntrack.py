"""Tracked flows, and ending them: conntrack over netlink (pyroute2).

``flows(marks)`` lists the flows the kernel tracks in the calling thread's network
namespace (conntrack zone 0), with the Clawgress state read from each conntrack mark.
``end_flows`` sets the *deny* state on matching flows, changing only the state bits (the
kernel applies the change under a mask, so other owners' bits stay): their next packet from
the agent is answered with a reset (TCP) or admin-prohibited, and replies from upstream go
to the reset queue. Used when a lease is revoked, an agent quarantined, or policy now
denies a destination. ``delete_flows`` forgets flows instead: their next packet starts an
undecided flow, which the engine decides afresh.

These calls block on netlink; from asyncio, run them in a worker thread (``asyncio.to_thread``;
a new thread starts in its creator's network namespace).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.marks import Marks, State

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FAMILIES: tuple[tuple[Literal[4, 6], int], ...] = ((4, socket.AF_INET), (6, socket.AF_INET6))
_ICMP = frozenset({socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6})


@dataclass(frozen=True)
class Flow:
    """A tracked flow as its original direction saw it, and its Clawgress state."""

    family: Literal[4, 6]
    protocol: int
    src: IPAddress
    dst: IPAddress
    # Ports for TCP, UDP and the like; ``None`` for ICMP.
    sport: int | None
    dport: int | None
    # (type, code, id) for ICMP; ``None`` otherwise.
    icmp: tuple[int, int, int] | None
    mark: int
    # ``None`` when the state bits hold a code Clawgress never writes.
    state: State | None

    @property
    def key(self) -> tuple[object, ...]:
        """What identifies the flow to the kernel: its original tuple."""
        return (self.family, self.protocol, self.src, self.dst, self.sport, self.dport, self.icmp)


# Which flows: a predicate, or the flows themselves (as ``flows`` returned them).
FlowSelector = Callable[[Flow], bool] | Iterable[Flow]


def flows(marks: Marks) -> list[Flow]:
    """Every tracked flow, IPv4 then IPv6."""
    out: list[Flow] = []
    for family, af in _FAMILIES:
        with _socket(af) as ct:
            try:
                entries = list(ct.dump_entries())
            except OSError as exc:
                raise NetfilterError(f"conntrack dump failed: {exc}") from None
        out.extend(flow_from_entry(family, e, marks) for e in entries)
    return out


def end_flows(select: FlowSelector, marks: Marks) -> int:
    """Set *deny* on the selected flows; how many changed (already denied ones do not)."""
    changed = 0
    for flow in _selected(select, marks):
        if flow.state is State.DENY:
            continue
        if _request(flow, "set", mark=marks.value(State.DENY), mark_mask=marks.state_mask):
            changed += 1
    return changed


def delete_flows(select: FlowSelector, marks: Marks) -> int:
    """Forget the selected flows; how many were deleted."""
    return sum(1 for flow in _selected(select, marks) if _request(flow, "del"))


def _selected(select: FlowSelector, marks: Marks) -> Iterator[Flow]:
    if callable(select):
        yield from (f for f in flows(marks) if select(f))
    else:
        yield from select


def _request(flow: Flow, cmd: str, **attrs: int) -> bool:
    """Send ``cmd`` for ``flow``; ``False`` when the kernel no longer tracks it."""
    from pyroute2.netlink.exceptions import NetlinkError  # noqa: PLC0415

    af = socket.AF_INET if flow.family == 4 else socket.AF_INET6
    with _socket(af) as ct:
        try:
            ct.entry(cmd, tuple_orig=_tuple(flow, af), **attrs)
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return False
            raise NetfilterError(f"conntrack {cmd} of {_describe(flow)}: {exc}") from None
        except OSError as exc:
            raise NetfilterError(f"conntrack {cmd} of {_describe(flow)}: {exc}") from None
    return True


def _socket(af: int) -> Any:
    try:
        from pyroute2 import Conntrack  # noqa: PLC0415 - netlink only when used
    except ImportError:
        raise NetfilterError("pyroute2 is not importable") from None
    try:
        return Conntrack(nfgen_family=af)
    except OSError as exc:
        raise NetfilterError(f"cannot open a conntrack netlink socket: {exc}") from None


def _tuple(flow: Flow, af: int) -> Any:
    from pyroute2.conntrack import NFCTAttrTuple  # noqa: PLC0415

    kw: dict[str, Any] = {
        "family": af,
        "saddr": str(flow.src),
        "daddr": str(flow.dst),
        "proto": flow.protocol,
    }
    if flow.icmp is not None:
        kw["icmp_type"], kw["icmp_code"], kw["icmp_id"] = flow.icmp
    else:
        kw["sport"], kw["dport"] = flow.sport, flow.dport
    return NFCTAttrTuple(**kw)


def flow_from_entry(family: Literal[4, 6], entry: Any, marks: Marks) -> Flow:
    """A ``Flow`` from a pyroute2 ``ConntrackEntry`` (its original tuple and mark)."""
    t = entry.tuple_orig
    mark = int(entry.mark or 0)
    icmp = None
    sport = dport = None
    if t.proto in _ICMP:
        icmp = (int(t.icmp_type or 0), int(t.icmp_code or 0), int(t.icmp_id or 0))
    else:
        sport = None if t.sport is None else int(t.sport)
        dport = None if t.dport is None else int(t.dport)
    return Flow(
        family=family,
        protocol=int(t.proto),
        src=ipaddress.ip_address(t.saddr),
        dst=ipaddress.ip_address(t.daddr),
        sport=sport,
        dport=dport,
        icmp=icmp,
        mark=mark,
        state=marks.state_of(mark),
    )


def _describe(flow: Flow) -> str:
    ports = f" {flow.sport}->{flow.dport}" if flow.sport is not None else ""
    return f"flow {flow.src}->{flow.dst} protocol {flow.protocol}{ports}"
