"""Reading the DNS messages on allowed flows: denied names answered, answers learnt or refused.

* A query for a name a deny rule names goes no further: over UDP the gateway answers it
  (NXDOMAIN, REFUSED, or dropped: ``names.denied_query``); over TCP, where an answer cannot
  be put into the stream, the flow is reset. Audited ``dns.denied``.
* An answer from one of the trusted resolvers (``names.resolvers``; any, when none are
  set) teaches which names its agent resolved to which addresses (``ResolvedNames``),
  unless it points into the guard class or a private range no rule names (DNS rebinding):
  then it is refused — over UDP rewritten into REFUSED, over TCP passed but not learnt —
  and audited ``dns.refused``. An answer with much TXT data is a tunnelling signal
  (``dns.signal``). Answers over TCP are put back in order (``Streams``) and split into
  messages.

Pure: the caller passes the packet, the verdict it has so far and the time; what is learnt
goes into the ``ResolvedNames`` and ``Streams`` given; the gateway's answer is a packet in
the verdict for the caller to send. No IO.
"""

from __future__ import annotations

import ipaddress

from gatewayd.audit import AuditEvent, new_event_id
from gatewayd.config import NamesSection
from gatewayd.errors import ParseError
from gatewayd.identity import Identity
from gatewayd.netfilter.marks import State
from gatewayd.packets import (
    TCP_SYN,
    DnsMessage,
    Packet,
    build_negative_answer,
    format_address,
    parse_dns_message,
    query_answered_by,
    split_tcp_dns,
    udp_reply_for,
    with_udp_payload,
)
from gatewayd.policy import Decision, Plan
from gatewayd.verdict.observed import stream_key
from gatewayd.verdict.resolved import ResolvedNames
from gatewayd.verdict.streams import Feed, Streams
from gatewayd.verdict.verdicts import FlowVerdict

DNS_PORT = 53
UDP = 17
_NEGATIVE = {"nxdomain": "NXDOMAIN", "refused": "REFUSED"}


class DnsReader:
    """Reads DNS queries and answers against one plan; learns into ``names``."""

    def __init__(self, *, plan: Plan, settings: NamesSection, names: ResolvedNames,
                 streams: Streams, gateway: str) -> None:
        self.plan = plan
        self.settings = settings
        self.names = names
        self.streams = streams
        self.gateway = gateway
        # Packed addresses of the resolvers whose answers teach names (empty: any).
        self.resolvers = frozenset(ip.packed for ip in settings.resolvers)

    def query(self, packet: Packet, raw: bytes, verdict: FlowVerdict,
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
        denied = self._denied(verdict.identity, message, now)
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
        event = self._denied_event(verdict.identity, message, denied, packet,
                                   how if reply is not None else "drop", now)
        return verdict._replace(drop=True, reply=reply, extra=(*verdict.extra, event))

    def tcp_queries(self, identity: Identity, packet: Packet, raw: bytes,
                    now: float) -> AuditEvent | Feed | None:
        """A client segment of an allowed DNS-over-TCP flow: the ``dns.denied`` record when
        the queries it completes ask for a name a deny rule names (the caller resets the
        flow: an answer cannot be put into a TCP stream), ``Feed.GAP`` for a segment beyond
        a gap (dropped, so the client sends it again in order), else ``None``."""
        messages = self._tcp_messages(packet, raw, now)
        if messages is Feed.GAP:
            return messages
        if isinstance(messages, Feed):
            return None
        for message in messages:
            denied = self._denied(identity, message, now)
            if denied is not None:
                self.streams.forget(stream_key(packet))
                return self._denied_event(identity, message, denied, packet, "reset", now)
        return None

    def answers(self, identity: Identity, packet: Packet, raw: bytes, verdict: FlowVerdict,
                now: float) -> FlowVerdict:
        """A packet from a resolver toward ``identity``'s agent: the DNS answer it carries
        (UDP), or the answers its TCP stream completes. Answers from a server that is not
        one of ``names.resolvers`` (when set) pass unread: they teach nothing."""
        if self.resolvers and packet.src not in self.resolvers:
            return verdict
        if packet.protocol == UDP:
            try:
                message = parse_dns_message(raw[packet.payload_offset:packet.total_len])
            except ParseError:
                return verdict
            return self._answer(identity, message, packet, raw, verdict, now)
        if packet.tcp_flags & TCP_SYN:
            self.streams.start(stream_key(packet), packet.seq, now)
            return verdict
        messages = self._tcp_messages(packet, raw, now)
        if isinstance(messages, Feed):
            return verdict
        for message in messages:
            verdict = self._answer(identity, message, packet, None, verdict, now)
        return verdict

    def _tcp_messages(self, packet: Packet, raw: bytes, now: float) -> list[DnsMessage] | Feed:
        """The DNS messages a TCP segment completes in its direction's stream (put in order
        from the SYN and framed by length), those that parse; a ``Feed`` when the segment
        could not be added (a gap, no stream, too long)."""
        payload = raw[packet.payload_offset:packet.total_len]
        if not payload:
            return []
        key = stream_key(packet)
        fed = self.streams.feed(key, packet.seq, payload, now)
        if isinstance(fed, Feed):
            return fed
        try:
            frames, used = split_tcp_dns(fed)
        except ParseError:
            self.streams.forget(key)
            return []
        self.streams.consume(key, used)
        messages = []
        for data in frames:
            try:
                messages.append(parse_dns_message(data))
            except ParseError:
                continue
        return messages

    def _denied(self, identity: Identity, message: DnsMessage, now: float) -> Decision | None:
        """The deny rule that refuses the one name ``message`` asks for, if it is a query."""
        if message.flags.qr or len(message.questions) != 1:
            return None
        return self.plan.denies_name(identity, message.questions[0].name.normalized, now)

    def _denied_event(self, identity: Identity, message: DnsMessage, denied: Decision,
                      packet: Packet, answer: str, now: float) -> AuditEvent:
        question = message.questions[0]
        return AuditEvent("dns.denied", now, {
            "agent_id": identity.agent_id, "name": question.name.normalized,
            "qtype": question.qtype, "answer": answer, "policy_id": denied.policy_id,
            "rule_id": denied.rule_id, "reason": denied.reason,
            "src_ip": format_address(packet.src), "resolver": format_address(packet.dst),
            "gateway": self.gateway,
        }, new_event_id(now))

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
            if raw is not None:
                try:
                    rewrite = with_udp_payload(raw, build_negative_answer(
                        query_answered_by(message), rcode="REFUSED"))
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
                self.names.record(agent, resolution.name, resolution.address,
                                  resolution.ttl, now, resolution.via)
        txt = message.txt_bytes()
        if txt > self.settings.txt_signal_bytes:
            self.names.txt_signals[agent] += 1
            extra.append(AuditEvent("dns.signal", now, {
                "agent_id": agent, "signal": "txt-tunnelling", "txt_bytes": txt,
                "names": [q.name.normalized for q in message.questions],
                "threshold": self.settings.txt_signal_bytes, "gateway": self.gateway,
            }, new_event_id(now)))
        return verdict._replace(rewrite=rewrite, extra=tuple(extra))
