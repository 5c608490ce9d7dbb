"""What a lease may be: its TTL bounds and the interface it binds to (anti-spoofing).

A lease binds an address to an agent only on the workload interface the address belongs
to, so a host on another segment cannot claim it by forging its source. With workload
interfaces configured, an omitted interface is found from the subnets, and a named one
must be declared and contain the address. With none configured, the interface must be
named. Pure: built from the configuration, no IO.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

from gatewayd.config import Config, valid_interface_name
from gatewayd.duration import format_duration
from gatewayd.identity.address import IPAddress

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class WorkloadSubnets:
    """A workload interface and the subnets its sources must come from."""

    name: str
    subnets: tuple[IPNetwork, ...]

    def contains(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.subnets)

    def describe(self) -> str:
        return ", ".join(str(n) for n in self.subnets)


@dataclass(frozen=True, slots=True)
class LeaseRules:
    default_ttl_s: int
    max_ttl_s: int
    interfaces: tuple[WorkloadSubnets, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> LeaseRules:
        return cls(
            default_ttl_s=config.leases.default_ttl,
            max_ttl_s=config.leases.max_ttl,
            interfaces=tuple(
                WorkloadSubnets(i.name, tuple(i.subnets)) for i in config.workload.interfaces
            ),
        )

    def ttl(self, ttl_s: int | None) -> int:
        """The TTL a grant gets (the default when ``None``); ``ValueError`` if out of bounds."""
        if ttl_s is None:
            return self.default_ttl_s
        if ttl_s <= 0:
            raise ValueError(f"lease TTL must be greater than zero (got {ttl_s}s)")
        if ttl_s > self.max_ttl_s:
            raise ValueError(
                f"lease TTL {format_duration(ttl_s)} is longer than the maximum"
                f" {format_duration(self.max_ttl_s)} (leases.max_ttl)"
            )
        return ttl_s

    def interface(self, ip: IPAddress, iface: str | None) -> str:
        """The interface a lease of ``ip`` binds to; ``ValueError`` if it may not be ``iface``."""
        if iface is not None and not valid_interface_name(iface):
            raise ValueError(
                f"invalid interface name {iface!r}: expected 1 to 15 letters, digits,"
                " '_', '.', '@' or '-'"
            )
        if not self.interfaces:
            if iface is None:
                raise ValueError(
                    "no workload interfaces are configured: name the interface the lease binds to"
                )
            return iface
        if iface is None:
            for candidate in self.interfaces:
                if candidate.contains(ip):
                    return candidate.name
            known = "; ".join(f"{i.name}: {i.describe()}" for i in self.interfaces)
            raise ValueError(f"{ip} is not in any workload interface's subnets ({known})")
        declared = {i.name: i for i in self.interfaces}
        match = declared.get(iface)
        if match is None:
            raise ValueError(
                f"interface {iface!r} is not a workload interface (declared: {', '.join(declared)})"
            )
        if not match.contains(ip):
            raise ValueError(
                f"{ip} is not in {iface}'s subnets ({match.describe()}): a lease binds an"
                " address only on the interface it belongs to"
            )
        return iface
