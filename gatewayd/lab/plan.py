"""The lab's address plan: namespace and interface names, addresses, routes, lab names.

Pure data derived from a prefix and an agent count; the IO shell builds exactly this.

```
 <p>-a1 eth0 10.77.0.11 ─┐                                  ┌─ <p>-up eth0 10.78.0.2
 <p>-a2 eth0 10.77.0.12 ─┼─ wl0 10.77.0.1  <p>-gw  up0 10.78.0.1 ─┤  services 10.78.0.10+
 <p>-aN eth0 10.77.0.1N ─┘  (bridge)                             └─ DNS 10.78.0.53
```

Agent ``i`` has ``10.77.0.(10+i)`` and the IPv6 address whose last group reads the same
(``fd77::11`` for agent 1); lab names get ``10.78.0.(10+k)`` and ``fd78::(10+k)`` the same
way, in the order of ``LAB_NAMES``. The DNS server also answers names that point elsewhere
(``metadata.lab``, ``cdn.lab``, ``rebind.lab``, ``gateway.lab``, ``private.lab``) and two
TXT-only names (``tunnel.lab``, ``small.lab``), for bypass tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from gatewayd.lab.errors import LabError

DEFAULT_PREFIX = "cg-lab"
DEFAULT_STATE_DIR = Path("/run/clawgress-lab")
DEFAULT_AGENTS = 3
MAX_AGENTS = 99
DEFAULT_DNS_TTL = 60

# Names the lab's DNS server answers and the upstream serves (HTTP on 80 and 8080, HTTPS
# on 443, 853 and 8443, UDP echo on 443 and 853), each on an address of its own. New names
# go at the end: a name's place fixes its address.
LAB_NAMES: tuple[str, ...] = (
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "pastebin.com",
    "github.com",
    "raw.githubusercontent.com",
    "example.com",
    # Public DNS-over-HTTPS resolvers (the upstream answers them like any lab name).
    "cloudflare-dns.com",
    "dns.google",
)
DOH_NAMES: tuple[str, ...] = ("cloudflare-dns.com", "dns.google")
# A name that resolves to the cloud metadata addresses (nothing answers there): for
# guard-class tests.
METADATA_NAME = "metadata.lab"
# A second name on example.com's address (two names, one address, as on a CDN).
CDN_NAME = "cdn.lab"
CDN_ORIGIN = "example.com"
# DNS rebinding: a public-looking name that resolves to loopback.
REBIND_NAME = "rebind.lab"
# A name for the gateway's own uplink address.
GATEWAY_NAME = "gateway.lab"
# A name for a private address nothing in the lab owns.
PRIVATE_NAME = "private.lab"
# TXT-only names (no A or AAAA): a big answer (about 1,200 bytes, more than plain UDP DNS
# carries: a DNS-tunnel stand-in) and a small one.
TUNNEL_NAME = "tunnel.lab"
SMALL_TXT_NAME = "small.lab"
_TUNNEL_FILL = "abcdefghijklmnopqrstuvwxyz234567" * 8
TXT_RECORDS: dict[str, tuple[str, ...]] = {
    # Five character strings of 239 bytes: 1,200 bytes of record data with their lengths.
    TUNNEL_NAME: tuple(f"chunk{i}-{_TUNNEL_FILL}"[:239] for i in range(5)),
    # One string of 19 bytes: 20 bytes of record data.
    SMALL_TXT_NAME: ("lab-small-txt-value",),
}

# Interface names inside the namespaces (the same in every lab: namespaces keep them apart).
WORKLOAD_IFACE = "wl0"
UPLINK_IFACE = "up0"
AGENT_IFACE = "eth0"
UPSTREAM_IFACE = "eth0"
# The workload environment the lab's gateway configuration declares.
ENVIRONMENT = "lab"

_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")


@dataclass(frozen=True)
class Endpoint:
    """An IPv4 and an IPv6 address of one thing in the lab."""

    v4: IPv4Address
    v6: IPv6Address

    @classmethod
    def of(cls, v4: str, v6: str) -> Endpoint:
        return cls(IPv4Address(v4), IPv6Address(v6))

    def as_dict(self) -> dict[str, str]:
        return {"v4": str(self.v4), "v6": str(self.v6)}


WORKLOAD_V4 = IPv4Network("10.77.0.0/24")
WORKLOAD_V6 = IPv6Network("fd77::/64")
UPLINK_V4 = IPv4Network("10.78.0.0/24")
UPLINK_V6 = IPv6Network("fd78::/64")
GATEWAY_WORKLOAD = Endpoint.of("10.77.0.1", "fd77::1")
GATEWAY_UPLINK = Endpoint.of("10.78.0.1", "fd78::1")
UPSTREAM = Endpoint.of("10.78.0.2", "fd78::2")
DNS_SERVER = Endpoint.of("10.78.0.53", "fd78::53")
METADATA = Endpoint.of("169.254.169.254", "fd00:ec2::254")
LOOPBACK = Endpoint.of("127.0.0.1", "::1")
PRIVATE = Endpoint.of("192.168.77.7", "fd99::7")


def _numbered(v4_net: IPv4Network, v6_net: IPv6Network, n: int) -> Endpoint:
    """Host ``n`` (10..254) of both subnets; the IPv6 group reads like the IPv4 octet."""
    v4 = IPv4Address(int(v4_net.network_address) + n)
    v6 = IPv6Address(int(v6_net.network_address) + int(str(n), 16))
    return Endpoint(v4, v6)


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise LabError(
            f"lab prefix {prefix!r}: 1 to 24 lower-case letters, digits or '-', starting"
            " with a letter or digit"
        )
    return prefix


@dataclass(frozen=True)
class LabPlan:
    """Everything about a lab that follows from its prefix and its number of agents."""

    prefix: str = DEFAULT_PREFIX
    agents: int = DEFAULT_AGENTS

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        if not 1 <= self.agents <= MAX_AGENTS:
            raise LabError(f"a lab has 1 to {MAX_AGENTS} agents, not {self.agents}")

    # --- namespaces ---------------------------------------------------------------------

    @property
    def gateway_ns(self) -> str:
        return f"{self.prefix}-gw"

    @property
    def upstream_ns(self) -> str:
        return f"{self.prefix}-up"

    def agent_ns(self, index: int) -> str:
        self._check_index(index)
        return f"{self.prefix}-a{index}"

    @property
    def agent_namespaces(self) -> tuple[str, ...]:
        return tuple(self.agent_ns(i) for i in self.agent_indexes)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """All of the lab's namespaces, in the order they are built."""
        return (self.gateway_ns, self.upstream_ns, *self.agent_namespaces)

    @property
    def agent_indexes(self) -> range:
        return range(1, self.agents + 1)

    def owns_namespace(self, name: str) -> bool:
        """Whether ``name`` is a namespace a lab with this prefix makes, whatever its size
        (so ``down`` finds the agents of a bigger lab that crashed)."""
        rest = name.removeprefix(f"{self.prefix}-")
        if rest == name:
            return False
        return rest in ("gw", "up") or bool(re.fullmatch(r"a[1-9][0-9]?", rest))

    def agent_index(self, agent: str | int) -> int:
        """``1``, ``"1"``, ``"a1"`` or ``"<prefix>-a1"`` → 1."""
        if isinstance(agent, int):
            index = agent
        else:
            text = agent.removeprefix(f"{self.prefix}-").removeprefix("a")
            if not text.isdigit():
                raise LabError(
                    f"agent {agent!r}: expected a1..a{self.agents} or"
                    f" {self.prefix}-a1..{self.prefix}-a{self.agents}"
                )
            index = int(text)
        self._check_index(index)
        return index

    def _check_index(self, index: int) -> None:
        if not 1 <= index <= self.agents:
            raise LabError(f"agent {index}: this lab has agents a1..a{self.agents}")

    # --- links on the gateway side ------------------------------------------------------

    def agent_port(self, index: int) -> str:
        """The gateway end of agent ``index``'s veth, a port of the ``wl0`` bridge."""
        self._check_index(index)
        return f"a{index}"

    # --- addresses ----------------------------------------------------------------------

    def agent_address(self, index: int) -> Endpoint:
        self._check_index(index)
        return _numbered(WORKLOAD_V4, WORKLOAD_V6, 10 + index)

    @property
    def services(self) -> dict[str, Endpoint]:
        """Lab name → the upstream address that serves it."""
        return {
            name: _numbered(UPLINK_V4, UPLINK_V6, 10 + k) for k, name in enumerate(LAB_NAMES)
        }

    @property
    def dns_names(self) -> dict[str, Endpoint]:
        """Every name the lab's DNS server answers with A and AAAA: the services,
        ``metadata.lab``, and the names that point at an address another name has or at
        one the upstream does not serve (``cdn.lab``, ``rebind.lab``, ``gateway.lab``,
        ``private.lab``). The TXT-only names are in ``txt_records``."""
        services = self.services
        return {
            **services,
            METADATA_NAME: METADATA,
            CDN_NAME: services[CDN_ORIGIN],
            REBIND_NAME: LOOPBACK,
            GATEWAY_NAME: GATEWAY_UPLINK,
            PRIVATE_NAME: PRIVATE,
        }

    @property
    def txt_records(self) -> dict[str, tuple[str, ...]]:
        """TXT-only name → its character strings (each at most 255 bytes)."""
        return dict(TXT_RECORDS)

    @property
    def certificate_names(self) -> tuple[str, ...]:
        """The names the upstream's certificate carries: every name with an address in
        the lab DNS (the services first, so the first is the subject's common name)."""
        return tuple(self.dns_names)

    @property
    def certificate_addresses(self) -> tuple[IPv4Address | IPv6Address, ...]:
        """The addresses the upstream's certificate carries: the services' and its own."""
        return tuple(a for e in (*self.services.values(), UPSTREAM) for a in (e.v4, e.v6))

    @property
    def upstream_addresses(self) -> tuple[Endpoint, ...]:
        """Addresses on the upstream's ``eth0``: its own, the services', the DNS server's."""
        return (UPSTREAM, *self.services.values(), DNS_SERVER)


def resolv_conf() -> str:
    """``/etc/netns/<agent>/resolv.conf``: the lab DNS server, IPv4 first."""
    return (
        "# clawgress lab: the lab DNS server in the upstream namespace\n"
        f"nameserver {DNS_SERVER.v4}\n"
        f"nameserver {DNS_SERVER.v6}\n"
        "options timeout:2 attempts:2\n"
    )
