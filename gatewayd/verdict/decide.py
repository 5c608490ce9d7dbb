"""Deciding one queued packet: bytes and context in, a stamped mark and an audit event out.

Three kinds of packet reach the engine, told apart by the state the ruleset put in their
mark before queueing them:

* undecided (0): the first packet of a new flow. Decided here by identity, address, port
  and the names the agent resolved for that address (``name_decisions``); a TCP flow to a
  TLS port, under a policy that names hosts, is admitted *pending* when its ClientHello
  could change the outcome, and a UDP flow to a QUIC port is decided by its Initial
  (``hello``). A UDP query to port 53 is also read as below.
* pending: a client segment of a pending flow. Its bytes are added to the flow's stream
  until the ClientHello is complete, then the flow is decided once, by the SNI (``hello``;
  see ``docs/bypass-matrix.md`` for every outcome).
* allow: a DNS message on an allowed flow (``dns_reading``). Queries for names a deny rule
  names are answered by the gateway (NXDOMAIN, REFUSED or dropped); answers teach the
  engine which names resolved to which addresses, unless they point into the guard class
  or a private range no rule names, which is refused (DNS rebinding).

``Decider`` is the entry point: it tells the three apart, finds who sent the packet (the
lease table), and turns what the policy decided into a ``FlowVerdict`` (``verdicts``) with
its stamped mark. What it learns off the wire is kept in ``Observed`` (``observed``).

Pure: the caller passes the packet, its mark and input interface, the lease table, the
plan, what was observed before and the time; nothing here touches a socket, the kernel
or the clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from socket import IPPROTO_TCP
from typing import Any

from gatewayd.config import NamesSection
from gatewayd.errors import ParseError
from gatewayd.identity import Identity, LeaseTable, Quarantine
from gatewayd.netfilter.marks import Marks, State
from gatewayd.packets import TCP_SYN, ClientHello, Packet, parse_packet, tcp_reset_for
from gatewayd.policy import Action, Decision, Plan, Request
from gatewayd.verdict import name_decisions
from gatewayd.verdict.dns_reading import DNS_PORT, UDP, DnsReader
from gatewayd.verdict.dns_transports import is_encrypted_dns
from gatewayd.verdict.hello import HelloReader
from gatewayd.verdict.observed import Observed, host_key, stream_key
from gatewayd.verdict.streams import Feed
from gatewayd.verdict.verdicts import (
    MID_FLOW_L7,
    NO_L7,
    PROTOCOLS,
    UDP_L7,
    FlowVerdict,
    state_for,
)

__all__ = ["Decider", "FlowVerdict", "Observed", "state_for"]

# While a UDP flow's first datagram waits for its verdict, its next datagrams arrive as new
# flows too (their conntrack entries are not confirmed yet), and a denied UDP flow is never
# confirmed at all. The decider remembers UDP verdicts this long, so one flow is one
# decision and one audit record.
UDP_REPEAT_S = 2.0
MAX_REMEMBERED = 65536

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
        observed: Observed | None = None,
        interface_for: Callable[[IPAddress], str | None] | None = None,
    ) -> None:
        self.plan = plan
        self.leases = leases
        self.quarantined: Mapping[str, Quarantine] = quarantined or {}
        self.marks = marks
        self.interfaces = interfaces
        self.gateway = gateway
        self.l7_available = l7_available
        self.observed = observed or Observed.from_settings(NamesSection())
        self.settings = self.observed.settings
        self.interface_for = interface_for or (lambda ip: None)
        self.hello_reader = HelloReader(plan=plan, settings=self.settings,
                                        streams=self.observed.hellos,
                                        l7_available=l7_available)
        self.dns_reader = DnsReader(plan=plan, settings=self.settings,
                                    names=self.observed.names, streams=self.observed.dns,
                                    gateway=gateway)
        self._udp: dict[tuple[int, bytes, int, bytes, int], tuple[float, FlowVerdict]] = {}

    def decide(self, payload: bytes, mark: int, indev: int, now: float) -> FlowVerdict:
        iface = self.interfaces.get(indev)
        try:
            packet = parse_packet(payload)
        except ParseError as exc:
            return self._refuse(mark, now, iface, f"unreadable packet: {exc}", "parse-error")
        protocol = PROTOCOLS.get(packet.protocol)
        if protocol is None or packet.fragment == "later":
            return self._refuse(mark, now, iface, "not the first packet of a TCP or UDP flow",
                                "not-a-flow", packet)
        prior = self.marks.state_of(mark)
        if prior is State.PENDING and not packet.tcp_flags & TCP_SYN:
            return self._pending(packet, payload, iface, mark, now)
        if prior is State.ALLOW:
            return self._dns(packet, payload, iface, mark, now)
        key = None
        if protocol == "udp":
            key = (indev, packet.src, packet.sport, packet.dst, packet.dport)
            seen = self._udp.get(key)
            if seen is not None and now < seen[0]:
                first = seen[1]
                verdict = first._replace(mark=self.marks.stamp(mark, first.state), now=now,
                                         repeat=True, extra=(), reply=None, drop=False)
                return self.dns_reader.query(packet, payload, verdict, now)
        verdict = self._new_flow(packet, payload, protocol, iface, mark, now)
        if key is not None:
            if len(self._udp) >= MAX_REMEMBERED:
                self._udp.clear()
            self._udp[key] = (now + UDP_REPEAT_S, verdict)
            verdict = self.dns_reader.query(packet, payload, verdict, now)
        return verdict

    # --- new flows ---------------------------------------------------------------------

    def _new_flow(
        self, packet: Packet, raw: bytes, protocol: str, iface: str | None, mark: int,
        now: float,
    ) -> FlowVerdict:
        identity = self._identity(packet, iface, now)
        held = self._held(identity, packet, iface, mark, now)
        if held is not None:
            return held
        dest_ip = packet.dst_ip
        transport: Any = "tcp" if protocol == "tcp" else "udp"

        def by_address() -> Decision:
            return self.plan.evaluate(Request(identity=identity, dest_ip=dest_ip,
                                              port=packet.dport, protocol=transport,
                                              layer="l4"), now)

        names = (self.observed.names.names_for(identity.agent_id, packet.dst, now)
                 if identity is not None else ())
        host: str | None = None
        flags: tuple[str, ...] = ()
        by_name: list[tuple[Decision, str]] = []
        if names:
            # The names decide; the address alone only matters to whether a ClientHello
            # could change the outcome.
            by_name = name_decisions.each_name(self.plan, identity, names, dest_ip,
                                               packet.dport, transport, now)
            decision, host, flags = name_decisions.combined(
                by_name, l7_available=self.l7_available)
        else:
            decision = by_address()
        if (identity is not None and protocol == "tcp" and self.plan.uses_names
                and packet.dport in self.settings.tls_ports
                and self.hello_reader.could_matter(by_address() if names else decision,
                                                   by_name)):
            if self.l7_available and self.plan.sends_to_l7:
                # The ClientHello could send this flow to the L7 engine, which can only take
                # a flow from its first packet: the L7 engine reads the ClientHello and
                # splices, intercepts or refuses the flow by it.
                hello_at_l7 = Decision(Action.INSPECT, "its ClientHello decides, read by the"
                                       " L7 engine", None, None, self.plan.bundle_version,
                                       flags=("hello-at-l7",))
                details = {"host": host, "names": list(names)} if names else None
                return self._decided(hello_at_l7, None, packet, identity, iface, mark, now,
                                     details, flags)
            self.hello_reader.start(packet, now)
            return FlowVerdict(State.PENDING, self.marks.stamp(mark, State.PENDING), decision,
                               now, self.gateway, iface, packet, identity, observed=True)
        if (identity is not None and protocol == "udp"
                and packet.dport in self.settings.quic_ports):
            quic = self.hello_reader.quic(identity, names, packet, raw, decision, host, flags,
                                          now)
            return self._decided(quic.decision, quic.host, packet, identity, iface, mark, now,
                                 quic.details, quic.flags, quic.hello, quic=True)
        details = {"host": host, "names": list(names)} if names else None
        if is_encrypted_dns(host, str(dest_ip), packet.dport):
            flags = (*flags, "encrypted-dns")
        verdict = self._decided(decision, host, packet, identity, iface, mark, now, details,
                                flags)
        if (protocol == "tcp" and packet.dport == DNS_PORT and verdict.state is State.ALLOW
                and packet.tcp_flags & TCP_SYN):
            self.observed.dns.start(stream_key(packet), packet.seq, now)  # its queries
        return verdict

    # --- pending flows: the ClientHello --------------------------------------------------

    def _pending(
        self, packet: Packet, raw: bytes, iface: str | None, mark: int, now: float
    ) -> FlowVerdict:
        """A client segment of a pending flow: read until its ClientHello is complete, then
        the flow's one decision."""
        read = self.hello_reader.read(packet, raw, now)
        if read is None or read is Feed.GAP:
            # Incomplete so far. Out of order (a gap): dropped, the client sends it again
            # after the bytes before it. Stamped without a state: passing on a segment
            # never changes the flow's state (it may have been ended meanwhile).
            return FlowVerdict(State.PENDING, self._unchanged(mark), None, now, self.gateway,
                               iface, packet, observed=True, drop=read is Feed.GAP)
        if isinstance(read, Feed):
            lost = self._refuse(mark, now, iface, "the engine lost this pending flow's state",
                                "pending-lost", packet)
            return lost._replace(reply=reset_toward_server(raw))
        identity = self._identity(packet, iface, now)
        held = self._held(identity, packet, iface, mark, now)
        if held is not None:
            return held
        names = (self.observed.names.names_for(identity.agent_id, packet.dst, now)
                 if identity is not None else ())
        tls = self.hello_reader.tls(identity, names, packet, read, now)
        verdict = self._decided(tls.decision, tls.host, packet, identity, iface, mark, now,
                                tls.details, tls.flags, tls.hello, mid_flow=True)
        if verdict.state is State.DENY:
            # The agent gets a reset from the ruleset; the server, which has the first bytes
            # of the ClientHello, gets one from the engine.
            verdict = verdict._replace(reply=reset_toward_server(raw))
        return verdict

    # --- DNS -------------------------------------------------------------------------------

    def _dns(self, packet: Packet, raw: bytes, iface: str | None, mark: int,
             now: float) -> FlowVerdict:
        """A DNS message on an allowed flow (the ruleset queues only those): a query from an
        agent, or an answer toward one."""
        allow = FlowVerdict(State.ALLOW, self._unchanged(mark), None, now, self.gateway,
                            iface, packet, observed=True)
        if iface is not None:
            identity = self.leases.identity_for(packet.src, iface, now)
            if packet.protocol == UDP:
                return self.dns_reader.query(packet, raw, allow._replace(identity=identity),
                                             now)
            if identity is None:
                return allow
            found = self.dns_reader.tcp_queries(identity, packet, raw, now)
            if found is None:
                return allow
            if isinstance(found, Feed):
                return allow._replace(drop=True)
            return FlowVerdict(State.DENY, self.marks.stamp(mark, State.DENY), None, now,
                               self.gateway, iface, packet, identity, observed=True,
                               extra=(found,), reply=reset_toward_server(raw))
        if packet.sport != DNS_PORT:
            return allow
        agent_iface = self.interface_for(packet.dst_ip)
        answered = (self.leases.identity_for(packet.dst, agent_iface, now)
                    if agent_iface is not None else None)
        if answered is None:
            return allow
        return self.dns_reader.answers(answered, packet, raw, allow, now)

    # --- verdicts --------------------------------------------------------------------------

    def _unchanged(self, mark: int) -> int:
        """The mark of a packet the engine passes on without deciding its flow (a DNS
        message read, part of a ClientHello): stamped, with no state, so the ruleset's
        commit chain leaves the flow's state as it is. A flow the engine ended while the
        packet waited in the queue stays ended."""
        return self.marks.stamp(mark, State.UNDECIDED)

    def _identity(self, packet: Packet, iface: str | None, now: float) -> Identity | None:
        """Who holds the packet's source on the interface it came in on."""
        return self.leases.identity_for(packet.src, iface, now) if iface is not None else None

    def _held(self, identity: Identity | None, packet: Packet, iface: str | None, mark: int,
              now: float) -> FlowVerdict | None:
        """The refusal of a flow whose agent is quarantined; ``None`` for any other."""
        if identity is None or identity.agent_id not in self.quarantined:
            return None
        held = self.quarantined[identity.agent_id]
        return self._refuse(mark, now, iface, f"agent {identity.agent_id} is quarantined:"
                            f" {held.reason}", "quarantined", packet, identity)

    def _decided(
        self, decision: Decision, host: str | None, packet: Packet, identity: Identity | None,
        iface: str | None, mark: int, now: float, details: Mapping[str, Any] | None,
        flags: tuple[str, ...], hello: ClientHello | None = None, *, quic: bool = False,
        mid_flow: bool = False,
    ) -> FlowVerdict:
        """The verdict on a flow the policy decided (by ``host``, when a name decided).

        Only a TCP flow decided at its first packet can go to the L7 engine: a UDP flow, or
        one decided by a ClientHello read mid-flow (``mid_flow``), is refused instead."""
        l7_refused = None
        if not self.l7_available:
            l7_refused = NO_L7
        elif packet.protocol != IPPROTO_TCP:
            l7_refused = UDP_L7
        elif mid_flow:
            l7_refused = MID_FLOW_L7
        state = state_for(decision, l7_available=l7_refused is None)
        if host is not None and state is not State.DENY:
            self.observed.decided_by(host_key(packet), host)
        if state is not State.DENY or decision.action in (Action.DENY, Action.QUARANTINE):
            l7_refused = None
        return FlowVerdict(state, self.marks.stamp(mark, state), decision, now, self.gateway,
                           iface, packet, identity, None, l7_refused, details=details,
                           flags=flags, hello=hello, quic=quic)

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


def reset_toward_server(segment: bytes) -> bytes | None:
    """A RST from the agent to the server in place of a client segment the gateway refuses
    (the segment's sequence number is the server's next expected byte), so the server does
    not keep a half-open connection; ``None`` if the segment cannot be read."""
    try:
        return tcp_reset_for(segment)
    except ParseError:
        return None
