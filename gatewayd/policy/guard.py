"""The guard class: destinations no rule reaches unless it names them explicitly.

Loopback, unspecified, link-local, cloud metadata services and the gateway's own
addresses are where an agent that was told "allow *.example.com" must still not end up
(DNS rebinding, SSRF through an allowed name). A rule *names* a guarded destination when one
of its CIDRs lies inside a guarded range, or one of its exact hosts is a guarded name;
wildcards and broad CIDRs never do. Deny rules apply to guarded destinations as usual.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from gatewayd.config import Config
from gatewayd.policy.selectors import normalize_host

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (class, network). More specific entries name the destination in reasons.
BUILTIN_NETWORKS: tuple[tuple[str, str], ...] = (
    ("unspecified", "0.0.0.0/8"),
    ("unspecified", "::/128"),
    ("loopback", "127.0.0.0/8"),
    ("loopback", "::1/128"),
    ("link-local", "169.254.0.0/16"),
    ("link-local", "fe80::/10"),
    # Cloud metadata services. 169.254.169.254: AWS, GCP, Azure, OCI, DigitalOcean,
    # OpenStack; 169.254.170.2: AWS ECS task metadata; fd00:ec2::254: AWS over IPv6;
    # 100.100.100.200: Alibaba Cloud; 168.63.129.16: Azure wire server; 192.0.0.192:
    # Oracle Cloud (legacy).
    ("metadata", "169.254.169.254/32"),
    ("metadata", "169.254.170.2/32"),
    ("metadata", "fd00:ec2::254/128"),
    ("metadata", "100.100.100.200/32"),
    ("metadata", "168.63.129.16/32"),
    ("metadata", "192.0.0.192/32"),
)

BUILTIN_HOSTS: tuple[tuple[str, str], ...] = (
    ("loopback", "localhost"),
    ("metadata", "metadata.google.internal"),
    ("metadata", "metadata.goog"),
    ("metadata", "metadata"),
    ("metadata", "instance-data"),
    ("metadata", "instance-data.ec2.internal"),
    ("metadata", "metadata.azure.internal"),
    ("metadata", "metadata.tencentyun.com"),
)


@dataclass(frozen=True)
class Guard:
    """A set of guarded networks and host names, each with its class."""

    networks: tuple[tuple[str, Network], ...]
    hosts: tuple[tuple[str, str], ...]
    # Private ranges: guarded for DNS answers only (see ``Plan.resolution_guard``).
    private: tuple[Network, ...] = ()

    @classmethod
    def builtin(
        cls,
        *,
        gateway_addresses: Iterable[IPAddress] = (),
        extra_networks: Iterable[Network] = (),
        extra_hosts: Iterable[str] = (),
        private: Iterable[Network] = (),
    ) -> Guard:
        nets: list[tuple[str, Network]] = [
            (name, ipaddress.ip_network(n)) for name, n in BUILTIN_NETWORKS
        ]
        nets += [("gateway", ipaddress.ip_network(a)) for a in gateway_addresses]
        nets += [("configured", n) for n in extra_networks]
        hosts = list(BUILTIN_HOSTS) + [("configured", normalize_host(h)) for h in extra_hosts]
        return cls(tuple(nets), tuple(hosts), tuple(private))

    @classmethod
    def from_config(cls, config: Config) -> Guard:
        return cls.builtin(
            gateway_addresses=config.gateway.addresses,
            extra_networks=config.policy.guard.extra_cidrs,
            extra_hosts=config.policy.guard.extra_hosts,
            private=config.policy.guard.private_cidrs,
        )

    def index(self) -> GuardIndex:
        return GuardIndex(self)


@dataclass(frozen=True, slots=True)
class GuardHit:
    """Why a destination is guarded: the most specific guarded network holding its address
    and/or the guarded name it was asked for."""

    kind: str
    network: Network | None
    host: str | None

    def named_by(self, target: Network | str | None) -> bool:
        """Whether a rule's destination entry names this guarded destination explicitly:
        a CIDR inside the guarded network, or the guarded name itself as an exact host."""
        if target is None:
            return False
        if isinstance(target, str):
            return self.host is not None and target == self.host
        net = self.network
        return (
            net is not None
            and target.version == net.version
            and target.subnet_of(net)  # type: ignore[arg-type]
        )


class GuardIndex:
    """Constant-time guard lookups: one dict probe per distinct prefix length."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._hosts = {h: name for name, h in guard.hosts}
        by_len: dict[tuple[int, int], dict[int, tuple[str, Network]]] = {}
        for name, net in guard.networks:
            table = by_len.setdefault((net.version, net.prefixlen), {})
            table.setdefault(int(net.network_address), (name, net))
        self._v4 = sorted(
            ((plen, t) for (v, plen), t in by_len.items() if v == 4), key=lambda x: -x[0]
        )
        self._v6 = sorted(
            ((plen, t) for (v, plen), t in by_len.items() if v == 6), key=lambda x: -x[0]
        )
        # First octets any guarded IPv4 network covers: most addresses are decided
        # unguarded by one set probe.
        octets: set[int] = set()
        for _, net in guard.networks:
            if net.version == 4:
                first = int(net.network_address) >> 24
                last = int(net.broadcast_address) >> 24
                octets.update(range(first, last + 1))
        self._octets4 = frozenset(octets)

    def classify(self, ip: IPAddress | None, host: str | None) -> GuardHit | None:
        """Whether a destination is guarded, and why (most specific network first)."""
        if ip is None:
            return self.classify_value(0, 0, host)
        return self.classify_value(int(ip), ip.version, host)

    def classify_value(self, value: int, version: int, host: str | None) -> GuardHit | None:
        """``classify`` for an address given as an integer and its version (0: none)."""
        kind: str | None = None
        network: Network | None = None
        if version:
            if version == 4:
                width, tables = 32, self._v4
                if value >> 24 not in self._octets4:
                    tables = []
            else:
                width, tables = 128, self._v6
            for plen, table in tables:
                shift = width - plen
                hit = table.get((value >> shift) << shift)
                if hit is not None:
                    kind, network = hit
                    break
        guarded_host: str | None = None
        if host is not None:
            name = self._hosts.get(host)
            if name is None and host.endswith(".localhost"):
                name = "loopback"
            if name is not None:
                guarded_host = host
                kind = kind or name
        if kind is None:
            return None
        return GuardHit(kind, network, guarded_host)
