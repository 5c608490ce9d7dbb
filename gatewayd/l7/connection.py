"""One client connection through the L7 engine: TLS decision, then HTTP/1.1 requests.

A connection arrives either diverted (TPROXY: its original destination is the socket's
own address) or on the explicit proxy. Its first bytes say what it carries:

* a TLS ClientHello — read whole, decided by its SNI like the verdict engine does
  (``gatewayd.verdict.hello.by_hello``): *allow* → spliced to the server untouched;
  *inspect* (or an action that needs requests: throttle, transform) → the engine ends
  the client's TLS with a leaf of the gateway CA, opens its own verified TLS connection to
  the server, and reads the HTTP inside; *deny* → reset. A client that refuses the leaf (a
  pinned client, or one that does not trust the CA) is recorded ``tls.intercept_failed``;
* anything else — HTTP/1.1 (``gatewayd.l7.http1``): each request is decided
  (``gatewayd.l7.exchange``), answered by the engine or forwarded, its response streamed
  back as it arrives (SSE included), and recorded (``http.request``). Keep-alive, chunked
  bodies, ``Expect: 100-continue`` and WebSocket upgrades (decided, then spliced) are
  handled.

On the explicit proxy, ``CONNECT host:port`` is decided by the host, answered ``200``, and
the tunnel is then treated exactly like a diverted connection to that host. Every wait is
bounded (``l7.header_timeout``, ``idle_timeout``, ``connect_timeout``,
``upstream_timeout``); a request body is read up to ``l7.inspect_body_bytes`` before it goes
on, and what is above it follows ``l7.body_over_limit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gatewayd.ai import filter_tools_list
from gatewayd.audit import AuditEvent, new_event_id
from gatewayd.config import Config
from gatewayd.credentials import CredentialRefused, Injector
from gatewayd.errors import ClawgressError, ParseError
from gatewayd.identity import Identity
from gatewayd.l7 import http1
from gatewayd.l7.ai_stage import ai_of
from gatewayd.l7.assertions import AssertionSettings
from gatewayd.l7.conn import Plain, Stream, TlsServer, splice
from gatewayd.l7.dlp_stage import DlpStage
from gatewayd.l7.exchange import (
    Action7,
    Asserted,
    Exchange,
    Origin,
    Refusal,
    View,
    action_for,
    certificate_assertion,
    decide,
    decide_flow,
    proxy_assertion,
    request_event,
    which_host,
    who_sent,
)
from gatewayd.l7.inspection import (
    Findings,
    Inspection,
    InspectionError,
    look,
)
from gatewayd.l7.interception import LeafContexts
from gatewayd.l7.quota_stage import actual, estimate, refusal_for
from gatewayd.l7.responses import REQUEST_ID_HEADER, Answer, answer
from gatewayd.l7.target import Target, TargetError, read_target
from gatewayd.l7.transform import Stage, StageError, rewrite
from gatewayd.l7.upstream import Upstream, UpstreamError, connect
from gatewayd.netfilter.marks import State
from gatewayd.packets import ClientHello, ja4, parse_client_hello
from gatewayd.policy import Action, Decision
from gatewayd.quota import Admission, QuotaEngine
from gatewayd.verdict.hello import by_hello
from gatewayd.verdict.verdicts import state_for

log = logging.getLogger("clawgress.l7")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TLS_HANDSHAKE = 0x16
# A request body read before it goes on: its parts, and whether that is all of it.
Body = tuple[list[bytes], bool]
# A refused request's body is read (and thrown away) up to this much, so the connection
# can serve the next request; beyond it the connection is closed.
DRAIN_LIMIT = 64 * 1024
# A response body that has arrived whole with its head is sent on in one piece up to this.
_WHOLE_RESPONSE = 64 * 1024

# Request headers that belong to one hop, never sent on (RFC 9110 §7.6.1), and the
# proxy's own. Framing (content-length, transfer-encoding) is kept: the body is framed
# the way the client did.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization",
    b"proxy-authenticate", b"te", b"trailer", b"upgrade", b"expect",
})
RESPONSE_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                          b"proxy-authenticate", b"trailer", b"upgrade"})


class Refused(Exception):
    """Raised inside a request to answer it in place of the upstream."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


@dataclass
class Services:
    """What every connection shares: settings, the current view, the record, the CA."""

    config: Config
    view: Callable[[], View]
    audit: Callable[[AuditEvent], None]
    quarantine: Callable[[str, Decision], None]
    leaves: LeafContexts | None
    upstream_tls: ssl.SSLContext
    # How proxy assertions are checked (l7.identity, issuers' keys loaded).
    assertions: AssertionSettings = field(default_factory=AssertionSettings)
    # The body-rewrite stages a `transform` decision runs, in order.
    transforms: tuple[Stage, ...] = ()
    # What looks at a request's body before it is decided (the AI protocol analyzer, DLP);
    # with none, requests are decided by their head and their bodies stream through.
    inspections: tuple[Inspection, ...] = ()
    # The DLP stage (also among the inspections), which applies rules' dlp: actions.
    dlp: DlpStage | None = None
    # The quota stage (budgets of the plan's Quota documents); None: no quotas counted.
    quotas: QuotaEngine | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


def _address(text: str) -> IPAddress:
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ClientConnection:
    def __init__(self, services: Services, stream: Plain, origin: Origin) -> None:
        self.s = services
        self.cfg = services.config.l7
        self.client: Stream = stream
        self.plain = stream
        self.origin = origin
        self.upstream: Upstream | None = None
        self.identity: Identity | None = None
        # What the client certificate on a TLS proxy listener asserts, if any.
        self.certificate: Asserted | Refusal | None = None
        # The connection to the original destination, opened early (``_preconnect``).
        self._early: tuple[tuple[str, int, str | None], asyncio.Task[Plain]] | None = None
        self._requests = 0  # requests read on this connection so far
        # Kept: asyncio.get_running_loop() costs a getpid() system call.
        self._loop = asyncio.get_running_loop()

    # --- entry points ------------------------------------------------------------------

    @classmethod
    def accepted(cls, services: Services, stream: Plain, via: str) -> ClientConnection:
        """The connection a listener accepted (``stream`` connected)."""
        peer = stream.get_extra_info("peername")
        local = stream.get_extra_info("sockname")
        src = _address(peer[0])
        dst = _address(local[0])
        origin = Origin(
            via="transparent" if via == "transparent" else "proxy",
            src_ip=src, src_port=int(peer[1]),
            dst_ip=dst if via == "transparent" else None,
            dst_port=int(local[1]) if via == "transparent" else 0,
            iface=services.config.interface_for(src),
        )
        conn = cls(services, stream, origin)
        tls = stream.get_extra_info("ssl_object")
        if tls is not None:
            der = tls.getpeercert(binary_form=True)
            if der:
                conn.certificate = certificate_assertion(der, services.assertions, time.time())
        return conn

    async def serve(self) -> None:
        try:
            if self.origin.via == "transparent":
                first = await self._first_bytes()
                if first is None:
                    return
                if first[0] == TLS_HANDSHAKE:
                    await self._tls(first)
                else:
                    self._preconnect(tls=False)
                    await self._http(first)
            else:
                await self._http(b"")
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            self.s.count("connections_broken")
            log.debug("connection from %s ended: %s", self.origin.src_ip, exc)
        finally:
            self._drop_early()
            if self.upstream is not None:
                self.upstream.close()
            self.client.close()

    def _preconnect(self, *, tls: bool, tls_name: str | None = None) -> None:
        """Open the connection to the flow's original destination while the client's first
        request (or its TLS handshake) is still arriving, so the two round trips overlap.
        The flow's L4 decision already admitted that destination for inspection; a request
        refused at L7 never sends a byte on it. With ``tls`` (an intercepted connection),
        TLS to the upstream for ``tls_name`` (its address when there is none)."""
        ip, port = self.origin.dst_ip, self.origin.dst_port
        if ip is None or self._early is not None:
            return
        key = (ip.compressed, port, tls_name if tls else None)
        task = asyncio.get_running_loop().create_task(connect(
            ip.compressed, port, tls=self.s.upstream_tls if tls else None,
            server_name=tls_name or ip.compressed, timeout_s=self.cfg.connect_timeout))
        self._early = (key, task)

    def _drop_early(self) -> None:
        """Close an early connection nobody used."""
        if self._early is None:
            return
        _, task = self._early
        self._early = None
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is None:
            task.result().close()

    async def _first_bytes(self) -> bytes | None:
        try:
            data = await self.client.recv(self.cfg.header_timeout)
        except TimeoutError:
            self.s.count("header_timeouts")
            return None
        return data or None

    # --- TLS ---------------------------------------------------------------------------

    async def _read_hello(self, buffered: bytes) -> tuple[bytes, ClientHello | None, str]:
        """Bytes until the ClientHello is whole (within the header timeout); the hello, or
        why there is none."""
        limit = self.s.config.names.max_client_hello
        try:
            async with asyncio.timeout(self.cfg.header_timeout):
                while True:
                    try:
                        hello = parse_client_hello(buffered, max_size=limit)
                    except ParseError as exc:
                        return buffered, None, str(exc)
                    if hello is not None:
                        return buffered, hello, ""
                    more = await self.plain.recv()
                    if not more:
                        return buffered, None, "the client closed before its ClientHello"
                    buffered += more
        except TimeoutError:
            return buffered, None, f"no whole ClientHello within {self.cfg.header_timeout} s"

    async def _tls(self, buffered: bytes, identity: Identity | None = None) -> None:
        """A TLS connection: decided by its ClientHello, then spliced, intercepted or
        refused."""
        now = time.time()
        view = self.s.view()
        origin = self.origin
        buffered, hello, problem = await self._read_hello(buffered)
        fields: dict[str, Any] = {"src_ip": origin.src_ip.compressed,
                                  "src_port": origin.src_port, "via": origin.via,
                                  "dst_port": origin.dst_port, "layer": "l7",
                                  "gateway": self.s.config.gateway.name}
        if origin.dst_ip is not None:
            fields["dst_ip"] = origin.dst_ip.compressed
        if hello is None:
            fields.update(action="deny", reason=f"not a TLS ClientHello: {problem}",
                          flags=["not-tls"], agent_id=identity.agent_id if identity else None)
            self._tls_record("tls.decision", fields, now)
            self.s.count("tls_refused")
            self.plain.abort()
            return
        if identity is None:
            who = who_sent(origin, view, None, now)
            if isinstance(who, Refusal):
                fields.update(action="deny", reason=who.reason, flags=[who.flag],
                              agent_id=None, sni=hello.sni)
                self._tls_record("tls.decision", fields, now)
                self.plain.abort()
                return
            identity = who
        self.identity = identity
        assert origin.dst_ip is not None
        if origin.bound is not None:
            names: tuple[str, ...] = (origin.bound,)
        else:
            names = view.names.names_for(identity.agent_id, origin.dst_ip.packed, now)
        dst_ip = origin.dst_ip

        def evaluate(host: str | None, sni: str | None = None) -> Decision:
            return decide_flow(identity, host, origin.dst_port, dst_ip, view.plan, now, sni)

        flags: list[str] = []
        decision, host = by_hello(hello, names, evaluate, flags, self.s.config.names,
                                  view.plan.bundle_version)
        state = state_for(decision, l7_available=True)
        fingerprint = ja4(hello, transport="tcp")
        fields.update(identity.as_dict())
        fields.update(decision.as_dict())
        fields.update(sni=hello.sni, host=host, ja4=fingerprint,
                      signals={"workload_fingerprint": fingerprint},
                      flags=[*decision.flags, *flags])
        if state is State.DENY:
            fields["tls"] = "refused"
            self._tls_record("tls.decision", fields, now)
            self.s.count("tls_refused")
            if decision.action is Action.QUARANTINE:
                self.s.quarantine(identity.agent_id, decision)
            self.plain.abort()
            return
        if state is State.ALLOW:
            fields["tls"] = "spliced"
            self._tls_record("tls.decision", fields, now)
            self.s.count("tls_spliced")
            await self._splice_to(dst_ip, origin.dst_port, buffered)
            return
        await self._intercept(hello, host, buffered, fields, now)

    async def _intercept(self, hello: ClientHello, host: str | None, buffered: bytes,
                         fields: dict[str, Any], now: float) -> None:
        """End the client's TLS with a leaf for the name it asked for, then read HTTP."""
        origin = self.origin
        assert origin.dst_ip is not None
        name = hello.sni or origin.dst_ip.compressed
        problem = None
        context = None
        if self.s.leaves is None:
            problem = ("no gateway CA is loaded, so TLS cannot be inspected (clawgress ca"
                       " init)", "no-ca")
        else:
            try:
                context = self.s.leaves.context_for(name, now)
            except (ValueError, ClawgressError) as exc:
                problem = (f"no certificate for {name}: {exc}", "no-leaf")
        if context is None:
            assert problem is not None
            fields.update(tls="refused", action="deny",
                          reason=f"{fields['reason']}; {problem[0]}",
                          flags=[*fields["flags"], problem[1]])
            self._tls_record("tls.decision", fields, now)
            self.plain.abort()
            return
        self._preconnect(tls=True, tls_name=hello.sni or origin.bound)
        tls = TlsServer(self.plain, context, buffered)
        try:
            async with asyncio.timeout(self.cfg.header_timeout):
                await tls.handshake()
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            fields.update(tls="intercept-failed", reason=f"the client refused the gateway's"
                          f" certificate or the handshake: {exc}",
                          flags=[*fields["flags"], "client-handshake-failed"])
            self._tls_record("tls.intercept_failed", fields, now)
            self.s.count("tls_intercept_failed")
            self.plain.abort()
            return
        fields["tls"] = "intercepted"
        self._tls_record("tls.decision", fields, now)
        self.s.count("tls_intercepted")
        self.client = tls
        self.origin = replace(origin, tls="intercepted", sni=hello.sni,
                              bound=origin.bound or host)
        await self._http(b"")

    def _tls_record(self, kind: str, fields: dict[str, Any], now: float) -> None:
        self.s.audit(AuditEvent(kind, now, fields, new_event_id(now)))

    async def _splice_to(self, ip: IPAddress, port: int, first: bytes) -> None:
        try:
            server = await connect(ip.compressed, port, tls=None, server_name=None,
                                   timeout_s=self.cfg.connect_timeout)
        except UpstreamError as exc:
            log.info("splice to %s port %d: %s", ip, port, exc)
            self.plain.abort()
            return
        try:
            server.send(first)
            await splice(self.client, server, self.cfg.idle_timeout)
        finally:
            server.close()

    # --- HTTP --------------------------------------------------------------------------

    async def _next(self, h: http1.Inbound, *, head: bool = False,
                    fresh: bool = False) -> http1.Event | http1.Sentinel:
        """The next client event. A request head must arrive whole within the header
        timeout of its first byte (of the connection's start, for the first request);
        before that, and between body reads, the client may be quiet for the idle timeout.
        ``TimeoutError`` when it is not."""
        event = h.next_event()
        if event is not http1.NEED_DATA:
            return event  # already read (the common case for a body that came with its head)
        loop = self._loop
        deadline = loop.time() + self.cfg.header_timeout if head and fresh else None
        while True:
            if deadline is None:
                budget = float(self.cfg.idle_timeout)
            else:
                budget = deadline - loop.time()
                if budget <= 0:
                    raise TimeoutError("request head timeout")
            data = await self.client.recv(budget)
            if head and deadline is None and data:
                deadline = loop.time() + self.cfg.header_timeout
            h.receive_data(data)
            event = h.next_event()
            if event is not http1.NEED_DATA:
                return event

    def _send(self, h: http1.Inbound, event: http1.Event) -> None:
        data = h.send(event)
        if data:
            self.client.send(data)

    def _send_data(self, h: http1.Inbound, data: bytes) -> None:
        out = h.send_data(data)
        if out:
            self.client.send(out)

    def _send_end(self, h: http1.Inbound) -> None:
        out = h.send_end()
        if out:
            self.client.send(out)

    async def _drain_client(self) -> None:
        await self.client.drain(self.cfg.idle_timeout)

    async def _answer(self, h: http1.Inbound, ans: Answer) -> None:
        self._send(h, http1.Response(status_code=ans.status, headers=list(ans.headers),
                                   reason=ans.reason))
        self._send_data(h, ans.body)
        self._send_end(h)
        await self._drain_client()

    async def _bad_request(self, h: http1.Inbound, status: int, reason: str) -> None:
        """Answer what cannot be read as a request, then close."""
        request_id = new_event_id(time.time())
        self.s.count("requests_malformed")
        ans = answer(status, reason, request_id, close=True)
        if h.our_state in (http1.IDLE, http1.SEND_RESPONSE):
            with contextlib.suppress(http1.LocalProtocolError, OSError, TimeoutError):
                await self._answer(h, ans)
        now = time.time()
        ex = Exchange(request_id, now, self.origin, status=status, reason=reason,
                      flags=["malformed"], identity=self.identity)
        self.s.audit(request_event(ex, now, self.s.config.gateway.name))

    async def _http(self, buffered: bytes) -> None:
        h = http1.Inbound(self.cfg.max_header_bytes)
        if buffered:
            h.receive_data(buffered)
        fresh = True
        while True:
            try:
                event = await self._next(h, head=True, fresh=fresh)
            except http1.RemoteProtocolError as exc:
                await self._bad_request(h, exc.error_status_hint, f"malformed request: {exc}")
                return
            except TimeoutError:
                self.s.count("header_timeouts" if fresh or h.their_state is not http1.IDLE
                             else "idle_timeouts")
                return
            fresh = False
            if not isinstance(event, http1.Request):
                return  # the client closed
            keep = await self._request(h, event)
            if not keep:
                return
            if h.our_state is http1.SWITCHED_PROTOCOL:
                return
            try:
                h.start_next_cycle()
            except http1.LocalProtocolError:
                return

    async def _request(self, h: http1.Inbound, req: http1.Request) -> bool:
        """One request, answered or forwarded; whether the connection may go on."""
        self._requests += 1
        now = time.time()
        ex = Exchange(new_event_id(now), now, self.origin, method=req.method.decode("ascii",
                                                                                  "replace"))
        self.s.count("requests")
        try:
            return await self._handle(h, req, ex)
        except Refused as refused:
            ans = ex.refused(refused.refusal)
            self.s.count(f"refused_{refused.refusal.status}")
            return await self._finish_refusal(h, ans)
        except UpstreamError as exc:
            ex.flags.append(exc.flag)
            ex.status = exc.status
            ex.reason = str(exc)
            self.s.count("upstream_failed")
            if h.our_state is http1.SEND_RESPONSE:
                await self._finish_refusal(h, answer(exc.status, str(exc), ex.request_id,
                                                     close=True))
            return False
        finally:
            if ex.found.watches:
                _watch(ex, "end", ex.status, ex.complete)
            if ex.admission is not None:
                self._settle(ex.admission, ex)
            self.s.audit(request_event(ex, time.time(), self.s.config.gateway.name))

    async def _finish_refusal(self, h: http1.Inbound, ans: Answer) -> bool:
        """Send ``ans``; keep the connection only if the request's body can be read off."""
        if h.our_state is not http1.SEND_RESPONSE:
            return False
        await self._answer(h, ans)
        drained = 0
        while h.their_state is http1.SEND_BODY:
            if h.client_is_waiting_for_100_continue:
                return False  # the body was never sent; do not wait for it
            try:
                event = await self._next(h)
            except (http1.RemoteProtocolError, TimeoutError):
                return False
            if isinstance(event, http1.Data):
                drained += len(event.data)
                if drained > DRAIN_LIMIT:
                    return False
            elif isinstance(event, http1.ConnectionClosed):
                return False
        return _both_done(h)

    def _refused_by(self, act: Action7, decision: Decision, identity: Identity) -> Refused:
        """The refusal a decision makes; a ``quarantine`` decision flags the agent too."""
        assert act.refusal is not None
        if act.quarantine:
            self.s.quarantine(identity.agent_id, decision)
        return Refused(act.refusal)

    def _refuse(self, status: int, reason: str, flag: str,
                decision: Decision | None = None) -> Refused:
        return Refused(Refusal(status, reason, flag, decision))

    async def _handle(self, h: http1.Inbound, req: http1.Request, ex: Exchange) -> bool:
        method = ex.method
        headers = req.headers
        host_header = None
        auth = None
        for name, value in headers:
            if name == b"host":
                if host_header is not None:
                    raise self._refuse(400, "more than one Host header", "malformed")
                host_header = value
            elif name == b"proxy-authorization":
                auth = value
        via = self.origin.via
        # Inside a CONNECT tunnel, requests are origin-form, as on a diverted connection.
        form = "transparent" if via == "transparent" or self.origin.bound else "proxy"
        default_port = (self.origin.dst_port if form == "transparent" else 80)
        try:
            target = read_target(method, req.target, host_header, via=form,
                                 default_port=default_port)
        except TargetError as exc:
            raise self._refuse(exc.status, str(exc), "malformed") from None
        ex.host, ex.port, ex.path = target.host, target.port, target.path or None
        view = self.s.view()
        now = ex.started
        who = self._who(view, auth, ex)
        picked = which_host(self.origin, target, who, view, self.s.config, now)
        if isinstance(picked, Refusal):
            raise Refused(picked)
        host, flags = picked
        ex.flags.extend(flags)
        if method == "CONNECT":
            return await self._connect(h, req, ex, target, who, view)
        return await self._decide(h, req, ex, target, who, host, view)

    async def _decide(self, h: http1.Inbound, req: http1.Request, ex: Exchange,
                      target: Target, who: Identity, host: str | None, view: View) -> bool:
        """The policy's decision on a request (with what its body says, when the policy
        reads that), then what it does: refused here, or forwarded."""
        method = ex.method
        via = self.origin.via
        now = ex.started
        body: Body | None = None
        if self.s.inspections and view.plan.reads_body:
            # What the body says is part of the decision: read it first.
            body = await self._read_body(h, ex)
            ex.found = self._look(ex, target, req, body)
        found = ex.found
        dst_ip = self.origin.dst_ip
        if via == "proxy" and not self.origin.bound:
            # The proxy connects by name: decide by the name first (a denied host is not
            # even resolved), then by the address it resolves to.
            if not target.is_address:
                first_decision = decide(self.origin, who, host, method, target.path,
                                        target.port, None, view.plan, now, found)
                first_action = action_for(first_decision, self.cfg.throttle_retry_after)
                if first_action.refusal is not None:
                    ex.decision = first_decision
                    raise self._refused_by(first_action, first_decision, who)
            dst_ip = await self._resolve(target, view)
        decision = decide(self.origin, who, host, method, target.path, target.port, dst_ip,
                          view.plan, now, found)
        ex.decision = decision
        if view.plan.reads_body and _lists_tools(found):
            # What an MCP server offers is cut down to what the agent may call: a tool is
            # offered when a call to it, here, would be admitted.
            def tool_allowed(name: str) -> bool:
                call = replace(found, tools=(name,))
                verdict = decide(self.origin, who, host, method, target.path, target.port,
                                 dst_ip, view.plan, now, call)
                return action_for(verdict, 0).refusal is None
            ex.tool_allowed = tool_allowed
        act = action_for(decision, self.cfg.throttle_retry_after)
        ex.flags.extend(act.flags)
        if act.refusal is not None:
            raise self._refused_by(act, decision, who)
        assert dst_ip is not None
        if self.s.inspections and body is None:
            # The policy decides by the head alone, and it admits the request: what the
            # body says is still found, for the record and what follows the decision.
            body = await self._read_body(h, ex)
            ex.found = self._look(ex, target, req, body)
        if self.s.dlp is not None and body is not None and ex.found.dlp_classes:
            body = self._dlp(self.s.dlp, ex, view.plan.dlp_actions(decision), body)
        if view.credentials is not None:
            self._claim(view.credentials, ex, who, target, req)
        quotas = self.s.quotas
        if quotas is not None and len(view.plan.quotas):
            if body is None:
                body = await self._read_body(h, ex)
            await self._reserve(quotas, ex, who, view, body)
        return await self._forward(h, req, ex, target, dst_ip, body)

    def _claim(self, injector: Injector, ex: Exchange, who: Identity, target: Target,
               req: http1.Request) -> None:
        """The placeholder credential the request carries, if any, checked: the agent's
        own, for this host; refused (403) otherwise. Its key goes in as the request
        leaves (``_forward``)."""
        try:
            claim = injector.claim(who.agent_id, target.host, list(req.headers),
                                   target.upstream, tls=self.origin.tls == "intercepted")
        except CredentialRefused as exc:
            self.s.count("refused_credential")
            raise self._refuse(exc.status, str(exc), exc.kind, ex.decision) from None
        if claim is not None:
            ex.after["credential"] = claim.as_dict()
            ex.credential = (injector, claim)

    def _dlp(self, stage: DlpStage, ex: Exchange, actions: Mapping[str, str],
             body: Body) -> Body:
        """The deciding rule's DLP actions: refused (403) when a class it blocks was
        found; the body to send instead when one it redacts was."""
        acted = stage.act(ex.found, actions, body[1])
        if acted is None:
            return body
        ex.after["dlp"] = acted.record
        ex.flags.extend(f for f in acted.flags if f not in ex.flags)
        if acted.blocked:
            self.s.count("refused_by_dlp")
            raise self._refuse(403, f"the request carries {', '.join(acted.blocked)} (DLP);"
                               " it may not leave", "dlp-blocked", ex.decision)
        if acted.unredactable:
            raise self._refuse(413, f"a request to redact must fit in"
                               f" {self.cfg.inspect_body_bytes} bytes", "body-over-limit",
                               ex.decision)
        if acted.body is None:
            return body
        ex.reframe = True
        return [acted.body], True

    async def _reserve(self, quotas: QuotaEngine, ex: Exchange, who: Identity, view: View,
                       body: Body) -> None:
        """Hold the request's estimate on the quotas that apply; refused (429, 503) when
        one of them says no; held back for a throttle's delay."""
        if quotas.plan is not view.plan.quotas:
            quotas.use_plan(view.plan.quotas)
        expected = estimate(ex.found, sum(len(p) for p in body[0]), self._requests == 1,
                            self.s.config.quota.output_estimate_tokens)
        credential = ex.credential[1].credential_id if ex.credential is not None else None
        admission = quotas.reserve(who, expected, time.time(), credential=credential)
        d = admission.decision
        if d.outcomes or d.degraded:
            ex.after["quota"] = d.as_dict()
            ex.flags.extend(d.flags)
        if not admission.admitted:
            self.s.count("refused_by_quota")
            raise Refused(refusal_for(d, ex.decision))
        ex.admission = admission
        if d.alerts and "alert" not in ex.flags:
            ex.flags.append("alert")
        if d.flag_agent:
            ex.flags.append("agent-flagged")
        if d.delay:
            await asyncio.sleep(d.delay)

    def _settle(self, admission: Admission, ex: Exchange) -> None:
        """Book what the request used (what its answer reported), or release its holds
        when it never reached the upstream."""
        quotas = self.s.quotas
        assert quotas is not None
        now = time.time()
        if ex.upstream is None:
            quotas.release(admission, now)  # it never went upstream
        else:
            quotas.reconcile(admission, actual(ex.found, admission.estimate, ex.bytes_out),
                             now)

    def _look(self, ex: Exchange, target: Target, req: http1.Request, body: Body) -> Findings:
        """What the inspections find in the request (refused when one of them fails)."""
        parts, whole = body
        try:
            return look(self.s.inspections, ex.method, target, list(req.headers),
                        b"".join(parts), whole)
        except InspectionError as exc:
            self.s.count("inspections_failed")
            raise self._refuse(403, f"the request could not be inspected: {exc}",
                               "inspection-failed") from None

    def _who(self, view: View, auth: bytes | None, ex: Exchange) -> Identity:
        """Who the request is decided for: the connection's identity once it is settled
        (a tunnel's), else the source's lease and any proxy assertion."""
        now = ex.started
        if self.identity is not None:
            held = view.quarantined.get(self.identity.agent_id)
            if held is not None:
                raise self._refuse(403, f"agent {self.identity.agent_id} is quarantined:"
                                   f" {held.reason}", "quarantined")
            ex.identity = self.identity
            return self.identity
        asserted: Asserted | None = None
        if self.origin.via == "proxy":
            if isinstance(self.certificate, Refusal):
                raise Refused(self.certificate)
            asserted = self.certificate
            if auth is not None:
                got = proxy_assertion(auth, self.s.assertions, view.api_keys.get, now)
                if isinstance(got, Refusal):
                    raise Refused(got)
                if asserted is not None and asserted.agent_id != got.agent_id:
                    raise self._refuse(403, f"the client certificate names agent"
                                       f" {asserted.agent_id}, Proxy-Authorization"
                                       f" {got.agent_id}", "assertion-mismatch")
                asserted = got
            if asserted is not None:
                ex.flags.append(f"asserted:{asserted.method}")
        who = who_sent(self.origin, view, asserted, now)
        if isinstance(who, Refusal):
            raise Refused(who)
        ex.identity = who
        return who

    async def _resolve(self, target: Target, view: View) -> IPAddress:
        """The address a proxy request's host resolves to (the first; guarded ranges only
        when a rule names them)."""
        if target.is_address:
            ip = ipaddress.ip_address(target.host)
        else:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self.cfg.connect_timeout):
                    infos = await loop.getaddrinfo(target.host, target.port,
                                                   type=socket.SOCK_STREAM)
            except (OSError, TimeoutError) as exc:
                raise UpstreamError(f"cannot resolve {target.host}: {exc}", 502,
                                    "resolve-failed") from None
            if not infos:
                raise UpstreamError(f"{target.host} has no address", 502, "resolve-failed")
            ip = _address(str(infos[0][4][0]))
        hit = view.plan.resolution_guard(ip)
        if hit is not None:
            where = hit.network if hit.network is not None else hit.host
            raise self._refuse(403, f"{target.host} resolves to {ip}, in the guarded"
                               f" {hit.kind} range {where}; no rule names that address",
                               "guarded-address")
        return ip

    # --- CONNECT -----------------------------------------------------------------------

    async def _connect(self, h: http1.Inbound, req: http1.Request, ex: Exchange,
                       target: Target, identity: Identity, view: View) -> bool:
        now = ex.started
        if self.origin.bound is not None or self.origin.via != "proxy":
            raise self._refuse(405, "CONNECT inside a tunnel", "malformed")
        host = None if target.is_address else target.host
        if host is not None:
            first = decide_flow(identity, host, target.port, None, view.plan, now)
            if state_for(first, l7_available=True) is State.DENY:
                ex.decision = first
                raise self._refused_by(action_for(first, self.cfg.throttle_retry_after),
                                       first, identity)
        ip = await self._resolve(target, view)
        decision = decide_flow(identity, host, target.port, ip, view.plan, now)
        ex.decision = decision
        if state_for(decision, l7_available=True) is State.DENY:
            raise self._refused_by(action_for(decision, self.cfg.throttle_retry_after),
                                   decision, identity)
        ex.upstream = f"{ip.compressed}:{target.port}"
        self._send(h, http1.Response(status_code=200, reason=b"Connection established",
                                   headers=[(REQUEST_ID_HEADER, ex.request_id.encode())]))
        await self._drain_client()
        ex.status = 200
        trailing, _closed = h.trailing_data
        self.origin = replace(self.origin, dst_ip=ip, dst_port=target.port, bound=target.host)
        self.identity = identity
        # The tunnel's record is written when it ends (its latency is the tunnel's life);
        # the requests inside have records of their own.
        await self._tunnel(bytes(trailing), identity)
        return False

    async def _tunnel(self, buffered: bytes, identity: Identity) -> None:
        if not buffered:
            try:
                buffered = await self.plain.recv(self.cfg.header_timeout)
            except TimeoutError:
                return
            if not buffered:
                return
        if buffered[0] == TLS_HANDSHAKE:
            await self._tls(buffered, identity)
        else:
            self._preconnect(tls=False)
            await self._http(buffered)

    # --- forwarding --------------------------------------------------------------------

    async def _upstream_for(self, ip: IPAddress, port: int) -> Upstream:
        tls = self.origin.tls == "intercepted"
        server_name = (self.origin.sni or self.origin.bound) if tls else None
        address = self.origin.dst_text if ip is self.origin.dst_ip else ip.compressed
        assert address is not None
        key = (address, port, server_name if tls else None)
        if self.upstream is not None:
            if self.upstream.key == key and self.upstream.next_cycle():
                return self.upstream
            self.upstream.close()
            self.upstream = None
        if self._early is not None and self._early[0] == key:
            task = self._early[1]
            self._early = None
            self.upstream = Upstream(key, await task)
            self.s.count("upstream_connections")
            return self.upstream
        self._drop_early()
        stream = await connect(address, port,
                               tls=self.s.upstream_tls if tls else None,
                               server_name=server_name or address,
                               timeout_s=self.cfg.connect_timeout)
        self.upstream = Upstream(key, stream)
        self.s.count("upstream_connections")
        return self.upstream

    async def _read_body(self, h: http1.Inbound, ex: Exchange) -> Body:
        """The request body up to the inspect limit, and whether it is all there; above the
        limit, ``l7.body_over_limit`` says whether the request is refused (413) or goes on
        with the rest unread here (flagged ``body-uninspected``)."""
        try:
            parts, whole = await self._body(h, ex)
        except http1.RemoteProtocolError as exc:
            raise self._refuse(400, f"malformed request body: {exc}", "malformed") from None
        if not whole:
            if self.cfg.body_over_limit == "deny":
                raise self._refuse(413, f"the request body is over"
                                   f" {self.cfg.inspect_body_bytes} bytes, the most this"
                                   " gateway inspects", "body-over-limit")
            ex.flags.append("body-uninspected")
        return parts, whole

    async def _body(self, h: http1.Inbound, ex: Exchange) -> Body:
        """The request body read before deciding on it, up to the inspect limit, and whether
        it is all there."""
        if h.client_is_waiting_for_100_continue:
            self._send(h, http1.InformationalResponse(status_code=100, headers=[]))
            await self._drain_client()
        whole = h.whole_body(self.cfg.inspect_body_bytes)
        if whole is not None:
            return ([whole] if whole else []), True  # it came with its head (the common case)
        parts: list[bytes] = []
        size = 0
        while h.their_state is http1.SEND_BODY:
            event = await self._next(h)
            if isinstance(event, http1.Data):
                parts.append(bytes(event.data))
                size += len(event.data)
                if size > self.cfg.inspect_body_bytes:
                    return parts, False
            elif isinstance(event, http1.EndOfMessage):
                return parts, True
            else:
                raise ConnectionError("the client went away during the request body")
        return parts, True

    async def _forward(self, h: http1.Inbound, req: http1.Request, ex: Exchange,
                       target: Target, ip: IPAddress, body: Body | None) -> bool:
        parts, whole = body if body is not None else await self._read_body(h, ex)
        upgrade = _websocket(req)
        if upgrade:
            ex.flags.append("websocket")
        headers = _request_headers(req.headers, upgrade, target.host_header(80).encode())
        if ex.reframe:
            # The body was rewritten (DLP redaction): framed by its new length.
            headers = [(n, v) for n, v in headers
                       if n not in (b"content-length", b"transfer-encoding")]
            headers.append((b"content-length", str(sum(map(len, parts))).encode()))
        if ex.decision is not None and ex.decision.action is Action.TRANSFORM:
            headers, parts = self._transform(ex, target, headers, parts, whole)
        upstream_target = target.upstream
        if ex.credential is not None:
            # Last, so that nothing else in the engine ever sees the provider's key.
            injector, claim = ex.credential
            try:
                done = injector.inject(claim, headers, upstream_target)
            except CredentialRefused as exc:
                raise self._refuse(exc.status, str(exc), exc.kind, ex.decision) from None
            headers, upstream_target = done.headers, done.upstream
        up = await self._upstream_for(ip, target.port)
        ex.upstream = up.address
        up.send(http1.Request(method=req.method, target=upstream_target.encode(),
                              headers=headers, http_version=b"1.1"))
        try:
            for part in parts:
                ex.bytes_out += len(part)
                up.send_data(part)
            while h.their_state is http1.SEND_BODY:
                event = await self._next(h)
                if isinstance(event, http1.Data):
                    ex.bytes_out += len(event.data)
                    up.send_data(event.data)
                    await self._drain_upstream(up)
                elif isinstance(event, http1.EndOfMessage):
                    break
                else:
                    raise ConnectionError("the client went away during the request body")
            if up.http.our_state is http1.SEND_BODY:
                up.send_end()
            if not up.stream.sent():
                await self._drain_upstream(up)
        except UpstreamError as exc:
            # The upstream stopped reading: it may have answered early (a 413, a 411)
            # before closing. Its answer, if there is one, is what the client gets.
            ex.flags.append("upstream-stopped-reading")
            ex.reason = str(exc)
        return await self._response(h, ex, up, upgrade)

    def _transform(self, ex: Exchange, target: Target, headers: list[tuple[bytes, bytes]],
                   parts: list[bytes], whole: bool
                   ) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """A ``transform`` decision: the request as the body-rewrite stages leave it."""
        if not self.s.transforms:
            ex.flags.append("transform-no-stage")
            return headers, parts
        if not whole:
            raise self._refuse(413, f"a request to transform must fit in"
                               f" {self.cfg.inspect_body_bytes} bytes", "body-over-limit")
        try:
            done = rewrite(self.s.transforms, ex.method, target, headers, b"".join(parts))
        except StageError as exc:
            raise self._refuse(403, f"the request could not be transformed: {exc}",
                               "transform-failed", ex.decision) from None
        ex.flags.extend(f"transformed:{note}" for note in done.applied)
        return done.headers, [done.body]

    async def _drain_upstream(self, up: Upstream) -> None:
        try:
            await up.stream.drain(self.cfg.upstream_timeout)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"sending the request upstream failed: {exc}") from None

    async def _response(self, h: http1.Inbound, ex: Exchange, up: Upstream,
                        upgrade: bool) -> bool:
        timeout = self.cfg.upstream_timeout
        while True:
            event = await up.next_event(timeout)
            if isinstance(event, http1.InformationalResponse):
                if event.status_code == 101 and upgrade:
                    ex.status = 101
                    self._send(h, http1.InformationalResponse(
                        status_code=101, reason=event.reason,
                        headers=[*event.headers, (REQUEST_ID_HEADER, ex.request_id.encode())]))
                    await self._drain_client()
                    await self._switched(h, ex, up)
                    return False
                continue  # 100 Continue and other interim answers: the engine sent its own
            if not isinstance(event, http1.Response):
                raise UpstreamError("the upstream answered with no response head")
            break
        ex.status = event.status_code
        watches = ex.found.watches
        if watches:
            _watch(ex, "head", event.status_code, list(event.headers))
        if ex.tool_allowed is not None and 200 <= event.status_code < 300:
            await self._filtered_tools(h, ex, up, event, ex.tool_allowed)
        else:
            self._send(h, http1.Response(status_code=event.status_code, reason=event.reason,
                                         headers=_response_headers(event.headers,
                                                                   ex.request_id)))
            await self._stream_body(h, ex, up)
        if not up.reusable:
            up.close()
            self.upstream = None
        return h.our_state is http1.DONE and h.their_state is http1.DONE

    async def _stream_body(self, h: http1.Inbound, ex: Exchange, up: Upstream) -> None:
        """The response body, sent on piece by piece as it arrives."""
        timeout = self.cfg.upstream_timeout
        watches = ex.found.watches
        whole = up.http.whole_body(_WHOLE_RESPONSE)
        if whole is not None:  # all here: on in one go (a small JSON answer)
            ex.bytes_in += len(whole)
            if whole:
                self._send_data(h, whole)
                if watches:
                    _watch(ex, "feed", whole)
            self._send_end(h)
            ex.complete = True
            if not self.client.sent():
                await self._drain_client()
            return
        while True:
            event = up.ready_event()
            if event is http1.NEED_DATA:
                event = await up.next_event(timeout)
            if isinstance(event, http1.Data):
                ex.bytes_in += len(event.data)
                self._send_data(h, event.data)
                if watches:
                    _watch(ex, "feed", bytes(event.data))
                if up.http.body_ended:
                    continue  # the end is next: sent on with the data
                if not self.client.sent():
                    await self._drain_client()
            elif isinstance(event, http1.EndOfMessage):
                self._send_end(h)
                ex.complete = True
                if not self.client.sent():
                    await self._drain_client()
                break
            else:
                raise UpstreamError("the upstream closed in the middle of its response")

    async def _filtered_tools(self, h: http1.Inbound, ex: Exchange, up: Upstream,
                              head: http1.Response, allowed: Callable[[str], bool]) -> None:
        """An MCP ``tools/list`` answer, read whole (up to ``l7.inspect_body_bytes``) and
        sent on with only the tools the agent may call. One that cannot be read (too
        large, compressed, not JSON) is not forwarded: 502."""
        limit = self.cfg.inspect_body_bytes
        if any(n == b"content-encoding" and v.strip().lower() != b"identity"
               for n, v in head.headers):
            raise UpstreamError("a compressed tools/list answer cannot be filtered",
                                flag="tools-list-unfiltered")
        parts: list[bytes] = []
        size = 0
        while True:
            event = await up.next_event(self.cfg.upstream_timeout)
            if isinstance(event, http1.Data):
                size += len(event.data)
                if size > limit:
                    raise UpstreamError(f"the tools/list answer is over {limit} bytes, too"
                                        " large to filter", flag="tools-list-unfiltered")
                parts.append(bytes(event.data))
            elif isinstance(event, http1.EndOfMessage):
                break
            else:
                raise UpstreamError("the upstream closed in the middle of its response")
        original = b"".join(parts)
        if ex.found.watches:
            _watch(ex, "feed", original)
        try:
            body = filter_tools_list(original, allowed)
        except ParseError as exc:
            raise UpstreamError(f"the tools/list answer cannot be filtered: {exc}",
                                flag="tools-list-unfiltered") from None
        if body != original:
            ex.flags.append("tools-list-filtered")
        headers = [(n, v) for n, v in _response_headers(head.headers, ex.request_id)
                   if n not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", str(len(body)).encode()))
        self._send(h, http1.Response(status_code=head.status_code, reason=head.reason,
                                     headers=headers))
        self._send_data(h, body)
        self._send_end(h)
        ex.bytes_in += len(body)
        ex.complete = True
        await self._drain_client()

    async def _switched(self, h: http1.Inbound, ex: Exchange, up: Upstream) -> None:
        """After a 101: both sides speak another protocol (WebSocket); spliced."""
        client_rest, _ = h.trailing_data
        up_rest, _ = up.http.trailing_data
        if client_rest:
            up.stream.send(bytes(client_rest))
        if up_rest:
            self.client.send(bytes(up_rest))
        self.upstream = None
        try:
            sent, got = await splice(self.client, up.stream, self.cfg.idle_timeout)
        finally:
            up.close()
        ex.bytes_out += sent
        ex.bytes_in += got


def _lists_tools(found: Findings) -> bool:
    """Whether the request is an MCP ``tools/list`` (its answer is then filtered)."""
    ai = ai_of(found)
    return ai is not None and "tools/list" in ai[0].mcp_methods


def _watch(ex: Exchange, step: str, *args: Any) -> None:
    """``step`` (head, feed, end) on each of the request's response watches; what ``end``
    returns joins the record. A watch that fails is logged and flagged, never allowed to
    break the response it follows."""
    for w in ex.found.watches:
        try:
            said = getattr(w, step)(*args)
            if step == "end":
                ex.after.update(said)
        except Exception:
            log.exception("a response watch failed on request %s", ex.request_id)
            if "watch-failed" not in ex.flags:
                ex.flags.append("watch-failed")


def _both_done(h: http1.Inbound) -> bool:
    """Whether request and response are both complete: the connection can serve another."""
    return h.our_state is http1.DONE and h.their_state is http1.DONE


def _websocket(req: http1.Request) -> bool:
    upgrade = connection = False
    for name, value in req.headers:
        if name == b"upgrade" and value.lower() == b"websocket":
            upgrade = True
        elif name == b"connection" and b"upgrade" in value.lower():
            connection = True
    return upgrade and connection


def _connection_tokens(headers: Any) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens |= http1.tokens_of(value)
    return tokens


def _request_headers(headers: Any, upgrade: bool,
                     host: bytes) -> list[tuple[bytes, bytes]]:
    listed = _connection_tokens(headers) - {b"upgrade", b"close", b"keep-alive"}
    out = [(n, v) for n, v in headers if n not in HOP_BY_HOP and n not in listed]
    if not any(n == b"host" for n, _ in out):
        out.insert(0, (b"host", host))
    if upgrade:
        out += [(b"connection", b"upgrade"), (b"upgrade", b"websocket")]
    return out


def _response_headers(headers: Any, request_id: str) -> list[tuple[bytes, bytes]]:
    listed = _connection_tokens(headers) - {b"close", b"keep-alive"}
    out = [(n, v) for n, v in headers if n not in RESPONSE_HOP and n not in listed]
    out.append((REQUEST_ID_HEADER, request_id.encode()))
    return out
