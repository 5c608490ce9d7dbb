"""Deciding a flow by its ClientHello: pending TLS flows, and QUIC flows by their Initial.

Under a policy that names hosts, a TCP flow to a TLS port is admitted *pending* when its
ClientHello could change the outcome (``could_matter``). Its client segments are put back
in order (``Streams``) until the ClientHello is complete (``read``), then the flow is
decided once (``tls``): the SNI decides when it is a name the agent resolved to the
address, else the address does (``sni-mismatch``; ``names.sni_mismatch: flag`` lets the
SNI decide); no SNI, not TLS, ECH and a ClientHello too large each have their own outcome,
all listed in ``docs/bypass-matrix.md``. A UDP flow to a QUIC port is refused
(``names.quic: deny``) or decided the same way by the ClientHello in its first Initial
(``quic``).

Pure: the caller passes the packet, the names resolved and the time, and turns what is
returned into a verdict; the only state is the ``Streams`` given. No IO.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from gatewayd.config import NamesSection
from gatewayd.errors import ParseError
from gatewayd.identity import Identity
from gatewayd.netfilter.marks import State
from gatewayd.packets import (
    ClientHello,
    ClientHelloTooLarge,
    Packet,
    client_hello_from_initials,
    parse_client_hello,
    parse_quic_initial,
)
from gatewayd.policy import Action, Decision, Plan, Request
from gatewayd.verdict import name_decisions
from gatewayd.verdict.dns_transports import is_encrypted_dns
from gatewayd.verdict.observed import stream_key
from gatewayd.verdict.streams import Feed, Streams
from gatewayd.verdict.verdicts import state_for


class Problem(NamedTuple):
    """Why a pending flow's first bytes give no ClientHello: a flag, and the detail."""

    flag: str  # "not-tls" or "client-hello-too-large"
    why: str


class HelloDecision(NamedTuple):
    """What a flow's ClientHello (or its absence) decides, and what its record says."""

    decision: Decision
    host: str | None  # the name the flow was decided by
    flags: tuple[str, ...]
    details: dict[str, Any]
    hello: ClientHello | None


class HelloReader:
    """Reads ClientHellos against one plan and says what they decide."""

    def __init__(self, *, plan: Plan, settings: NamesSection, streams: Streams,
                 l7_available: bool) -> None:
        self.plan = plan
        self.settings = settings
        self.streams = streams
        self.l7_available = l7_available

    def could_matter(self, by_address: Decision,
                     by_name: list[tuple[Decision, str]]) -> bool:
        """Whether the ClientHello could decide this flow otherwise than deny: the address,
        one of the names resolved for it, or (when mismatches are only flagged) any SNI."""
        if self.settings.sni_mismatch == "flag":
            return True
        return any(state_for(d, l7_available=self.l7_available) is not State.DENY
                   for d in (by_address, *(d for d, _ in by_name)))

    def start(self, packet: Packet, now: float) -> None:
        """A flow admitted pending at its SYN: its ClientHello is read from here."""
        self.streams.start(stream_key(packet), packet.seq, now)

    def read(self, packet: Packet, raw: bytes, now: float) -> ClientHello | Problem | Feed | None:
        """A client segment of a pending flow, added to its stream: the complete
        ClientHello, or why there is none; ``None`` while it is incomplete (or the segment
        carries no bytes); ``Feed.GAP`` for a segment out of order, ``Feed.UNKNOWN`` when
        the stream was lost."""
        data = raw[packet.payload_offset:packet.total_len]
        if not data:  # a FIN, an RST, a window update: nothing to read
            return None
        key = stream_key(packet)
        fed = self.streams.feed(key, packet.seq, data, now)
        if fed is Feed.TOO_LONG:
            return Problem("client-hello-too-large",
                           f"ClientHello over {self.settings.max_client_hello} bytes")
        if isinstance(fed, Feed):
            return fed
        try:
            hello = parse_client_hello(bytes(fed), max_size=self.settings.max_client_hello)
        except ClientHelloTooLarge as exc:
            self.streams.forget(key)
            return Problem("client-hello-too-large", str(exc))
        except ParseError as exc:
            self.streams.forget(key)
            return Problem("not-tls", str(exc))
        if hello is not None:
            self.streams.forget(key)
        return hello

    def tls(self, identity: Identity | None, names: tuple[str, ...], packet: Packet,
            read: ClientHello | Problem, now: float) -> HelloDecision:
        """The one decision of a pending flow, once its first payload has been read."""
        dest_ip = packet.dst_ip
        details: dict[str, Any] = {"names": list(names)}
        flags: list[str] = []

        def evaluate(host: str | None, sni: str | None = None) -> Decision:
            return self.plan.evaluate(Request(identity=identity, dest_ip=dest_ip, host=host,
                                              port=packet.dport, protocol="tcp", layer="l4",
                                              sni=sni), now)

        host: str | None = None
        hello: ClientHello | None = None
        if isinstance(read, Problem):
            flags.append(read.flag)
            if read.flag == "not-tls" and names:
                # Not TLS: decided by the names resolved for the address, like any protocol.
                decision, host, more = name_decisions.by_names(
                    self.plan, identity, names, dest_ip, packet.dport, "tcp", now,
                    l7_available=self.l7_available)
                flags.extend(more)
            elif read.flag == "not-tls":
                decision = evaluate(None)
            else:
                decision = Decision(Action.DENY, f"{read.why}; denied", None, None,
                                    self.plan.bundle_version)
        else:
            hello = read
            decision, host = self._by_hello(hello, names, evaluate, flags)
        details["host"] = host
        if is_encrypted_dns(host or (hello.sni if hello else None), str(dest_ip),
                            packet.dport):
            flags.append("encrypted-dns")
        return HelloDecision(decision, host, tuple(flags), details, hello)

    def quic(
        self, identity: Identity, names: tuple[str, ...], packet: Packet, raw: bytes,
        by_names: Decision, host: str | None, flags: tuple[str, ...], now: float,
    ) -> HelloDecision:
        """A UDP flow to a QUIC port: refused (``names.quic: deny``), or decided by the
        ClientHello in the client's first Initial packet, as for TLS over TCP.

        ``by_names``, ``host`` and ``flags`` are what the names resolved for the address
        decide; they stand for a datagram that is not QUIC."""
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
        details["host"] = host
        return HelloDecision(decision, host, tuple(found), details, hello)

    def _by_hello(
        self, hello: ClientHello, names: tuple[str, ...],
        evaluate: Callable[..., Decision], flags: list[str],
    ) -> tuple[Decision, str | None]:
        return by_hello(hello, names, evaluate, flags, self.settings, self.plan.bundle_version)


def by_hello(
    hello: ClientHello, names: tuple[str, ...], evaluate: Callable[..., Decision],
    flags: list[str], settings: NamesSection, bundle_version: int | None,
) -> tuple[Decision, str | None]:
    """The decision a complete ClientHello gives, and the name it was taken by (``None``:
    by address). ``evaluate(host, sni)`` asks the policy; ``names`` are the names the agent
    resolved for the address; what was noticed is appended to ``flags``. The verdict
    engine and the L7 engine both decide TLS flows with this."""
    if hello.ech:
        flags.append("ech")
        if settings.ech == "deny":
            return Decision(Action.DENY, "the ClientHello uses Encrypted Client Hello: its"
                            " real server name cannot be read; denied", None, None,
                            bundle_version), None
    sni = hello.sni
    if sni is None:
        flags.append("no-sni")
        decision = evaluate(None)
        return replace(decision, reason=f"no SNI, decided by address: {decision.reason}"), None
    if sni in names:
        return evaluate(sni, sni), sni
    flags.append("sni-mismatch")
    if settings.sni_mismatch == "flag":
        return evaluate(sni, sni), sni
    decision = evaluate(None, sni)
    resolved = ", ".join(names) if names else "no name"
    return replace(decision, reason=(
        f"SNI {sni} is not a name the agent resolved to this address ({resolved});"
        f" decided by address: {decision.reason}")), None
