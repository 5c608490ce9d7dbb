"""The L7 engine's listeners: the TPROXY listener and the explicit proxy.

``L7Engine.start`` opens the transparent listener (``l7.transparent_port``, IPv4 and IPv6,
``IP_TRANSPARENT``: the ruleset diverts flows in the *inspect* state to it, and each
accepted socket's own address is the flow's original destination) and the explicit proxy
(``l7.proxy_port``, on every address; the ruleset admits it from workload interfaces
only). Each connection is served by a ``ClientConnection`` in a task of its own, so a slow
or stalled client or upstream never blocks another; above ``l7.max_connections`` new
connections are closed at once. It runs in the verdict engine's event loop and reads the
same leases, plan and resolved names (``View``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import ssl
import time
from collections.abc import Callable

from gatewayd import compiled
from gatewayd.audit import AuditEvent
from gatewayd.config import Config
from gatewayd.credentials.inspection import KeyInspection
from gatewayd.errors import ClawgressError
from gatewayd.l7.ai_stage import AiStage
from gatewayd.l7.assertions import load_settings
from gatewayd.l7.ca_store import CaPaths, load_ca
from gatewayd.l7.conn import READ_SIZE, Plain
from gatewayd.l7.connection import ClientConnection, Services
from gatewayd.l7.dlp_stage import DlpStage, dlp_stage
from gatewayd.l7.exchange import View
from gatewayd.l7.inspection import Inspection
from gatewayd.l7.interception import LeafContexts
from gatewayd.l7.upstream import upstream_context
from gatewayd.policy import Decision
from gatewayd.quota import QuotaEngine, QuotaPlan, open_engine

log = logging.getLogger("clawgress.l7")

IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)
IPV6_TRANSPARENT = 75
BACKLOG = 4096


def listening_socket(family: int, port: int, *, transparent: bool) -> socket.socket:
    """A TCP socket listening on every address of ``family`` (IPv6 only for AF_INET6)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if transparent:
            if family == socket.AF_INET:
                sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))  # noqa: S104
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def inspections_for(config: Config, dlp: DlpStage | None) -> tuple[Inspection, ...]:
    """What reads a request's body before it is decided, by configuration: the AI
    protocol analyzer (``ai.enabled``; its tokenizer is loaded here, at start-up), DLP
    (``dlp.enabled``), and the sighting of provider keys in auth headers."""
    # Provider keys an agent sends itself (it should send a placeholder): DLP classes.
    found: list[Inspection] = [KeyInspection()]
    if config.ai.enabled:
        stage = AiStage()
        stage.preload()
        found.append(stage)
    if dlp is not None:
        found.append(dlp)
    return tuple(found)


def raise_file_limit(wanted: int) -> int:
    """Raise the soft limit on open files toward ``wanted`` (each connection holds two:
    the client's and its upstream's), as far as the hard limit allows; returns it. At the
    usual soft limit of 1024, a few hundred slow clients would stop ``accept`` for all."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit to %d: %s", target, exc)
            return soft
        soft = target
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("the open-file limit (%d) is below what l7.max_connections needs (%d):"
                    " connections beyond it are refused", soft, wanted)
    return soft


class L7Engine:
    def __init__(
        self,
        config: Config,
        *,
        view: Callable[[], View],
        audit: Callable[[AuditEvent], None],
        quarantine: Callable[[str, Decision], None],
    ) -> None:
        self.config = config
        leaves = None
        try:
            ca = load_ca(CaPaths(config.l7.ca_dir), leaf_ttl=config.l7.leaf_ttl,
                         leaf_cache_size=config.l7.leaf_cache_size)
        except ClawgressError as exc:
            log.warning("TLS flows to inspect will be refused: %s", exc)
        else:
            leaves = LeafContexts(ca, config.l7.leaf_cache_size)
            log.info("gateway CA loaded: %s", ca.fingerprint)
        dlp = dlp_stage(config)
        self.services = Services(
            config=config, view=view, audit=audit, quarantine=quarantine, leaves=leaves,
            upstream_tls=upstream_context(config.l7.extra_upstream_cas),
            assertions=load_settings(config.l7.identity),
            inspections=inspections_for(config, dlp),
            dlp=dlp,
            # The plan's quotas are taken up by the first request that meets them.
            quotas=open_engine(QuotaPlan(), config.quota, config.store.path),
        )
        self._settling: asyncio.Task[None] | None = None
        self._ca = leaves.ca if leaves is not None else None
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.ports: dict[str, int] = {}

    @property
    def counters(self) -> dict[str, int]:
        return self.services.counters

    @property
    def active(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        """Open the listeners; ``ClawgressError`` if the transparent one cannot be opened
        (without it, flows to inspect cannot be served)."""
        l7 = self.config.l7
        compiled.report(log, "L7 request path", "gatewayd.l7")
        raise_file_limit(2 * l7.max_connections + 1024)
        wanted = [("transparent", l7.transparent_port, True)]
        if l7.proxy_port is not None:
            wanted.append(("proxy", l7.proxy_port, False))
        for via, port, transparent in wanted:
            opened = 0
            for family in (socket.AF_INET, socket.AF_INET6):
                try:
                    sock = listening_socket(family, port, transparent=transparent)
                except OSError as exc:
                    if family == socket.AF_INET6 and exc.errno in (97, 99):  # no IPv6 here
                        continue
                    await self.stop()
                    raise ClawgressError(f"cannot listen on the {via} port {port}: {exc}"
                                         " (another process? root or CAP_NET_ADMIN?)") from None
                tls = self._proxy_tls() if via == "proxy" and l7.proxy_tls else None
                server = await asyncio.get_running_loop().create_server(
                    self._listener(via), sock=sock, ssl=tls, backlog=BACKLOG,
                    ssl_handshake_timeout=l7.header_timeout if tls else None)
                self._servers.append(server)
                opened += 1
            self.ports[via] = port
            log.info("L7 %s listener on port %d (%d families)", via, port, opened)
        self._settling = asyncio.get_running_loop().create_task(self._settle_quotas())

    async def _settle_quotas(self) -> None:
        """Book the usage that waits for the next request's check (``quota.settle_delay_ms``)
        when none comes, and record the quota backend's changes of health."""
        quotas = self.services.quotas
        if quotas is None:
            return
        every = max(self.config.quota.settle_delay_ms, 100) / 1000
        while True:
            await asyncio.sleep(every)
            self._flush_quotas(quotas)

    def _flush_quotas(self, quotas: QuotaEngine) -> None:
        now = time.time()
        try:
            quotas.flush(now)
        except Exception:  # the backend's trouble is the engine's to report, not to raise
            log.exception("booking quota usage failed")
        for event in quotas.drain_events():
            log.warning("quota backend %s %s: %s", event.backend, event.kind, event.detail)
            self.services.audit(AuditEvent("quota.backend", event.at, {
                "event": event.kind, "backend": event.backend, "detail": event.detail,
                "gateway": self.config.gateway.name}))

    def _proxy_tls(self) -> ssl.SSLContext:
        """The explicit proxy's own TLS: leaves of the gateway CA, client certificates
        verified against ``l7.identity.client_ca_files`` when configured."""
        if self._ca is None:
            raise ClawgressError("l7.proxy_tls needs the gateway CA (clawgress ca init)")
        contexts = LeafContexts(self._ca, 64, self.config.l7.identity.client_ca_files)
        gateway = self.config.gateway
        name = str(gateway.addresses[0]) if gateway.addresses else gateway.name
        try:
            return contexts.listener_context(name, time.time())
        except ValueError as exc:
            raise ClawgressError(f"no certificate for the proxy listener ({name}): {exc}"
                                 " (set gateway.addresses)") from None

    def _listener(self, via: str) -> Callable[[], Plain]:
        """What a listener makes of each connection it accepts: a stream whose connection
        is served (or refused at ``l7.max_connections``)."""
        limit = max(self.config.l7.max_header_bytes, READ_SIZE)

        def accepted(stream: Plain) -> None:
            if len(self._connections) >= self.config.l7.max_connections:
                self.services.count("connections_refused")
                stream.abort()
                return
            self.services.count(f"connections_{via}")
            conn = ClientConnection.accepted(self.services, stream, via)
            task = asyncio.get_running_loop().create_task(self._serve(conn))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

        return lambda: Plain(limit, accepted)

    async def _serve(self, conn: ClientConnection) -> None:
        try:
            await conn.serve()
        except Exception:  # one connection's bug never stops the others
            self.services.count("connections_failed")
            log.exception("serving a connection from %s failed", conn.origin.src_ip)
            with contextlib.suppress(Exception):
                conn.plain.abort()

    async def stop(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._settling
            self._settling = None
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        quotas = self.services.quotas
        if quotas is not None:
            self._flush_quotas(quotas)
            with contextlib.suppress(Exception):
                quotas.close()
            self.services.quotas = None
