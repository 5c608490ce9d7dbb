"""The verdict engine's IO shell: NFQUEUE in an asyncio loop, reloads, flow endings, drift.

``VerdictEngine`` binds the new-flow queue and the reset queue with NetfilterQueue on
non-blocking sockets, hands every queued packet to the pure ``Decider`` and issues the
verdict it returns (a stamped mark, then accept), and writes the audit event. Timers:

The engine also reads what the ruleset queues beyond first packets — DNS messages and the
ClientHellos of pending flows — and keeps what it learns (``Observed``) across reloads;
the gateway's own DNS answers to denied queries leave through a raw socket.

* reload — when the store's ``identity`` or ``policy`` generation moves, or a lease
  expires, rebuild the lease table and the plan, then end the established flows that the
  change denies (their conntrack state becomes *deny*: the kernel resets them);
* drift — check that the ruleset is still what was applied; restore it if not;
* metrics — write queue depth, kernel drops and verdict counts for a textfile collector.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import multiprocessing
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netfilterqueue import NetfilterQueue

from gatewayd.audit import AuditEvent, AuditLog
from gatewayd.config import Config
from gatewayd.credentials import Injector, Vault, open_data_key
from gatewayd.credentials.sealing import DATA_KEY_BYTES, DataKey
from gatewayd.credentials.vault import CREDENTIALS_DOMAIN
from gatewayd.errors import ClawgressError, ParseError
from gatewayd.identity import Identity, Registry
from gatewayd.identity.names import MAX_REASON
from gatewayd.identity.registry import ApiKey
from gatewayd.l7.exchange import View
from gatewayd.netfilter import (
    Baseline,
    Flow,
    Marks,
    Ruleset,
    State,
    apply,
    end_flows,
    forget_denied,
    read_queue_stats,
    render_ruleset,
    select_backend,
    sync_leased,
    take_baseline,
)
from gatewayd.netfilter.conntrack_listing import list_flows
from gatewayd.netfilter.divert import bridge_netfilter_problem, ensure_divert_routes
from gatewayd.netfilter.drift import check_ruleset_and_routes
from gatewayd.packets import format_address, tcp_reset_for
from gatewayd.policy import Action, Decision
from gatewayd.policy.activation import ActivePolicy, load_active
from gatewayd.store import Store, open_store
from gatewayd.verdict.decide import Decider
from gatewayd.verdict.flows import flows_to_end
from gatewayd.verdict.metrics import render_metrics
from gatewayd.verdict.observed import Observed

if TYPE_CHECKING:
    from gatewayd.l7.engine import L7Engine

log = logging.getLogger("clawgress.engine")

_VERDICT_COUNTERS = {state: f"verdict_{state.name.lower()}" for state in State}

# The drift checker's niceness: the lowest priority.
DRIFT_CHECK_NICE = 19

# Allocations between young collections (Python's default is 700).
GC_YOUNG_THRESHOLD = 20_000

# Generations of the store the engine follows.
IDENTITY = "identity"
POLICY = "policy"


def drift_checker() -> ProcessPoolExecutor:
    """One worker process for drift checks, forked from a clean server process (never from
    this threaded one), in this process's network namespace, with only the drift checker
    imported. It runs at the lowest CPU priority: where the engine shares its core (pinned,
    or a one-core host) the check waits for idle time instead of taking the engine's."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["gatewayd.netfilter.drift"])
    return ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=os.nice,
                               initargs=(DRIFT_CHECK_NICE,))


def settle_garbage_collector() -> None:
    """Keep the collector's pauses short in a long-running engine: what start-up built (the
    plan, the lease table, imported modules) is moved out of its reach (``gc.freeze``), and
    young collections run less often. Full collections of a large heap stalled the event
    loop for tens of milliseconds, which every waiting packet and request paid."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


class VerdictEngine:
    def __init__(self, config: Config, *, manage_rules: bool = True) -> None:
        self.config = config
        self.manage_rules = manage_rules
        self.marks = Marks.from_config(config)
        self.store: Store = open_store(config.store.path)
        self.registry = Registry(self.store)
        self.audit = AuditLog(config.audit.path)
        self.counters: Counter[str] = Counter()
        self.interfaces: dict[int, str] = {}
        self.active: ActivePolicy | None = None
        self.decider: Decider | None = None
        self.observed = Observed.from_settings(config.names)
        self._raw: dict[int, socket.socket] = {}
        self._generations = (-1, -1, -1)
        self._credentials: Injector | None = None
        self._next_expiry = float("inf")
        self._baseline: Baseline | None = None
        self._ruleset: Ruleset | None = None
        self._queues: list[NetfilterQueue] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # The L7 engine, in this loop, once its listeners are open; what it reads of the
        # engine's state (``l7_view``) is rebuilt at each reload.
        self.l7: L7Engine | None = None
        self._agents: dict[str, Identity] = {}
        self._api_keys: dict[str, ApiKey] = {}
        self._view: View | None = None
        self._drift_pool: ProcessPoolExecutor | None = None

    # --- state -------------------------------------------------------------------------

    def _resolve_interfaces(self) -> bool:
        """Map the workload interfaces' indexes to their names (in place: the decider holds
        this dict). Interfaces may appear, or be re-created with a new index, at any time;
        returns whether the map changed."""
        found = {}
        for iface in self.config.workload.interfaces:
            try:
                found[socket.if_nametoindex(iface.name)] = iface.name
            except OSError:
                if iface.name not in self.interfaces.values():
                    log.warning("workload interface %s does not exist (yet)", iface.name)
        if found == self.interfaces:
            return False
        self.interfaces.clear()
        self.interfaces.update(found)
        return True

    def load(self, now: float, *, leases: bool = True, policy: bool = True) -> None:
        """Rebuild the lease table and/or the plan from the store.

        Generations are read before the data, so what is loaded is never older than the
        generation recorded: a write in between only causes one more reload.
        """
        generations = (self.store.generation(IDENTITY), self.store.generation(POLICY),
                       self.store.generation(CREDENTIALS_DOMAIN))
        if generations[2] != self._generations[2]:
            self._credentials = self._load_credentials()
        if leases or self.decider is None:
            table = self.registry.lease_table(now)
            quarantined = self.registry.quarantines()
            self._agents = {a.agent_id: a.identity for a in self.registry.list_agents()}
            self._api_keys = self.registry.api_keys_by_id()
        else:
            table, quarantined = self.decider.leases, dict(self.decider.quarantined)
        if policy or self.active is None:
            previous = self.active
            active = load_active(self.store, self.config, now)
            self.active = active
            if previous is None or (previous.version, previous.source) != (active.version,
                                                                            active.source):
                self.audit.append(AuditEvent.now(
                    "policy.loaded", version=active.version, source=active.source,
                    problems=active.problems, deny_all=active.plan.deny_all_reason,
                ))
                for problem in active.problems:
                    log.warning("policy: %s", problem)
        assert self.active is not None
        self._resolve_interfaces()
        self.decider = Decider(
            plan=self.active.plan,
            leases=table,
            marks=self.marks,
            interfaces=self.interfaces,
            gateway=self.config.gateway.name,
            l7_available=self.l7 is not None,
            quarantined=quarantined,
            observed=self.observed,
            interface_for=self.config.interface_for,
        )
        self._view = View(plan=self.active.plan, leases=table, quarantined=quarantined,
                          agents=self._agents, names=self.observed.names,
                          api_keys=self._api_keys, credentials=self._credentials)
        if leases:
            expiries = [lease.expires_at for lease in self.registry.list_leases(now)]
            self._next_expiry = min(expiries, default=float("inf"))
        self._generations = generations
        self.counters["reloads"] += 1

    def _load_credentials(self) -> Injector | None:
        """The provider credentials the L7 engine injects (``None`` when there are none,
        or their data key cannot be read: placeholders are then refused)."""
        vault = Vault(self.store)
        keyring = vault.keyring()
        if not keyring.credentials:
            return None
        try:
            data_key = open_data_key(self.config.credentials_key_path, create=False)
        except ClawgressError as exc:
            log.error("provider credentials cannot be injected: %s", exc)
            self.audit.append(AuditEvent.now("credentials.unavailable", reason=str(exc)))
            # A key nothing was sealed under: every placeholder is then refused as a
            # credential that cannot be unsealed, never forwarded as if it were a key.
            data_key = DataKey(os.urandom(DATA_KEY_BYTES))
        return Injector(keyring, data_key)

    async def reload_if_changed(self, now: float) -> bool:
        if self._resolve_interfaces():
            log.info("workload interfaces: %s", self.interfaces)
        identity, policy = self.store.generation(IDENTITY), self.store.generation(POLICY)
        leases_changed = identity != self._generations[0] or now >= self._next_expiry
        policy_changed = policy != self._generations[1]
        credentials_changed = self.store.generation(CREDENTIALS_DOMAIN) != self._generations[2]
        if not (leases_changed or policy_changed or credentials_changed):
            return False
        before = self.decider
        self.load(now, leases=leases_changed, policy=policy_changed)
        if self.manage_rules:
            try:
                if leases_changed:
                    await self.sync_leased(now)
                await asyncio.to_thread(forget_denied)
            except ClawgressError as exc:
                log.error("cannot update the ruleset's sets: %s", exc)
        if policy_changed or before is None:
            await self.end_denied_flows(now)
            return True
        # Only leases changed: flows can only end for sources that lost their binding or
        # whose agent was just quarantined. Granting a lease ends nothing.
        assert self.decider is not None
        sources = before.leases.withdrawn(self.decider.leases, now)
        newly = self.decider.quarantined.keys() - before.quarantined.keys()
        if sources or newly:
            await self.end_denied_flows(now, sources=sources, agents=set(newly))
        return True

    async def end_denied_flows(
        self, now: float, *, sources: set[bytes] | None = None, agents: set[str] | None = None
    ) -> int:
        """End established flows the current leases and plan no longer allow.

        With ``sources`` or ``agents``, only flows from those addresses, or from addresses
        leased to those agents, are looked at. Flows are listed by the conntrack tool,
        filtered by state in the kernel; ending them goes through netlink in a worker
        thread (pyroute2 runs an event loop of its own).
        """
        decider = self.decider
        assert decider is not None
        try:
            tracked = await list_flows(self.marks, (State.ALLOW, State.INSPECT))
        except ClawgressError as exc:
            log.error("cannot list conntrack flows: %s", exc)
            return 0
        if sources is not None or agents is not None:
            wanted = set(sources or ())
            if agents:
                for iface in self.interfaces.values():
                    wanted.update(
                        f.src.packed for f in tracked
                        if (ident := decider.leases.identity_for(f.src.packed, iface, now))
                        is not None and ident.agent_id in agents
                    )
            tracked = [f for f in tracked if f.src.packed in wanted]
        endings = flows_to_end(
            tracked,
            leases=decider.leases,
            plan=decider.plan,
            interface_for=self.config.interface_for,
            now=now,
            l7_available=decider.l7_available,
            quarantined=decider.quarantined,
            hosts=self.observed.hosts,
            names=self.observed.names,
        )
        if not endings:
            return 0
        chosen = [e.flow for e in endings if isinstance(e.flow, Flow)]
        ended = await asyncio.to_thread(end_flows, chosen, self.marks)
        for e in endings:
            f = e.flow
            agent_id, reason = e.agent_id, e.reason
            if agent_id is None:
                agent_id, reason = self._former_holder(str(f.src), now, reason)
            self.audit.append(AuditEvent("flow.ended", now, {
                "src_ip": str(f.src), "src_port": f.sport, "dst_ip": str(f.dst),
                "dst_port": f.dport, "protocol": {6: "tcp", 17: "udp"}.get(f.protocol),
                "agent_id": agent_id, "reason": reason, "gateway": self.config.gateway.name,
            }))
        self.counters["flows_ended"] += ended
        log.info("ended %d flows", ended)
        return ended

    def _former_holder(self, ip: str, now: float, reason: str) -> tuple[str | None, str]:
        """Whose flow it was when its lease is gone, and how the lease ended."""
        try:
            lease = self.registry.get_lease(ip, now, include_inactive=True)
        except ClawgressError:
            return None, reason
        if lease.revoked_at is not None:
            how = f"lease revoked ({lease.revoke_reason})"
        elif lease.expires_at <= now:
            how = "lease expired"
        else:
            how = "lease no longer on this interface"
        return lease.agent_id, f"{reason}: {how}"

    def l7_view(self) -> View:
        """What the L7 engine decides requests with: the current leases, plan, agents and
        resolved names."""
        assert self._view is not None
        return self._view

    async def start_l7(self) -> None:
        """Open the L7 engine's listeners; without them, flows to inspect are refused."""
        from gatewayd.l7.engine import L7Engine  # noqa: PLC0415 - imports the TLS stack

        try:
            l7 = L7Engine(self.config, view=self.l7_view, audit=self.audit.append,
                          quarantine=self.quarantine)
            await l7.start()
        except ClawgressError as exc:
            log.error("the L7 engine cannot start, so flows to inspect are refused: %s", exc)
            self.audit.append(AuditEvent.now("l7.unavailable", reason=str(exc)))
            return
        self.l7 = l7
        self.audit.append(AuditEvent.now("l7.started", ports=l7.ports,
                                         ca=l7.services.leaves is not None))

    # --- packets -----------------------------------------------------------------------

    def on_packet(self, pkt: Any) -> None:
        """A packet of an undecided flow: decide, stamp, accept, audit.

        A packet never stays without a verdict: should deciding fail (a bug), it is stamped
        *deny*, the failure logged and audited, and the engine goes on.
        """
        decider = self.decider
        assert decider is not None
        try:
            verdict = decider.decide(pkt.get_payload(), pkt.get_mark(), pkt.indev,
                                     time.time())
        except Exception as exc:  # fail closed, and keep deciding the others
            self._failed(pkt, exc)
            return
        if verdict.drop:
            pkt.drop()
        else:
            if verdict.rewrite is not None:
                pkt.set_payload(verdict.rewrite)
            pkt.set_mark(verdict.mark)
            pkt.accept()
        if verdict.reply is not None:
            self._send(verdict.reply)
        for event in verdict.extra:
            self.counters[event.kind.replace(".", "_")] += 1
            self.audit.append(event)
        if verdict.observed or verdict.repeat:
            self.counters["observed" if verdict.observed else "verdict_repeat"] += 1
            return
        # The packet is on its way; now the record.
        self.counters[_VERDICT_COUNTERS[verdict.state]] += 1
        self.audit.append(verdict.event())
        decision = verdict.decision
        if decision is not None and decision.action is Action.QUARANTINE:
            self.quarantine(verdict.agent_id, decision)

    def _send(self, packet: bytes) -> None:
        """Send a whole IP packet the engine built: a DNS answer toward an agent, or a reset
        toward a server whose client segment the gateway refused."""
        version = packet[0] >> 4
        try:
            sock = self._raw.get(version)
            if sock is None:
                family = socket.AF_INET if version == 4 else socket.AF_INET6
                sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.marks.engine_sent)
                sock.setblocking(False)
                self._raw[version] = sock
            dst = packet[16:20] if version == 4 else packet[24:40]
            sock.sendto(packet, (format_address(dst), 0))
            self.counters["packets_sent"] += 1
        except OSError as exc:
            self.counters["packets_send_failed"] += 1
            log.warning("cannot send a packet the engine built: %s", exc)

    def expire(self, now: float) -> None:
        """Forget what ran out; a pending flow whose ClientHello never came is recorded as
        abandoned (it was never decided: its later bytes, if any, are denied)."""
        for src, sport, dst, dport in self.observed.expire(now):
            address = ipaddress.ip_address(src)
            iface = self.config.interface_for(address)
            identity = (self.decider.leases.identity_for(src, iface, now)
                        if self.decider is not None and iface is not None else None)
            self.counters["pending_abandoned"] += 1
            self.audit.append(AuditEvent("flow.abandoned", now, {
                "src_ip": str(address), "src_port": sport, "dst_ip": format_address(dst),
                "dst_port": dport, "protocol": "tcp",
                "agent_id": identity.agent_id if identity is not None else None,
                "reason": "pending: no ClientHello within"
                          f" {self.observed.hellos.idle_s:.0f} s",
                "gateway": self.config.gateway.name,
            }))

    def _failed(self, pkt: Any, exc: Exception) -> None:
        pkt.set_mark(self.marks.stamp(pkt.get_mark(), State.DENY))
        pkt.accept()
        self.counters["verdict_failed"] += 1
        log.exception("deciding a packet failed; denied")
        self.audit.append(AuditEvent.now(
            "flow.verdict", action="deny", state="deny", flags=["engine-error"],
            reason=f"the engine failed to decide: {type(exc).__name__}",
            gateway=self.config.gateway.name, layer="l4",
        ))

    def quarantine(self, agent_id: str | None, decision: Decision) -> None:
        """A rule said quarantine: flag the agent in the store (the next reload ends its
        established flows)."""
        if agent_id is None or self.decider is None:
            return
        if agent_id in self.decider.quarantined:
            return
        text = f"rule {decision.policy_id}/{decision.rule_id}: {decision.reason}"
        reason = text.encode("ascii", "replace").decode()[:MAX_REASON]
        try:
            self.registry.quarantine_agent(agent_id, reason=reason, now=time.time())
        except ClawgressError as exc:
            log.error("cannot quarantine agent %s: %s", agent_id, exc)
            return
        self.audit.append(AuditEvent.now("agent.quarantined", agent_id=agent_id,
                                         reason=reason, gateway=self.config.gateway.name))

    def on_reset(self, pkt: Any) -> None:
        """A reply packet of a denied TCP flow: send it on as a reset toward the agent."""
        try:
            reset = tcp_reset_for(pkt.get_payload())
        except ParseError:
            pkt.drop()
            self.counters["resets_dropped"] += 1
            return
        pkt.set_payload(reset)
        pkt.set_mark(self.marks.stamp(pkt.get_mark(), State.DENY))
        pkt.accept()
        self.counters["resets_sent"] += 1

    # --- rules ---------------------------------------------------------------------------

    async def sync_leased(self, now: float) -> None:
        """Give the ruleset the current leases (their sources get a flood budget each)."""
        assert self.decider is not None
        await asyncio.to_thread(sync_leased, self.decider.leases.bindings(now))

    def apply_rules(self) -> str:
        choice = select_backend(self.config)
        ruleset = render_ruleset(self.config, choice.backend)
        apply(ruleset)
        if self.decider is not None:
            sync_leased(self.decider.leases.bindings(time.time()))
        self._baseline = take_baseline(ruleset)
        self._ruleset = ruleset
        self.audit.append(AuditEvent.now("ruleset.applied", backend=choice.backend,
                                         reason=choice.reason, digest=ruleset.digest))
        return choice.backend

    async def check_drift(self) -> None:
        """Compare the live ruleset with the baseline and restore it if it drifted.

        The comparison runs in a worker process (``drift_checker``): listing and comparing
        the ruleset takes about 15 ms of Python, which in a thread would hold the
        interpreter lock and stall every verdict and request meanwhile."""
        if self._baseline is None or self._ruleset is None:
            return
        loop = asyncio.get_running_loop()
        try:
            if self._drift_pool is None:
                self._drift_pool = drift_checker()
            found, restored = await loop.run_in_executor(
                self._drift_pool, check_ruleset_and_routes, self._baseline, self.config)
        except BrokenProcessPool:
            log.warning("the drift checker process died; starting another")
            self._drift_pool = None
            return
        if restored:
            log.warning("policy routing for the L7 engine was missing; restored: %s",
                        "; ".join(restored))
            self.counters["divert_routes_restored"] += 1
            self.audit.append(AuditEvent.now("ruleset.restored", drift="policy routing",
                                             restored=restored))
        if found is None:
            return
        what = found.describe()
        log.warning("ruleset drift: %s; restoring", what)
        apply(self._ruleset)
        if self.decider is not None:
            await self.sync_leased(time.time())
        self._baseline = take_baseline(self._ruleset)
        self.counters["ruleset_restored"] += 1
        self.audit.append(AuditEvent.now("ruleset.restored", drift=what,
                                         digest=self._ruleset.digest))

    # --- metrics -------------------------------------------------------------------------

    def write_metrics(self, path: Path) -> None:
        dp = self.config.dataplane
        counters = Counter(self.counters)
        if self.l7 is not None:
            counters.update({f"l7_{k}": v for k, v in self.l7.counters.items()})
            counters["l7_connections_active"] = self.l7.active
        text = render_metrics(read_queue_stats(), {"verdict": dp.queue, "reset": dp.reset_queue},
                              counters, self.observed.names.txt_signals,
                              len(self.observed.names))
        tmp = path.with_suffix(path.suffix + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        tmp.replace(path)

    # --- the loop ------------------------------------------------------------------------

    def _bind(self, number: int, callback: Callable[[Any], None]) -> NetfilterQueue:
        nfq = NetfilterQueue()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                nfq.bind(number, callback, max_len=self.config.dataplane.queue_max_len)
            except OSError as exc:
                raise ClawgressError(
                    f"cannot bind NFQUEUE {number}: {exc} (another engine running? root?)"
                ) from None
        for w in caught:
            log.info("queue %d: %s", number, w.message)
        self._queues.append(nfq)
        return nfq

    async def _fsync_audit(self) -> None:
        self.audit.flush()
        await asyncio.to_thread(self.audit.fsync)

    def _drain(self, nfq: NetfilterQueue) -> None:
        """Decide every packet waiting on ``nfq``, then write their audit records."""
        nfq.run(False)
        self.audit.flush()

    def _every(self, interval_s: float, action: Callable[[], object], what: str) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    result = action()
                    if asyncio.iscoroutine(result):
                        await result
                except ClawgressError as exc:
                    log.error("%s: %s", what, exc)
                self.audit.flush()
        task = asyncio.get_running_loop().create_task(loop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, stop: asyncio.Event) -> None:
        dp = self.config.dataplane
        loop = asyncio.get_running_loop()
        await self.start_l7()
        now = time.time()
        self.load(now)
        if self.manage_rules:
            backend = self.apply_rules()
            log.info("ruleset applied (queue backend: %s)", backend)
            # pyroute2 runs an event loop of its own: from a worker thread.
            for added in await asyncio.to_thread(ensure_divert_routes, self.config):
                log.info("policy routing for the L7 engine: %s", added)
        problem = bridge_netfilter_problem(self.config)
        if problem is not None:
            log.error("%s", problem)
            self.audit.append(AuditEvent.now("l7.misconfigured", reason=problem))
        for number, callback in ((dp.queue, self.on_packet), (dp.reset_queue, self.on_reset)):
            nfq = self._bind(number, callback)
            fd = nfq.get_fd()
            loop.add_reader(fd, self._drain, nfq)
        await self.end_denied_flows(now)
        self.audit.append(AuditEvent.now("engine.started", queue=dp.queue,
                                         reset_queue=dp.reset_queue,
                                         version=self.active.version if self.active else None))
        self.audit.flush()
        settle_garbage_collector()
        log.info("verdict engine running: queue %d, reset queue %d", dp.queue, dp.reset_queue)
        if not self.config.names.resolvers:
            log.warning("names.resolvers is empty: every DNS server policy allows on port 53"
                        " teaches names; list the agents' resolvers")
        self._every(dp.reload_interval_ms / 1000, lambda: self.reload_if_changed(time.time()),
                    "reload")
        if self.manage_rules:
            self._every(dp.drift_check_interval_ms / 1000, self.check_drift, "drift check")
        metrics = self.config.metrics_path
        self._every(1.0, lambda: self.write_metrics(metrics), "metrics")
        self._every(5.0, lambda: self.expire(time.time()), "expiry")
        self._every(1.0, self._fsync_audit, "audit sync")
        try:
            await stop.wait()
        finally:
            if self.l7 is not None:
                await self.l7.stop()
            for nfq in self._queues:
                loop.remove_reader(nfq.get_fd())
                nfq.unbind()
            for task in list(self._tasks):
                task.cancel()
            for sock in self._raw.values():
                sock.close()
            if self._drift_pool is not None:
                self._drift_pool.shutdown(wait=False, cancel_futures=True)
            self.audit.append(AuditEvent.now("engine.stopped", counters=dict(self.counters)))
            self.audit.close()
            self.store.close()
            log.info("verdict engine stopped")
