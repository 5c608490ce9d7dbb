"""The kernel side's health, for ``clawgress doctor``: gathered here, printed by the CLI.

``check_health(config)`` probes the queue backend, compares the live table with the render
(its digest, and its content against the render loaded in a scratch namespace), checks the
xtables rules, the forwarding sysctls, the queues and the tools. Every check that fails
to run is reported as a problem, never raised: a doctor has to work on a broken host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatewayd.config import Config, FailMode
from gatewayd.netfilter.apply import live_digest, show, tagged_xtables_rules, xtables_rule_present
from gatewayd.netfilter.divert import bridge_netfilter_problem, divert_routes_present
from gatewayd.netfilter.drift import compare, snapshot
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.nft import bindings_available, tool_path
from gatewayd.netfilter.probe import (
    BackendChoice,
    Capabilities,
    Capability,
    choose_backend,
    probe_capabilities,
    probe_tproxy,
)
from gatewayd.netfilter.queuestats import QueueStats, read_queue_stats
from gatewayd.netfilter.render import TABLE, Ruleset, render_ruleset
from gatewayd.netfilter.scratch import expected_snapshot

FORWARDING_SYSCTLS = {
    "net.ipv4.ip_forward": Path("/proc/sys/net/ipv4/ip_forward"),
    "net.ipv6.conf.all.forwarding": Path("/proc/sys/net/ipv6/conf/all/forwarding"),
}
TOOLS = ("nft", "iptables-nft", "ip6tables-nft", "unshare")


@dataclass(frozen=True)
class InterfaceMode:
    name: str
    environment: str
    fail_mode: FailMode


@dataclass(frozen=True)
class QueueHealth:
    role: str
    number: int
    # ``None``: the kernel lists no such queue (nobody bound it).
    stats: QueueStats | None


@dataclass(frozen=True)
class TableHealth:
    present: bool
    live_digest: str | None
    render_digest: str | None
    # Differences from the render as the kernel loads it; ``None`` when not compared.
    differences: tuple[str, ...] | None
    note: str | None = None

    @property
    def matches(self) -> bool:
        return (
            self.present
            and self.live_digest == self.render_digest
            and self.differences is not None
            and not self.differences
        )


@dataclass(frozen=True)
class Health:
    capabilities: Capabilities
    backend: BackendChoice | None
    backend_error: str | None
    table: TableHealth
    xtables_expected: tuple[str, ...]
    xtables_missing: tuple[str, ...]
    xtables_stray: tuple[str, ...]
    interfaces: tuple[InterfaceMode, ...]
    forwarding: dict[str, str | None]
    queues: tuple[QueueHealth, ...]
    tools: dict[str, str | None]
    modules: dict[str, str]
    problems: tuple[str, ...] = field(default=())
    # The L7 engine's kernel side: tproxy, the divert routes (None: not checked, no table),
    # and a host setting that keeps diverted flows from the listener.
    tproxy: Capability | None = None
    divert_routes: bool | None = None
    bridge_problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A fixed-shape dict for ``doctor --json``."""
        return {
            "queue_backend": {
                "configured": self.backend.requested if self.backend else None,
                "in_use": self.backend.backend if self.backend else None,
                "reason": self.backend.reason if self.backend else self.backend_error,
                "native": _cap(self.capabilities.native),
                "xtables": _cap(self.capabilities.xtables),
            },
            "table": {
                "name": TABLE,
                "present": self.table.present,
                "live_digest": self.table.live_digest,
                "render_digest": self.table.render_digest,
                "matches_render": self.table.matches,
                "differences": (
                    list(self.table.differences) if self.table.differences is not None else None
                ),
                "note": self.table.note,
            },
            "xtables_rules": {
                "expected": list(self.xtables_expected),
                "missing": list(self.xtables_missing),
                "stray": list(self.xtables_stray),
            },
            "interfaces": [
                {"name": i.name, "environment": i.environment, "fail_mode": i.fail_mode}
                for i in self.interfaces
            ],
            "forwarding": dict(self.forwarding),
            "queues": [
                {
                    "role": q.role,
                    "queue": q.number,
                    "bound": q.stats is not None and q.stats.peer_portid != 0,
                    "listener_portid": q.stats.peer_portid if q.stats else None,
                    "waiting": q.stats.queue_total if q.stats else None,
                    "dropped_queue_full": q.stats.queue_dropped if q.stats else None,
                    "dropped_user": q.stats.user_dropped if q.stats else None,
                    "id_sequence": q.stats.id_sequence if q.stats else None,
                }
                for q in self.queues
            ],
            "l7": {
                "tproxy": _cap(self.tproxy) if self.tproxy else None,
                "divert_routes": self.divert_routes,
                "bridge_netfilter": self.bridge_problem,
            },
            "tools": dict(self.tools),
            "python_modules": dict(self.modules),
            "problems": list(self.problems),
            "ok": not self.problems,
        }


def check_health(config: Config) -> Health:
    problems: list[str] = []
    caps = probe_capabilities()
    backend: BackendChoice | None = None
    backend_error: str | None = None
    try:
        backend = choose_backend(config.dataplane.queue_backend, caps)
    except NetfilterError as exc:
        backend_error = str(exc)
        problems.append(backend_error)
    ruleset = render_ruleset(config, backend.backend) if backend else None
    table = _table_health(ruleset, problems)
    expected = tuple(str(r) for r in ruleset.xtables) if ruleset else ()
    missing, stray = _xtables_health(ruleset, problems)
    interfaces = tuple(
        InterfaceMode(i.name, i.environment, config.fail_mode_for(i.environment))
        for i in config.workload.interfaces
    )
    forwarding = {name: _read(path) for name, path in FORWARDING_SYSCTLS.items()}
    _forwarding_problems(config, forwarding, problems)
    queues = _queues(config, problems)
    tools = {name: tool_path(name) for name in TOOLS}
    modules = _modules()
    problems += [f"python module {m}: {s}" for m, s in modules.items() if s != "ok"]
    tproxy = probe_tproxy()
    if not tproxy.available:
        problems.append(f"the L7 engine cannot receive flows to inspect: {tproxy.detail}")
    routes = None
    if table.present:
        try:
            routes = divert_routes_present(config)
        except OSError as exc:
            problems.append(f"cannot read the policy routing: {exc}")
        if routes is False:
            problems.append("the policy routing that delivers flows to inspect to the L7"
                            " engine is missing (clawgress rules apply adds it)")
    bridge = bridge_netfilter_problem(config)
    if bridge is not None:
        problems.append(bridge)
    return Health(
        caps,
        backend,
        backend_error,
        table,
        expected,
        missing,
        stray,
        interfaces,
        forwarding,
        queues,
        tools,
        modules,
        tuple(problems),
        tproxy,
        routes,
        bridge,
    )


def _table_health(ruleset: Ruleset | None, problems: list[str]) -> TableHealth:
    try:
        text = show()
    except NetfilterError as exc:
        problems.append(f"cannot list table {TABLE}: {exc}")
        return TableHealth(False, None, ruleset.digest if ruleset else None, None, str(exc))
    if text is None:
        problems.append(f"table {TABLE} is not loaded (clawgress rules apply)")
        return TableHealth(False, None, ruleset.digest if ruleset else None, None)
    digest = live_digest(text)
    if ruleset is None:
        return TableHealth(True, digest, None, None, "no backend: nothing to compare with")
    if digest != ruleset.digest:
        problems.append(
            f"table {TABLE} was rendered from another configuration (digest {digest},"
            f" render {ruleset.digest})"
        )
    try:
        differences = tuple(compare(expected_snapshot(ruleset), snapshot()))
    except NetfilterError as exc:
        problems.append(f"cannot compare table {TABLE} with the render: {exc}")
        return TableHealth(True, digest, ruleset.digest, None, str(exc))
    if differences:
        problems.append(f"table {TABLE} differs from the render: " + "; ".join(differences))
    return TableHealth(True, digest, ruleset.digest, differences)


def _xtables_health(
    ruleset: Ruleset | None, problems: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        tagged = tagged_xtables_rules()
        wanted = ruleset.xtables if ruleset else ()
        missing = tuple(str(r) for r in wanted if not xtables_rule_present(r))
    except NetfilterError as exc:
        problems.append(f"cannot list xtables rules: {exc}")
        return (), ()
    stray = tuple(str(r) for r in tagged if ruleset is None or r not in ruleset.xtables)
    problems += [f"xtables rule missing: {r}" for r in missing]
    problems += [f"stray xtables rule tagged clawgress: {r}" for r in stray]
    return missing, stray


def _forwarding_problems(
    config: Config, forwarding: dict[str, str | None], problems: list[str]
) -> None:
    versions = {n.version for i in config.workload.interfaces for n in i.subnets}
    if 4 in versions and forwarding["net.ipv4.ip_forward"] != "1":
        problems.append("net.ipv4.ip_forward is not 1: workload IPv4 traffic is not routed")
    if 6 in versions and forwarding["net.ipv6.conf.all.forwarding"] != "1":
        problems.append(
            "net.ipv6.conf.all.forwarding is not 1: workload IPv6 traffic is not routed"
        )


def _queues(config: Config, problems: list[str]) -> tuple[QueueHealth, ...]:
    dp = config.dataplane
    try:
        live = read_queue_stats()
    except (OSError, ValueError) as exc:
        problems.append(f"cannot read queue statistics: {exc}")
        live = {}
    queues = (
        QueueHealth("verdict", dp.queue, live.get(dp.queue)),
        QueueHealth("reset", dp.reset_queue, live.get(dp.reset_queue)),
    )
    for q in queues:
        if q.stats is None or q.stats.peer_portid == 0:
            problems.append(f"{q.role} queue {q.number} has no listener (engine not running)")
    return queues


def _modules() -> dict[str, str]:
    _, detail = bindings_available()
    return {
        "nftables": detail,
        "netfilterqueue": _try(_import_netfilterqueue),
        "pyroute2": _try(_import_pyroute2),
    }


def _import_netfilterqueue() -> None:
    import netfilterqueue  # noqa: F401, PLC0415


def _import_pyroute2() -> None:
    import pyroute2  # noqa: F401, PLC0415


def _try(fn: Callable[[], object]) -> str:
    try:
        fn()
    except Exception as exc:  # any import failure is what doctor reports
        return f"cannot import: {exc}"
    return "ok"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def _cap(cap: Capability) -> dict[str, Any]:
    return {"available": cap.available, "detail": cap.detail}
