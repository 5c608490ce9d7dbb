"""What the verdict engine's kernel tests share: a lab gateway with agents, leases and
signed policy, and readers of the audit log, the queue statistics, the ruleset's counters
and the metrics file. Clients and listeners are in ``verdict_net``.

The lab (docs/lab.md) runs the real ruleset and ``clawgress run`` in its gateway
namespace. Every test starts from the same baseline (``Gateway.reset``):

* a1 (10.77.0.11, fd77::11) is ``researcher`` (team research): may reach api.openai.com
  (10.78.0.10, fd78::10) on 80 and 443;
* a2 (10.77.0.12, fd77::12) is ``builder`` (team build): code hosting (github.com,
  10.78.0.14, on 443) only;
* a3 (10.77.0.13, fd77::13) has no lease: unknown. ``analyst`` (team research) is
  registered for it, for tests that grant it one;
* the policy is examples/lab plus ``policies/listeners.yaml``: every known agent may reach
  the tests' own listeners on example.com (10.78.0.16, fd78::16), ports 9000-9099.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from nsutil import Namespace
from verdict_net import wait_for

from gatewayd.config import FailMode, load_config
from gatewayd.identity import LeaseRules, Registry
from gatewayd.lab import Lab, LabError
from gatewayd.lab import processes as lab_processes
from gatewayd.lab import topology as lab_topology
from gatewayd.netfilter import QueueStats, read_queue_stats
from gatewayd.store import open_store

REPO = Path(__file__).resolve().parents[2]
LAB_POLICY = REPO / "examples" / "lab" / "lab.yaml"
POLICIES = Path(__file__).with_name("policies")
BASE_POLICY = ("listeners.yaml",)

RESEARCHER, BUILDER, ANALYST = "researcher", "builder", "analyst"
AGENTS = {
    RESEARCHER: ("research", "alpha"),
    BUILDER: ("build", "alpha"),
    ANALYST: ("research", "beta"),
}
# Baseline leases: address → agent (a3 has none).
BASELINE = {
    "10.77.0.11": RESEARCHER, "fd77::11": RESEARCHER,
    "10.77.0.12": BUILDER, "fd77::12": BUILDER,
}

# Lab addresses (docs/lab.md).
OPENAI = {4: "10.78.0.10", 6: "fd78::10"}       # research only, tcp 80 and 443
PASTEBIN = {4: "10.78.0.13", 6: "fd78::13"}     # denied to everyone (paste-sites)
GITHUB = {4: "10.78.0.14", 6: "fd78::14"}       # anyone known, tcp 443
EXAMPLE = {4: "10.78.0.16", 6: "fd78::16"}      # no lab rule; the tests' listeners on 9000+
DNS = {4: "10.78.0.53", 6: "fd78::53"}          # anyone known, port 53
A1 = {4: "10.77.0.11", 6: "fd77::11"}
A2 = {4: "10.77.0.12", 6: "fd77::12"}
A3 = {4: "10.77.0.13", 6: "fd77::13"}
FAMILIES = (4, 6)
AF = {4: socket.AF_INET, 6: socket.AF_INET6}

# The engine's timers in the lab configuration (the defaults).
RELOAD_S = 0.25
DRIFT_CHECK_S = 2.0
NEW_FLOW_RATE, NEW_FLOW_BURST = 200, 400
# Sources without a lease on their interface share one budget (the defaults).
UNLEASED_RATE, UNLEASED_BURST = 20, 40
# "At once": a reset or an unreachable, not a timeout or a retransmission.
AT_ONCE_S = 0.5
# Changes (a lease, a policy) reach established flows within this.
CUT_WITHIN_S = 1.0

_serial = itertools.count(1)


# --- small things ----------------------------------------------------------------------


TOOLS = ("ip", "nft", "iptables-nft", "ip6tables-nft", "curl", "dnsmasq")


def require_root_and_tools() -> None:
    """Fail (never skip) when this host cannot run the tests, saying why."""
    if os.geteuid() != 0:
        pytest.fail(
            "the verdict kernel tests need root: they build a lab of network namespaces and"
            " run the verdict engine in it (run them as root)",
            pytrace=False,
        )
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [tool for tool in TOOLS if shutil.which(tool, path=path) is None]
    if missing:
        pytest.fail(f"the verdict kernel tests need {', '.join(missing)} (see tools/setup.sh)",
                    pytrace=False)


def unique_prefix() -> str:
    """A lab prefix no other test run on this host uses: ``cgv<pid>-<n>``."""
    return f"cgv{os.getpid()}-{next(_serial)}"


# --- the gateway's side ----------------------------------------------------------------


class AuditCursor:
    """The audit events written after the cursor was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def events(self, kind: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        found = []
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            if kind is not None and event.get("kind") != kind:
                continue
            if all(event.get(k) == v for k, v in fields.items()):
                found.append(event)
        return found

    def wait(self, kind: str, timeout: float = 3.0, **fields: Any) -> dict[str, Any]:
        """The first event of ``kind`` with ``fields``, waiting for it (the engine issues
        a verdict before it writes the event, so a client can be faster than the log)."""
        return wait_for(f"a {kind} audit event with {fields}",
                        lambda: next(iter(self.events(kind, **fields)), None), timeout)

    def settled(self, kind: str, count: int, **fields: Any) -> list[dict[str, Any]]:
        """The events of ``kind`` with ``fields`` once ``count`` of them were written (or
        3 s passed), and a little longer, so that one too many would show."""
        deadline = time.monotonic() + 3.0
        while len(self.events(kind, **fields)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        return self.events(kind, **fields)

    def one(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The one event of ``kind`` with ``fields``; fails if there is none or several."""
        events = self.settled(kind, 1, **fields)
        assert len(events) == 1, f"{len(events)} {kind} events with {fields}, not one"
        return events[0]


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → ``{'name{labels}': value}``."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


_COUNTER = re.compile(r"counter packets (\d+) bytes \d+")


@dataclass
class Gateway:
    """A lab with the engine, and what the tests do to it and read from it."""

    lab: Lab
    work: Path
    version: int = 0
    policy: tuple[str, ...] | None = None
    # What every bundle holds, where the documents tests name are found (first match), and
    # the documents of the baseline.
    included: ClassVar[tuple[Path, ...]] = (LAB_POLICY,)
    policy_dirs: ClassVar[tuple[Path, ...]] = (POLICIES,)
    base_policy: ClassVar[tuple[str, ...]] = BASE_POLICY

    # namespaces and paths

    def ns(self, target: str) -> Namespace:
        """A handle on a lab namespace (``a1``, ``gw``, ``up``); never removed by us."""
        return Namespace(self.lab.namespace(target))

    @property
    def audit_path(self) -> Path:
        return self.lab.paths.audit

    def cursor(self) -> AuditCursor:
        return AuditCursor(self.audit_path)

    # the CLI and the store

    def run_clawgress(self, *args: str, config: Path | None = None
                      ) -> subprocess.CompletedProcess[str]:
        """``clawgress --config <lab config, or config> ARGS`` from the host."""
        argv = [sys.executable, "-m", "gatewayd", "--config",
                str(config or self.lab.config_path), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    def clawgress(self, *args: str, config: Path | None = None) -> str:
        """Like ``run_clawgress``; fails the test if the command fails."""
        done = self.run_clawgress(*args, config=config)
        assert done.returncode == 0, f"clawgress {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout

    @contextlib.contextmanager
    def registry(self) -> Iterator[Registry]:
        config, _ = load_config(self.lab.config_path)
        store = open_store(config.store.path)
        try:
            yield Registry(store, LeaseRules.from_config(config))
        finally:
            store.close()

    def lease_expiry(self, ip: str) -> float:
        with self.registry() as registry:
            return registry.get_lease(ip, time.time()).expires_at

    def register_agents(self) -> None:
        for agent, (team, project) in AGENTS.items():
            self.clawgress("agent", "add", agent, "--team", team, "--project", project,
                           "--env", "lab")

    def publish(self, *documents: str) -> float:
        """Bundle ``included`` (examples/lab) with ``documents`` (from ``policy_dirs``:
        ``policies/``), sign it with the lab key and publish it as the next version;
        returns the time ``publish`` returned."""
        self.version += 1
        source = self.work / f"policy-{self.version}"
        source.mkdir(parents=True)
        for path in self.included:
            shutil.copy(path, source / path.name)
        for name in documents:
            found = next((d / name for d in self.policy_dirs if (d / name).exists()), None)
            assert found is not None, f"no policy document {name} in {self.policy_dirs}"
            shutil.copy(found, source / name)
        bundle = self.work / f"bundle-{self.version}.tgz"
        self.clawgress("policy", "bundle", str(source), "-o", str(bundle),
                       "--version", str(self.version))
        self.clawgress("policy", "sign", str(bundle), "--key", str(self.lab.signing_key))
        self.clawgress("policy", "publish", str(bundle))
        published = time.time()
        self.policy = tuple(documents)
        return published

    def reset(self) -> None:
        """Back to the baseline: the engine running, the base policy, baseline leases."""
        if not self.lab.engine_alive():
            self.lab.start_engine()
        changed = False
        if self.policy != self.base_policy:
            self.publish(*self.base_policy)
            changed = True
        now = time.time()
        with self.registry() as registry:
            active = {lease.ip: lease for lease in registry.list_leases(now)}
            for ip, lease in active.items():
                if BASELINE.get(ip) != lease.agent_id or lease.iface != "wl0":
                    registry.revoke_lease(ip, now=now, reason="test reset")
                    changed = True
            for ip, agent in BASELINE.items():
                held = active.get(ip)
                if held is None or held.agent_id != agent or held.remaining(now) < 600:
                    registry.grant_lease(ip, agent, now=now)
                    changed = True
        if changed:
            time.sleep(3 * RELOAD_S)  # let the engine load the change

    # the kernel's and the engine's counters

    def queue_stats(self) -> dict[int, QueueStats]:
        """The gateway's NFQUEUE statistics, by queue number."""
        with self.ns("gw").entered():
            return read_queue_stats()

    def queued(self, queue: int = 0) -> int:
        """Packets the kernel has sent to ``queue`` so far (its ``id_sequence``)."""
        stats = self.queue_stats()
        assert queue in stats, f"queue {queue} is not bound in the gateway (engine down?)"
        return stats[queue].id_sequence

    def queue_drops(self) -> dict[int, int]:
        return {n: s.drops for n, s in self.queue_stats().items()}

    def nft(self, *args: str) -> str:
        return self.ns("gw").run("nft", *args).stdout

    def rule_counter(self, chain: str, comment: str) -> int:
        """Packets counted by the rules of ``chain`` tagged ``comment`` (summed)."""
        listing = self.nft("list", "chain", "inet", "clawgress", chain)
        total, found = 0, False
        for line in listing.splitlines():
            if f'comment "{comment}"' in line:
                match = _COUNTER.search(line)
                assert match, f"no counter on: {line.strip()}"
                total += int(match.group(1))
                found = True
        assert found, f"no rule with comment {comment!r} in chain {chain}:\n{listing}"
        return total

    def metrics(self, newer_than: float | None = None, timeout: float = 3.0) -> dict[str, float]:
        """The engine's metrics file; with ``newer_than``, one written after that time."""
        path = Path(self.lab.state_dir) / "dataplane.prom"

        def fresh() -> dict[str, float] | None:
            try:
                if newer_than is not None and path.stat().st_mtime <= newer_than:
                    return None
                return parse_metrics(path.read_text()) or None
            except FileNotFoundError:
                return None

        return wait_for(f"a metrics file at {path}", fresh, timeout)

    def stop_engine(self) -> None:
        """SIGKILL the engine and wait until it is gone and its queues with it (a killed
        process can show as a zombie while its other threads still hold the queue
        sockets); the ruleset stays."""
        self.lab.stop_engine(signal.SIGKILL)

        wait_for("the engine's queues to be unbound", lambda: not self.queue_stats(),
                 timeout=5, interval=0.005)

    @contextlib.contextmanager
    def engine_paused(self) -> Iterator[None]:
        """The engine stopped (SIGSTOP) for the body: it stays bound to its queues, so
        packets wait there for it; continued (SIGCONT) afterwards, whatever happens."""
        pid = self.lab.engine_pid()
        assert pid is not None, "the engine is not running"
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for("the engine to stop", lambda: _state_of(pid) == "T", timeout=5,
                     interval=0.002)
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


def _state_of(pid: int) -> str | None:
    """A process's state letter from ``/proc/<pid>/stat`` (``T``: stopped)."""
    found = lab_processes.stat(pid)
    return found[0] if found else None


# --- the lab's life --------------------------------------------------------------------


def lab_pids(lab: Lab) -> list[int]:
    pids = [int(p["pid"]) for p in lab.status()["processes"]]
    owned = [n for n in lab_topology.list_namespaces() if lab.plan.owns_namespace(n)]
    for found in lab_processes.pids_in_namespaces(owned).values():
        pids += found
    return sorted(set(pids))


def assert_lab_gone(lab: Lab, pids: list[int]) -> None:
    """Nothing of the lab is left: namespaces, /etc/netns entries, processes, state."""
    owned = [n for n in lab_topology.list_namespaces() if lab.plan.owns_namespace(n)]
    assert owned == [], f"namespaces left behind: {owned}"
    assert lab_topology.etc_netns_entries(lab.plan) == [], "/etc/netns entries left behind"
    living = [p for p in pids if lab_processes.alive(p)]
    assert living == [], f"processes left: {living}"
    assert not lab.state_dir.exists(), f"state dir left: {lab.state_dir}"


@contextlib.contextmanager
def gateway_lab(tmp: Path, fail_mode: FailMode = "fail-closed",
                kind: type[Gateway] = Gateway) -> Iterator[Gateway]:
    """A lab with the engine running, the agents registered and the base policy of ``kind``
    active; always taken down, and checked to be gone."""
    require_root_and_tools()
    lab = Lab(unique_prefix(), tmp / "state", agents=3, fail_mode=fail_mode)
    pids: list[int] = []
    try:
        try:
            lab.up(engine=True)
        except LabError as exc:  # no NFQUEUE, no nftables...: the engine says which
            pytest.fail(f"cannot bring up a lab with the verdict engine: {exc}",
                        pytrace=False)
        gateway = kind(lab, tmp / "work")
        gateway.register_agents()
        gateway.reset()
        yield gateway
    finally:
        with contextlib.suppress(Exception):
            pids = lab_pids(lab)
        lab.down()
    assert_lab_gone(lab, pids)
