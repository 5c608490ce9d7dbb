"""The L7 engine's connection handling on loopback, without root: the explicit proxy's
``ClientConnection`` behind a real TCP listener, the lab upstream as the server, a real
plan and lease table. Tests talk to it with raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from gatewayd.audit import AuditEvent
from gatewayd.config import Config
from gatewayd.identity import Identity, Lease, LeaseTable
from gatewayd.l7.conn import Plain
from gatewayd.l7.connection import ClientConnection, Services
from gatewayd.l7.dlp_stage import DlpStage
from gatewayd.l7.exchange import View
from gatewayd.l7.inspection import Inspection
from gatewayd.l7.interception import LeafContexts
from gatewayd.l7.transform import Stage
from gatewayd.l7.upstream import upstream_context
from gatewayd.lab.upstream import Upstream, server_context, start_server
from gatewayd.policy import Decision, Guard, compile_plan, parse_documents
from gatewayd.policy.documents import parse_quotas
from gatewayd.quota import MemoryLedger, QuotaEngine
from gatewayd.verdict.resolved import ResolvedNames

POLICY = """
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: harness}
spec:
  rules:
    - id: loopback
      action: inspect
      destination: {cidrs: [127.0.0.1/32]}
      dlp: {secrets: block, pii.email: redact, pii.ip: alert, phi: hash-log}
    - id: admin
      action: deny
      destination: {cidrs: [127.0.0.1/32]}
      l7: {paths: ["/admin*"]}
    - id: no-bad-model
      action: deny
      destination: {cidrs: [127.0.0.1/32]}
      l7: {models: ["bad-*"]}
    - id: no-shell
      action: deny
      destination: {cidrs: [127.0.0.1/32]}
      l7: {tools: ["shell.*"]}
    - id: rewrite
      action: transform
      destination: {cidrs: [127.0.0.1/32]}
      l7: {paths: ["/echo"], methods: [PUT]}
"""

AGENT = Identity("agent-1", "team", "project", "test")


@dataclass
class Harness:
    port: int
    upstream_port: int
    services: Services
    events: list[AuditEvent] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.upstream_port}{path}"


def harness_config(**l7: Any) -> Config:
    return Config.model_validate({
        "workload": {"interfaces": [{"name": "lo", "subnets": ["127.0.0.0/8"]}]},
        "l7": {"header_timeout": 2, "idle_timeout": 5, **l7},
    })


@contextlib.asynccontextmanager
async def running_proxy(*, transforms: tuple[Stage, ...] = (),
                        inspections: tuple[Inspection, ...] = (),
                        leaves: LeafContexts | None = None,
                        upstream_tls: ssl.SSLContext | None = None,
                        tls_upstream: tuple[str, str] | None = None,
                        policy: str = POLICY, quotas: str = "",
                        dlp: DlpStage | None = None, **l7: Any) -> AsyncIterator[Harness]:
    """The proxy on 127.0.0.1; the lab upstream behind it (HTTPS with ``tls_upstream``'s
    certificate and key files); interception with ``leaves``."""
    config = harness_config(**l7)
    docs = parse_documents({"harness.yaml": policy})
    plan = compile_plan(docs, bundle_version=1, guard=Guard.builtin(),
                        quotas=parse_quotas({"quotas.yaml": quotas}) if quotas else ())
    now = time.time()
    lease = Lease(1, "127.0.0.1", "lo", AGENT.agent_id, now, now + 3600)
    leases = LeaseTable.build([(lease, AGENT)], generation=1, now=now)
    view = View(plan=plan, leases=leases, quarantined={}, agents={AGENT.agent_id: AGENT},
                names=ResolvedNames(min_ttl=0, max_ttl=60, max_addresses=10))
    events: list[AuditEvent] = []
    quarantined: list[str] = []

    def quarantine(agent: str, decision: Decision) -> None:
        quarantined.append(agent)

    services = Services(config=config, view=lambda: view, audit=events.append,
                        quarantine=quarantine, leaves=leaves,
                        upstream_tls=upstream_tls or upstream_context([]),
                        transforms=transforms, inspections=inspections,
                        quotas=QuotaEngine(plan.quotas, MemoryLedger()) if quotas else None,
                        dlp=dlp)
    server_tls = server_context(*tls_upstream) if tls_upstream else None
    upstream = await start_server(Upstream({"127.0.0.1": "loopback"}), 0, server_tls,
                                  "127.0.0.1")
    tasks: set[asyncio.Task[None]] = set()

    def handle(stream: Plain) -> None:
        conn = ClientConnection.accepted(services, stream, "proxy")
        task = asyncio.get_running_loop().create_task(conn.serve())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.get_running_loop().create_server(
        lambda: Plain(on_connected=handle), "127.0.0.1", 0)
    try:
        yield Harness(server.sockets[0].getsockname()[1],
                      upstream.sockets[0].getsockname()[1], services, events, quarantined)
    finally:
        server.close()
        upstream.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def exchange(port: int, pieces: list[bytes], *, read_timeout: float = 5.0,
                   pause: float = 0.0) -> bytes:
    """Send ``pieces`` (one write each), then read until the proxy closes or is quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        with contextlib.suppress(OSError):
            writer.write_eof()
        out = b""
        while True:
            try:
                async with asyncio.timeout(read_timeout):
                    data = await reader.read(65536)
            except TimeoutError:
                raise AssertionError(f"the proxy stalled; got so far {out[:200]!r}") from None
            if not data:
                return out
            out += data
    except ConnectionResetError:
        return b"<reset>"
    finally:
        writer.close()


def status_codes(response: bytes) -> list[int]:
    """The status code of every response in ``response`` (interim ones included)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", response)]

