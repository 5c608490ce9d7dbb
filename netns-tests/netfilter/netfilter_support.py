"""What the netfilter kernel tests share: configurations, backends, rule listings."""

from __future__ import annotations

from pathlib import Path

from nsutil import Namespace

from gatewayd.config import Config, parse_config
from gatewayd.netfilter.probe import probe_queue_backend
from gatewayd.netfilter.render import XTABLES_CHAINS, XTABLES_TOOLS, Backend

GOLDEN = Path(__file__).parents[2] / "tests" / "netfilter" / "golden"


def golden_config(name: str, extra: str = "") -> Config:
    path = GOLDEN / f"{name}.yaml"
    return parse_config(path.read_text(encoding="utf-8") + extra, str(path))


def probed_backend(ns: Namespace) -> Backend:
    """The backend this kernel supports; a kernel with neither fails the test."""
    with ns.entered():
        backend = probe_queue_backend()
    assert backend is not None, "this kernel supports neither native nor xtables NFQUEUE"
    return backend


def iptables_rules(ns: Namespace) -> list[str]:
    """Every rule (``-A`` line) in the chains Clawgress uses, both families."""
    lines: list[str] = []
    for family, tool in XTABLES_TOOLS.items():
        for table, chain in XTABLES_CHAINS:
            out = ns.run(tool, "-w", "-t", table, "-S", chain).stdout
            lines += [f"{family} {table} {ln}" for ln in out.splitlines() if ln.startswith("-A")]
    return lines


def stateless_table(ns: Namespace) -> str:
    return ns.nft("-s", "list", "table", "inet", "clawgress").stdout
