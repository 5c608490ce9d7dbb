"""The policy routing TPROXY needs: packets of flows to inspect are delivered locally.

The ruleset's ``divert`` chain puts the *inspect* state in the packet mark of every client
packet of such a flow and assigns it to the L7 engine's transparent listener. Routing
must then deliver the packet to the local host although its destination is not local: a
rule ``fwmark <inspect>/<state mask> lookup <l7.route_table>`` (priority
``l7.route_priority``) and, in that table, ``local default dev lo`` — for IPv4 and IPv6.

``ensure_divert_routes`` adds what is missing (idempotent); ``divert_routes_present`` says
whether both are in place. Netlink through pyroute2, in the calling thread's namespace.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from gatewayd.config import Config
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.marks import Marks, State

RTN_LOCAL = 2
RT_SCOPE_HOST = 254
_FAMILIES = ((socket.AF_INET, "0.0.0.0/0"), (socket.AF_INET6, "::/0"))


def _wanted(config: Config) -> tuple[int, int, int, int]:
    marks = Marks.from_config(config)
    return (marks.value(State.INSPECT), marks.state_mask, config.l7.route_table,
            config.l7.route_priority)


def _rule_present(ipr: Any, family: int, mark: int, mask: int, table: int) -> bool:
    for rule in ipr.get_rules(family=family):
        if (rule.get_attr("FRA_FWMARK") == mark and rule.get_attr("FRA_FWMASK") == mask
                and (rule.get_attr("FRA_TABLE") or rule["table"]) == table):
            return True
    return False


def _route_present(ipr: Any, family: int, table: int) -> bool:
    try:
        routes = ipr.get_routes(family=family, table=table)
    except NetlinkError:
        return False
    return any(r["type"] == RTN_LOCAL and r["dst_len"] == 0 for r in routes)


def ensure_divert_routes(config: Config) -> list[str]:
    """Add the divert rule and local route where missing; returns what was added."""
    mark, mask, table, priority = _wanted(config)
    added: list[str] = []
    try:
        with IPRoute() as ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            for family, default in _families_available():
                v = "ipv4" if family == socket.AF_INET else "ipv6"
                if not _rule_present(ipr, family, mark, mask, table):
                    try:
                        ipr.rule("add", family=family, table=table, priority=priority,
                                 fwmark=mark, fwmask=mask)
                        added.append(f"{v} rule fwmark {mark:#x}/{mask:#x} lookup {table}")
                    except NetlinkError as exc:
                        if exc.code != errno.EEXIST:
                            raise
                if not _route_present(ipr, family, table):
                    try:
                        ipr.route("add", family=family, dst=default, type="local", oif=lo,
                                  scope=RT_SCOPE_HOST, table=table)
                        added.append(f"{v} route local {default} dev lo table {table}")
                    except NetlinkError as exc:
                        if exc.code != errno.EEXIST:
                            raise
    except NetlinkError as exc:
        raise NetfilterError(f"cannot set up the policy routing for the L7 engine: {exc}"
                             " (root or CAP_NET_ADMIN?)") from None
    return added


def divert_routes_present(config: Config) -> bool:
    mark, mask, table, _ = _wanted(config)
    with IPRoute() as ipr:
        return all(_rule_present(ipr, family, mark, mask, table)
                   and _route_present(ipr, family, table)
                   for family, _ in _families_available())


def bridge_netfilter_problem(config: Config, sys_root: Path = Path("/")) -> str | None:
    """Why diverted flows from a bridged workload interface would never reach the L7
    engine, or ``None``. With br_netfilter's ``bridge-nf-call-iptables`` on (Docker turns it
    on), bridged packets meet the IP hooks inside the bridge, and the socket TPROXY
    assigns there is lost before the IP stack delivers them."""
    bridged = [i.name for i in config.workload.interfaces
               if (sys_root / "sys/class/net" / i.name / "bridge").is_dir()]
    if not bridged:
        return None
    on = []
    for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        try:
            value = (sys_root / "proc/sys/net/bridge" / key).read_text().strip()
        except OSError:
            continue
        if value == "1":
            on.append(f"net.bridge.{key}")
    if not on:
        return None
    return (f"{' and '.join(on)} = 1 while workload interface {', '.join(bridged)} is a"
            " bridge: flows to inspect from it never reach the L7 engine (set them to 0 in"
            " the gateway's network namespace)")


def _families_available() -> list[tuple[int, str]]:
    """IPv4, and IPv6 where the host has it."""
    out: list[tuple[int, str]] = [_FAMILIES[0]]
    if socket.has_ipv6:
        try:
            socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
        except OSError:
            return out
        out.append(_FAMILIES[1])
    return out
