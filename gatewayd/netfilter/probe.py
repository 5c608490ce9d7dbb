"""Which queue backend this kernel supports, found without changing the host.

*native*: nft accepts ``queue num 0 bypass`` in a check-only transaction (``nft -c``:
the kernel validates it, nothing is committed). *xtables*: ``iptables-nft`` and
``ip6tables-nft`` are installed and accept an NFQUEUE rule inside a throwaway network
namespace (``unshare --net``) that disappears with the command. ``choose_backend`` is the
pure decision between what the configuration asks for and what the probe found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gatewayd.config import Config
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.marks import Marks
from gatewayd.netfilter.nft import (
    CAP_NET_ADMIN,
    CAP_SYS_ADMIN,
    ERROR_LINES,
    has_capability,
    nft,
    run_tool,
    tool_path,
)
from gatewayd.netfilter.render import XTABLES_TOOLS, Backend, xtables_rules

Requested = Literal["auto", "native", "xtables"]

PROBE_TABLE = "clawgress_probe"
NATIVE_PROBE = (
    f"add table inet {PROBE_TABLE}\n"
    f"add chain inet {PROBE_TABLE} probe {{ type filter hook prerouting priority 0; }}\n"
    f"add rule inet {PROBE_TABLE} probe queue num 0 bypass\n"
)


TPROXY_PROBE = (
    f"add table inet {PROBE_TABLE}\n"
    f"add chain inet {PROBE_TABLE} probe {{ type filter hook prerouting priority -150; }}\n"
    f"add rule inet {PROBE_TABLE} probe meta l4proto tcp tproxy to :15001 accept\n"
)


@dataclass(frozen=True)
class Capability:
    available: bool
    detail: str


@dataclass(frozen=True)
class Capabilities:
    native: Capability
    xtables: Capability


@dataclass(frozen=True)
class BackendChoice:
    """The backend to use, what was asked for, and why this one."""

    requested: Requested
    backend: Backend
    reason: str


def probe_native() -> Capability:
    """Does nft accept a native ``queue`` statement (check only, nothing committed)?"""
    try:
        nft(NATIVE_PROBE, dry_run=True)
    except NetfilterError as exc:
        if "queue num 0 bypass]" in str(exc):
            return Capability(False, f"the kernel refuses nft 'queue' (no nft_queue): {exc}")
        return Capability(False, f"cannot probe: {exc}")
    return Capability(True, "nft accepts 'queue num 0 bypass' (nft_queue available)")


def probe_tproxy() -> Capability:
    """Does nft accept a ``tproxy`` statement (check only), which diverts flows to inspect
    to the L7 engine?"""
    try:
        nft(TPROXY_PROBE, dry_run=True)
    except NetfilterError as exc:
        return Capability(False, f"the kernel refuses nft 'tproxy' (no nft_tproxy?): {exc}")
    return Capability(True, "nft accepts 'tproxy' (flows to inspect can be diverted)")


def probe_xtables() -> Capability:
    """Do iptables-nft and ip6tables-nft take an NFQUEUE rule (in a throwaway namespace)?"""
    if not (has_capability(CAP_NET_ADMIN) and has_capability(CAP_SYS_ADMIN)):
        return Capability(False, "cannot probe: needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root)")
    unshare = tool_path("unshare")
    if unshare is None:
        return Capability(False, "unshare (util-linux) is not installed: cannot probe safely")
    verdict_rules = [r for r in xtables_rules(Config(), Marks(20)) if r.table == "mangle"]
    for rule in verdict_rules:
        if tool_path(rule.tool) is None:
            return Capability(False, f"{rule.tool} is not installed")
        done = run_tool(["unshare", "--net", "--", *rule.argv("-I")])
        if done.returncode != 0:
            lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()][:ERROR_LINES]
            detail = "; ".join(lines) or f"exit code {done.returncode}"
            return Capability(False, f"{rule.tool} refuses an NFQUEUE rule: {detail}")
    tools = " and ".join(XTABLES_TOOLS.values())
    return Capability(True, f"{tools} accept the NFQUEUE target")


def probe_capabilities() -> Capabilities:
    return Capabilities(probe_native(), probe_xtables())


def probe_queue_backend(caps: Capabilities | None = None) -> Backend | None:
    """native where it works, else xtables where it works, else ``None``."""
    caps = caps or probe_capabilities()
    if caps.native.available:
        return "native"
    if caps.xtables.available:
        return "xtables"
    return None


def choose_backend(requested: Requested, caps: Capabilities) -> BackendChoice:
    """Honour ``dataplane.queue_backend``; a forced backend the kernel lacks is an error."""
    if requested == "native":
        if not caps.native.available:
            raise NetfilterError(
                f"dataplane.queue_backend is native but {caps.native.detail}"
                " (set it to auto or xtables)"
            )
        return BackendChoice(requested, "native", f"configured native; {caps.native.detail}")
    if requested == "xtables":
        if not caps.xtables.available:
            raise NetfilterError(f"dataplane.queue_backend is xtables but {caps.xtables.detail}")
        return BackendChoice(requested, "xtables", f"configured xtables; {caps.xtables.detail}")
    backend = probe_queue_backend(caps)
    if backend == "native":
        return BackendChoice(requested, "native", f"auto: {caps.native.detail}")
    if backend == "xtables":
        return BackendChoice(
            requested,
            "xtables",
            f"auto: native unavailable ({caps.native.detail}); {caps.xtables.detail}",
        )
    raise NetfilterError(
        f"no queue backend works on this host: native: {caps.native.detail}; xtables:"
        f" {caps.xtables.detail}"
    )


def select_backend(config: Config) -> BackendChoice:
    """Probe this host and choose the backend for ``config``."""
    return choose_backend(config.dataplane.queue_backend, probe_capabilities())
