"""Building and removing the lab's namespaces, links, addresses and routes (netlink).

Every link is created inside a lab namespace (veth peers straight into their target
namespace), so nothing of the lab ever appears in the host's own namespace: removing the
namespaces removes every link with them.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from gatewayd.lab.commands import (
    SYSCTLS_ALL,
    SYSCTLS_GATEWAY,
    SYSCTLS_GATEWAY_BRIDGE,
    in_namespace,
    sysctl_argv,
)
from gatewayd.lab.errors import LabError
from gatewayd.lab.plan import (
    AGENT_IFACE,
    GATEWAY_UPLINK,
    GATEWAY_WORKLOAD,
    UPLINK_IFACE,
    UPSTREAM,
    UPSTREAM_IFACE,
    WORKLOAD_IFACE,
    WORKLOAD_V4,
    WORKLOAD_V6,
    LabPlan,
    resolv_conf,
)
from gatewayd.lab.processes import run

ETC_NETNS = Path("/etc/netns")
IFA_F_NODAD = 0x02
DEFAULT_V4 = "0.0.0.0/0"
DEFAULT_V6 = "::/0"


def list_namespaces() -> list[str]:
    return sorted(netns.listnetns())


def create_namespaces(plan: LabPlan, ip: str, sysctl: str) -> None:
    """Create the namespaces and set their sysctls (before any link exists in them, so
    the no-DAD defaults apply to every interface)."""
    for name in plan.namespaces:
        try:
            netns.create(name)
        except OSError as exc:
            raise LabError(f"cannot create namespace {name}: {exc.strerror or exc}") from None
    for name in plan.namespaces:
        settings = SYSCTLS_GATEWAY if name == plan.gateway_ns else SYSCTLS_ALL
        run(in_namespace(ip, name, sysctl_argv(sysctl, settings)), f"sysctl in {name}")
        if name == plan.gateway_ns:
            run(in_namespace(ip, name, sysctl_argv(sysctl, SYSCTLS_GATEWAY_BRIDGE,
                                                   optional=True)), f"sysctl in {name}")


def build_links(plan: LabPlan) -> None:
    """Links, addresses and routes of every namespace (see ``gatewayd.lab.plan``)."""
    try:
        _build_gateway(plan)
        _build_upstream(plan)
        for i in plan.agent_indexes:
            _build_agent(plan, i)
    except NetlinkError as exc:
        raise LabError(f"netlink refused a lab link, address or route: {exc}") from None


def _ifindex(ipr: Any, name: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise LabError(f"interface {name} did not appear")
    return int(found[0])


def _address(ipr: Any, index: int, address: IPv4Address | IPv6Address, prefixlen: int) -> None:
    flags = IFA_F_NODAD if address.version == 6 else 0
    ipr.addr("add", index=index, address=str(address), prefixlen=prefixlen, flags=flags)


def _up(ipr: Any, name: str) -> int:
    index = _ifindex(ipr, name)
    ipr.link("set", index=index, state="up")
    return index


def _build_gateway(plan: LabPlan) -> None:
    with IPRoute(netns=plan.gateway_ns) as ipr:
        _up(ipr, "lo")
        ipr.link("add", ifname=WORKLOAD_IFACE, kind="bridge",
                 br_stp_state=0, br_forward_delay=0, br_mcast_snooping=0)
        bridge = _ifindex(ipr, WORKLOAD_IFACE)
        ipr.link("add", ifname=UPLINK_IFACE, kind="veth",
                 peer={"ifname": UPSTREAM_IFACE, "net_ns_fd": plan.upstream_ns})
        for i in plan.agent_indexes:
            port = plan.agent_port(i)
            ipr.link("add", ifname=port, kind="veth",
                     peer={"ifname": AGENT_IFACE, "net_ns_fd": plan.agent_ns(i)})
            ipr.link("set", index=_ifindex(ipr, port), master=bridge, state="up")
        ipr.link("set", index=bridge, state="up")
        uplink = _up(ipr, UPLINK_IFACE)
        _address(ipr, bridge, GATEWAY_WORKLOAD.v4, 24)
        _address(ipr, bridge, GATEWAY_WORKLOAD.v6, 64)
        _address(ipr, uplink, GATEWAY_UPLINK.v4, 24)
        _address(ipr, uplink, GATEWAY_UPLINK.v6, 64)
        # Everything that is not a workload subnet is "the outside": the upstream.
        ipr.route("add", dst=DEFAULT_V4, gateway=str(UPSTREAM.v4))
        ipr.route("add", dst=DEFAULT_V6, gateway=str(UPSTREAM.v6))


def _build_upstream(plan: LabPlan) -> None:
    with IPRoute(netns=plan.upstream_ns) as ipr:
        _up(ipr, "lo")
        eth = _up(ipr, UPSTREAM_IFACE)
        _address(ipr, eth, UPSTREAM.v4, 24)
        _address(ipr, eth, UPSTREAM.v6, 64)
        for endpoint in plan.upstream_addresses[1:]:
            _address(ipr, eth, endpoint.v4, 32)
            _address(ipr, eth, endpoint.v6, 128)
        ipr.route("add", dst=str(WORKLOAD_V4), gateway=str(GATEWAY_UPLINK.v4))
        ipr.route("add", dst=str(WORKLOAD_V6), gateway=str(GATEWAY_UPLINK.v6))


def _build_agent(plan: LabPlan, index: int) -> None:
    address = plan.agent_address(index)
    with IPRoute(netns=plan.agent_ns(index)) as ipr:
        _up(ipr, "lo")
        eth = _up(ipr, AGENT_IFACE)
        _address(ipr, eth, address.v4, 24)
        _address(ipr, eth, address.v6, 64)
        ipr.route("add", dst=DEFAULT_V4, gateway=str(GATEWAY_WORKLOAD.v4))
        ipr.route("add", dst=DEFAULT_V6, gateway=str(GATEWAY_WORKLOAD.v6))


def namespace_addresses(name: str) -> dict[str, list[str]]:
    """Interface → its addresses (``ADDR/LEN``, link-local ones left out) in ``name``."""
    result: dict[str, list[str]] = {}
    with IPRoute(netns=name) as ipr:
        names = {int(link["index"]): str(link.get("ifname")) for link in ipr.get_links()}
        for msg in ipr.get_addr():
            address = msg.get("IFA_ADDRESS")
            if address is None or str(address).startswith("fe80:"):
                continue
            ifname = names.get(int(msg["index"]), str(msg["index"]))
            result.setdefault(ifname, []).append(f"{address}/{msg['prefixlen']}")
    return result


def remove_namespaces(names: Iterable[str]) -> list[str]:
    """Remove each named namespace that exists; returns those that could not be removed."""
    failed = []
    existing = set(list_namespaces())
    for name in names:
        if name not in existing:
            continue
        try:
            netns.remove(name)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                failed.append(f"{name} ({exc.strerror or exc})")
    return failed


def write_resolv_conf(namespace: str) -> None:
    directory = ETC_NETNS / namespace
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(resolv_conf(), encoding="utf-8")
    except OSError as exc:
        raise LabError(f"{directory}: cannot write resolv.conf: {exc.strerror or exc}") from None


def etc_netns_entries(plan: LabPlan) -> list[str]:
    """The ``/etc/netns`` entries that belong to a lab with ``plan``'s prefix."""
    try:
        return sorted(e.name for e in ETC_NETNS.iterdir() if plan.owns_namespace(e.name))
    except OSError:
        return []


def remove_etc_netns(plan: LabPlan) -> None:
    for name in etc_netns_entries(plan):
        with contextlib.suppress(OSError):
            shutil.rmtree(ETC_NETNS / name)
