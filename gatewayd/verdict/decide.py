"""Deciding one queued packet: bytes and context in, a stamped mark and an audit event out.

Three kinds of packet reach the engine, told apart by the state the ruleset put in their
mark before queueing them:

* undecided (0): the first packet of a new flow. Decided by identity, address, port and
  the names the agent resolved for that address (``ResolvedNames``); a TCP flow to a TLS
  port, under a policy that names hosts, is admitted *pending* when its ClientHello could
  change the outcome. A UDP query to port 53 is also read as below.
* pending: a client segment of a pending flow. Its bytes are added to the flow's stream
  until the ClientHello is complete, then the flow is decided once, by the SNI (see
  ``docs/bypass-matrix.md`` for every outcome).
* allow: a DNS message on an allowed flow. Queries for names a deny rule names are
  answered by the gateway (NXDOMAIN, REFUSED or dropped); answers teach the engine which
  names resolved to which addresses, unless they point into the guard class or a private
  range no rule names, which is refused (DNS rebinding).

Pure: the caller passes the packet, its mark and input interface, the lease table, the
plan, what was observed before and the time; nothing here touches a socket, the kernel
or the clock.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from gatewayd.audit import AuditEvent, new_event_id
from gatewayd.config import NamesSection
from gatewayd.errors import ParseError
from gatewayd.identity import Identity, LeaseTable, Quarantine
from gatewayd.netfilter.marks import Marks, State
from gatewayd.packets import (
    TCP_SYN,
    ClientHello,
    ClientHelloTooLarge,
    DnsMessage,
    Packet,
    build_negative_answer,
    client_hello_from_initials,
    format_address,
    ja4,
    parse_client_hello,
    parse_dns_message,
    parse_packet,
    parse_quic_initial,
    split_tcp_dns,
    udp_reply_for,
    with_udp_payload,
)
from gatewayd.policy import Action, Decision, Plan, Request
from gatewayd.verdict.dns_transports import is_encrypted_dns
from gatewayd.verdict.resolved import ResolvedNames
from gatewayd.verdict.streams import Feed, Streams

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

DNS_PORT = 53
TCP = 6
UDP = 17
# Streams read at once, and how long one may wait for its next segment.
MAX_STREAMS = 16384
STREAM_IDLE_S = 30.0
MAX_DNS_STREAM = 65537
# Flows decided by a name, remembered so that a reload judges them by the same name.
MAX_DECIDED_HOSTS = 262144
_NEGATIVE = {"nxdomain": "NXDOMAIN", "refused": "REFUSED"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
HostKey = tuple[bytes, int, bytes, int, int]


@dataclass
class Observed:
    """What the engine read off the wire, kept across reloads of leases and policy."""

    settings: NamesSection
    names: ResolvedNames
    hellos: Streams
    dns: Streams
    # (src, sport, dst, dport, protocol) of flows decided by a name → that name.
    hosts: OrderedDict[HostKey, str] = field(default_factory=OrderedDict)

    @classmethod
    def from_settings(cls, settings: NamesSection) -> Observed:
        return cls(
            settings,
            ResolvedNames(min_ttl=settings.min_ttl_s, max_ttl=settings.max_ttl_s,
                          max_addresses=settings.max_addresses_per_agent),
            Streams(max_flows=MAX_STREAMS, max_bytes=settings.max_client_hello + 5 * 16,
                    idle_s=STREAM_IDLE_S),
            Streams(max_flows=MAX_STREAMS, max_bytes=MAX_DNS_STREAM, idle_s=STREAM_IDLE_S),
        )

    def decided_by(self, key: HostKey, host: str) -> None:
        hosts = self.hosts
        hosts[key] = host
        if len(hosts) > MAX_DECIDED_HOSTS:
            hosts.popitem(last=False)

    def expire(self, now: float) -> None:
        self.names.expire(now)
        self.hellos.expire(now)
        self.dns.expire(now)


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
        prior = self.marks.state_of(mark)
        if prior is State.PENDING and not packet.tcp_flags & TCP_SYN:
            return self._hello(packet, payload, iface, mark, now)
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
                return self._query(packet, payload, verdict, now)
        verdict = self._decide(packet, payload, protocol, iface, mark, now)
        if key is not None:
            if len(self._udp) >= MAX_REMEMBERED:
                self._udp.clear()
            self._udp[key] = (now + UDP_REPEAT_S, verdict)
            verdict = self._query(packet, payload, verdict, now)
        return verdict

    # --- new flows ---------------------------------------------------------------------

    def _decide(
        self, packet: Packet, raw: bytes, protocol: str, iface: str | None, mark: int,
        now: float,
    ) -> FlowVerdict:
        identity = (
            self.leases.identity_for(packet.src, iface, now) if iface is not None else None
        )
        if identity is not None and identity.agent_id in self.quarantined:
            held = self.quarantined[identity.agent_id]
            return self._refuse(mark, now, iface, f"agent {identity.agent_id} is quarantined:"
                                f" {held.reason}", "quarantined", packet, identity)
        dest_ip = packet.dst_ip
        transport: Any = "tcp" if protocol == "tcp" else "udp"
        by_address = self.plan.evaluate(
            Request(identity=identity, dest_ip=dest_ip, port=packet.dport, protocol=transport,
                    layer="l4"), now)
        names = (self.observed.names.names_for(identity.agent_id, packet.dst, now)
                 if identity is not None else ())
        decision, host = by_address, None
        flags: tuple[str, ...] = ()
        by_name: list[tuple[Decision, str]] = []
        if names:
            by_name = self._name_decisions(identity, names, dest_ip, packet.dport, transport,
                                           now)
            decision, host, flags = self._combined(by_name)
        state = state_for(decision, l7_available=self.l7_available)
        if (identity is not None and protocol == "tcp" and self.plan.uses_names
                and packet.dport in self.settings.tls_ports
                and self._sni_could_matter(by_address, by_name)):
            self.observed.hellos.start(_stream_key(packet), packet.seq, now)
            return FlowVerdict(State.PENDING, self.marks.stamp(mark, State.PENDING), decision,
                               now, self.gateway, iface, packet, identity, observed=True)
        if (identity is not None and protocol == "udp"
                and packet.dport in self.settings.quic_ports):
            return self._quic(packet, raw, identity, names, decision, host, flags, iface,
                              mark, now)
        if host is not None and state is not State.DENY:
            self.observed.decided_by(_host_key(packet), host)
        l7_refused = state is State.DENY and decision.action not in (Action.DENY,
                                                                      Action.QUARANTINE)
        details = {"host": host, "names": list(names)} if names else None
        if is_encrypted_dns(host, str(dest_ip), packet.dport):
            flags = (*flags, "encrypted-dns")
        return FlowVerdict(state, self.marks.stamp(mark, state), decision, now, self.gateway,
                           iface, packet, identity, None, l7_refused, details=details,
                           flags=flags)

    def _by_names(
        self, identity: Identity | None, names: tuple[str, ...], dest_ip: IPAddress,
        port: int, protocol: Any, now: float,
    ) -> tuple[Decision, str | None, tuple[str, ...]]:
        """The decision for a flow to an address the agent resolved ``names`` to."""
        return self._combined(self._name_decisions(identity, names, dest_ip, port, protocol,
                                                   now))

    def _name_decisions(
        self, identity: Identity | None, names: tuple[str, ...], dest_ip: IPAddress,
        port: int, protocol: Any, now: float,
    ) -> list[tuple[Decision, str]]:
        return [
            (self.plan.evaluate(Request(identity=identity, dest_ip=dest_ip, host=name,
                                        port=port, protocol=protocol, layer="l4"), now), name)
            for name in names
        ]

    def _combined(
        self, decisions: list[tuple[Decision, str]]
    ) -> tuple[Decision, str | None, tuple[str, ...]]:
        """One name: its rules decide. Several (addresses shared on a CDN) that disagree:
        the most restrictive decides, flagged ``names-disagree``; a TLS flow's SNI says
        which name it is for."""
        if len(decisions) == 1:
            return decisions[0][0], decisions[0][1], ()
        states = {state_for(d, l7_available=self.l7_available) for d, _ in decisions}
        if len(states) == 1:
            return decisions[0][0], decisions[0][1], ()
        decision, name = min(decisions, key=lambda dn: _RESTRICTIVE[
            state_for(dn[0], l7_available=self.l7_available)])
        return decision, name, ("names-disagree",)

    def _sni_could_matter(self, by_address: Decision,
                          by_name: list[tuple[Decision, str]]) -> bool:
        """Whether the ClientHello could decide this flow otherwise than deny: the address,
        one of the names resolved for it, or (when mismatches are only flagged) any SNI."""
        if self.settings.sni_mismatch == "flag":
            return True
        return any(state_for(d, l7_available=self.l7_available) is not State.DENY
                   for d in (by_address, *(d for d, _ in by_name)))

    # --- QUIC -------------------------------------------------------------------------------

    def _quic(
        self, packet: Packet, raw: bytes, identity: Identity, names: tuple[str, ...],
        by_names: Decision, host: str | None, flags: tuple[str, ...], iface: str | None,
        mark: int, now: float,
    ) -> FlowVerdict:
        """A UDP flow to a QUIC port: refused (``names.quic: deny``), or decided by the
        ClientHello in the client's first Initial packet, as for TLS over TCP."""
        version = self.plan.bundle_version
        hello: ClientHello | None = None
        found: list[str] = ["quic", *flags]
        details: dict[str, Any] = {"names": list(names)}
        decision = by_names
        if self.settings.quic == "deny":
            decision = Decision(Action.DENY, "QUIC is refused (names.quic: deny): clients fall"
                                " back to TCP, where the SNI is read", None, None, version)
            host = None
        else:
            try:
                initial = parse_quic_initial(raw[packet.payload_offset:packet.total_len])
                hello = client_hello_from_initials(initial.crypto,
                                                   self.settings.max_client_hello)
            except ParseError as exc:
                # Not a QUIC Initial: decided by the names resolved, like any UDP flow.
                found = ["not-quic", *flags]
                details["quic_error"] = str(exc)
            else:
                if hello is None:
                    found.append("quic-hello-split")
                    decision = Decision(Action.DENY, "the ClientHello does not fit in the first"
                                        " QUIC datagram; refused, the client falls back to"
                                        " TCP", None, None, version)
                    host = None
                else:
                    dest_ip = packet.dst_ip

                    def evaluate(name: str | None, sni: str | None = None) -> Decision:
                        return self.plan.evaluate(Request(
                            identity=identity, dest_ip=dest_ip, host=name, port=packet.dport,
                            protocol="udp", layer="l4", sni=sni), now)

                    decision, host = self._by_hello(hello, names, evaluate, found)
        state = state_for(decision, l7_available=self.l7_available)
        if host is not None and state is not State.DENY:
            self.observed.decided_by(_host_key(packet), host)
        details["host"] = host
        l7_refused = state is State.DENY and decision.action not in (Action.DENY,
                                                                      Action.QUARANTINE)
        return FlowVerdict(state, self.marks.stamp(mark, state), decision, now, self.gateway,
                           iface, packet, identity, None, l7_refused, details=details,
                           flags=tuple(found), hello=hello, quic=True)

    # --- pending flows: the ClientHello --------------------------------------------------

    def _hello(
        self, packet: Packet, raw: bytes, iface: str | None, mark: int, now: float
    ) -> FlowVerdict:
        key = _stream_key(packet)
        data = raw[packet.payload_offset:packet.total_len]
        pending = self.marks.stamp(mark, State.PENDING)
        if not data:  # a FIN, an RST, a window update: nothing to read
            return FlowVerdict(State.PENDING, pending, None, now, self.gateway, iface, packet,
                               observed=True)
        fed = self.observed.hellos.feed(key, packet.seq, data, now)
        if fed is Feed.GAP:
            # Out of order: dropped, the client sends it again after the bytes before it.
            return FlowVerdict(State.PENDING, pending, None, now, self.gateway, iface, packet,
                               observed=True, drop=True)
        if fed is Feed.UNKNOWN:
            return self._refuse(mark, now, iface, "the engine lost this pending flow's state",
                                "pending-lost", packet)
        if fed is Feed.TOO_LONG:
            return self._tls_verdict(packet, iface, mark, now, None, "client-hello-too-large",
                                     f"ClientHello over {self.settings.max_client_hello} bytes")
        try:
            hello = parse_client_hello(bytes(fed), max_size=self.settings.max_client_hello)
        except ClientHelloTooLarge as exc:
            self.observed.hellos.forget(key)
            return self._tls_verdict(packet, iface, mark, now, None, "client-hello-too-large",
                                     str(exc))
        except ParseError as exc:
            self.observed.hellos.forget(key)
            return self._tls_verdict(packet, iface, mark, now, None, "not-tls", str(exc))
        if hello is None:
            return FlowVerdict(State.PENDING, pending, None, now, self.gateway, iface, packet,
                               observed=True)
        self.observed.hellos.forget(key)
        return self._tls_verdict(packet, iface, mark, now, hello, None, None)

    def _tls_verdict(
        self, packet: Packet, iface: str | None, mark: int, now: float,
        hello: ClientHello | None, problem: str | None, why: str | None,
    ) -> FlowVerdict:
        """The one decision of a pending flow, once its first payload has been read."""
        identity = (self.leases.identity_for(packet.src, iface, now) if iface is not None
                    else None)
        if identity is not None and identity.agent_id in self.quarantined:
            held = self.quarantined[identity.agent_id]
            return self._refuse(mark, now, iface, f"agent {identity.agent_id} is quarantined:"
                                f" {held.reason}", "quarantined", packet, identity)
        dest_ip = packet.dst_ip
        names = (self.observed.names.names_for(identity.agent_id, packet.dst, now)
                 if identity is not None else ())
        details: dict[str, Any] = {"names": list(names)}
        flags: list[str] = []

        def evaluate(host: str | None, sni: str | None = None) -> Decision:
            return self.plan.evaluate(Request(identity=identity, dest_ip=dest_ip, host=host,
                                              port=packet.dport, protocol="tcp", layer="l4",
                                              sni=sni), now)

        host: str | None = None
        if hello is None:
            assert problem is not None
            flags.append(problem)
            if problem == "not-tls" and names:
                # Not TLS: decided by the names resolved for the address, like any protocol.
                decision, host, more = self._by_names(identity, names, dest_ip, packet.dport,
                                                      "tcp", now)
                flags.extend(more)
            elif problem == "not-tls":
                decision = evaluate(None)
            else:
                decision = Decision(Action.DENY, f"{why}; denied", None, None,
                                    self.plan.bundle_version)
        else:
            decision, host = self._by_hello(hello, names, evaluate, flags)
        state = state_for(decision, l7_available=self.l7_available)
        if host is not None and state is not State.DENY:
            self.observed.decided_by(_host_key(packet), host)
        details["host"] = host
        if is_encrypted_dns(host or (hello.sni if hello else None), str(dest_ip),
                            packet.dport):
            flags.append("encrypted-dns")
        l7_refused = state is State.DENY and decision.action not in (Action.DENY,
                                                                      Action.QUARANTINE)
        return FlowVerdict(state, self.marks.stamp(mark, state), decision, now, self.gateway,
                           iface, packet, identity, None, l7_refused, details=details,
                           flags=tuple(flags), hello=hello)

    def _by_hello(
        self, hello: ClientHello, names: tuple[str, ...],
        evaluate: Callable[..., Decision], flags: list[str],
    ) -> tuple[Decision, str | None]:
        """The decision a complete ClientHello gives, and the name it was taken by."""
        if hello.ech:
            flags.append("ech")
            if self.settings.ech == "deny":
                return Decision(Action.DENY, "the ClientHello uses Encrypted Client Hello: its"
                                " real server name cannot be read; denied", None, None,
                                self.plan.bundle_version), None
        sni = hello.sni
        if sni is None:
            flags.append("no-sni")
            decision = evaluate(None)
            return replace(decision, reason=f"no SNI, decided by address: {decision.reason}"), None
        if sni in names:
            return evaluate(sni, sni), sni
        flags.append("sni-mismatch")
        if self.settings.sni_mismatch == "flag":
            return evaluate(sni, sni), sni
        decision = evaluate(None, sni)
        resolved = ", ".join(names) if names else "no name"
        return replace(decision, reason=(
            f"SNI {sni} is not a name the agent resolved to this address ({resolved});"
            f" decided by address: {decision.reason}")), None

    # --- DNS -------------------------------------------------------------------------------

    def _query(self, packet: Packet, raw: bytes, verdict: FlowVerdict,
               now: float) -> FlowVerdict:
        """A UDP datagram to port 53 on an allowed flow: a query for a name policy denies is
        answered here and goes no further."""
        if (packet.dport != DNS_PORT or verdict.state is not State.ALLOW
                or verdict.identity is None):
            return verdict
        payload = raw[packet.payload_offset:packet.total_len]
        try:
            message = parse_dns_message(payload)
        except ParseError:
            return verdict  # not ours to judge: the resolver answers what it cannot read
        if message.flags.qr or len(message.questions) != 1:
            return verdict
        name = message.questions[0].name.normalized
        denied = self.plan.denies_name(verdict.identity, name, now)
        if denied is None:
            return verdict
        how = self.settings.denied_query
        reply = None
        if how != "drop":
            try:
                reply = udp_reply_for(raw, build_negative_answer(
                    payload, rcode=_NEGATIVE[how])  # type: ignore[arg-type]
                )
            except (ParseError, ValueError):
                reply = None
        event = AuditEvent("dns.denied", now, {
            "agent_id": verdict.identity.agent_id, "name": name,
            "qtype": message.questions[0].qtype, "answer": how if reply is not None else "drop",
            "policy_id": denied.policy_id, "rule_id": denied.rule_id, "reason": denied.reason,
            "src_ip": format_address(packet.src), "resolver": format_address(packet.dst),
            "gateway": self.gateway,
        }, new_event_id(now))
        return verdict._replace(drop=True, reply=reply, extra=(*verdict.extra, event))

    def _dns(self, packet: Packet, raw: bytes, iface: str | None, mark: int,
             now: float) -> FlowVerdict:
        """A DNS message on an allowed flow (the ruleset queues only those)."""
        allow = FlowVerdict(State.ALLOW, self.marks.stamp(mark, State.ALLOW), None, now,
                            self.gateway, iface, packet, observed=True)
        if iface is not None:
            if packet.protocol != UDP:
                return allow
            identity = self.leases.identity_for(packet.src, iface, now)
            return self._query(packet, raw, allow._replace(identity=identity), now)
        if packet.sport != DNS_PORT:
            return allow
        agent_iface = self.interface_for(packet.dst_ip)
        identity = (self.leases.identity_for(packet.dst, agent_iface, now)
                    if agent_iface is not None else None)
        if identity is None:
            return allow
        payload = raw[packet.payload_offset:packet.total_len]
        if packet.protocol == UDP:
            try:
                message = parse_dns_message(payload)
            except ParseError:
                return allow
            return self._answer(identity, message, packet, raw, allow, now)
        key = _stream_key(packet)
        if packet.tcp_flags & TCP_SYN:
            self.observed.dns.start(key, packet.seq, now)
            return allow
        if not payload:
            return allow
        fed = self.observed.dns.feed(key, packet.seq, payload, now)
        if isinstance(fed, Feed):
            return allow
        try:
            messages, used = split_tcp_dns(fed)
        except ParseError:
            self.observed.dns.forget(key)
            return allow
        self.observed.dns.consume(key, used)
        verdict = allow
        for data in messages:
            try:
                message = parse_dns_message(data)
            except ParseError:
                continue
            verdict = self._answer(identity, message, packet, None, verdict, now)
        return verdict

    def _answer(self, identity: Identity, message: DnsMessage, packet: Packet,
                raw: bytes | None, verdict: FlowVerdict, now: float) -> FlowVerdict:
        """Learn what ``message`` resolved, or refuse it when it points somewhere guarded.

        ``raw`` is the UDP packet carrying it, which a refusal rewrites into REFUSED; on
        TCP the answer passes, but the names it carries are not learnt, so flows to those
        addresses are decided by address.
        """
        if not message.flags.qr:
            return verdict
        agent = identity.agent_id
        extra = list(verdict.extra)
        refused: list[dict[str, str]] = []
        learnt = []
        for resolution in message.resolved_addresses():
            address = ipaddress.ip_address(resolution.address)
            hit = self.plan.resolution_guard(address)
            if hit is not None:
                refused.append({"name": resolution.name, "address": str(address),
                                "class": hit.kind})
            else:
                learnt.append(resolution)
        rewrite = verdict.rewrite
        if refused:
            question = message.questions[0] if message.questions else None
            if raw is not None and question is not None:
                query = _query_for(message)
                try:
                    rewrite = with_udp_payload(raw, build_negative_answer(query,
                                                                          rcode="REFUSED"))
                except (ParseError, ValueError):
                    rewrite = None
            extra.append(AuditEvent("dns.refused", now, {
                "agent_id": agent, "refused": refused,
                "reason": "the answer points into the guard class or a private range that"
                          " no rule names (DNS rebinding)",
                "answer": "refused" if rewrite is not None else "passed, not learnt",
                "dst_ip": format_address(packet.dst), "resolver": format_address(packet.src),
                "gateway": self.gateway,
            }, new_event_id(now)))
        else:
            for resolution in learnt:
                self.observed.names.record(agent, resolution.name, resolution.address,
                                           resolution.ttl, now, resolution.via)
        txt = message.txt_bytes()
        if txt > self.settings.txt_signal_bytes:
            self.observed.names.txt_signals[agent] += 1
            extra.append(AuditEvent("dns.signal", now, {
                "agent_id": agent, "signal": "txt-tunnelling", "txt_bytes": txt,
                "names": [q.name.normalized for q in message.questions],
                "threshold": self.settings.txt_signal_bytes, "gateway": self.gateway,
            }, new_event_id(now)))
        return verdict._replace(rewrite=rewrite, extra=tuple(extra))

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


_RESTRICTIVE = {State.DENY: 0, State.INSPECT: 1, State.PENDING: 2, State.ALLOW: 3,
                State.UNDECIDED: 4}


def _stream_key(packet: Packet) -> tuple[bytes, int, bytes, int]:
    return (packet.src, packet.sport, packet.dst, packet.dport)


def _host_key(packet: Packet) -> HostKey:
    return (packet.src, packet.sport, packet.dst, packet.dport, packet.protocol)


def _query_for(message: DnsMessage) -> bytes:
    """The query a response answers (its id, RD flag and first question), as bytes."""
    question = message.questions[0]
    flags = 0x0100 if message.flags.rd else 0
    return (message.id.to_bytes(2, "big") + flags.to_bytes(2, "big") + b"\x00\x01"
            + b"\x00\x00" * 3 + question.name.to_wire() + question.qtype.to_bytes(2, "big")
            + question.qclass.to_bytes(2, "big"))


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
