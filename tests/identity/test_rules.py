from __future__ import annotations

import ipaddress

import pytest

from gatewayd.config import parse_config
from gatewayd.identity import LeaseRules, WorkloadSubnets

RULES = LeaseRules(
    default_ttl_s=600,
    max_ttl_s=3600,
    interfaces=(
        WorkloadSubnets(
            "eth1",
            (ipaddress.ip_network("10.10.0.0/24"), ipaddress.ip_network("fd00:10::/64")),
        ),
        WorkloadSubnets("eth2", (ipaddress.ip_network("10.20.0.0/24"),)),
    ),
)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_from_config() -> None:
    config = parse_config(
        "workload:\n  interfaces:\n    - {name: wl0, subnets: [192.0.2.0/24]}\n"
        "leases: {default_ttl: 5m, max_ttl: 2h}\n",
        "test",
    )
    rules = LeaseRules.from_config(config)
    assert (rules.default_ttl_s, rules.max_ttl_s) == (300, 7200)
    assert rules.interfaces == (WorkloadSubnets("wl0", (ipaddress.ip_network("192.0.2.0/24"),)),)


def test_ttl_bounds() -> None:
    assert RULES.ttl(None) == 600
    assert RULES.ttl(1) == 1
    assert RULES.ttl(3600) == 3600
    with pytest.raises(ValueError, match="greater than zero"):
        RULES.ttl(0)
    with pytest.raises(ValueError, match=r"1h1s is longer than the maximum 1h \(leases.max_ttl\)"):
        RULES.ttl(3601)


def test_interface_found_from_subnets() -> None:
    assert RULES.interface(ip("10.10.0.9"), None) == "eth1"
    assert RULES.interface(ip("fd00:10::9"), None) == "eth1"
    assert RULES.interface(ip("10.20.0.9"), None) == "eth2"
    with pytest.raises(ValueError, match=r"10\.30\.0\.9 is not in any workload interface's"):
        RULES.interface(ip("10.30.0.9"), None)


def test_named_interface_must_hold_the_address() -> None:
    assert RULES.interface(ip("10.20.0.9"), "eth2") == "eth2"
    with pytest.raises(ValueError, match=r"not in eth2's subnets \(10\.20\.0\.0/24\)"):
        RULES.interface(ip("10.10.0.9"), "eth2")
    with pytest.raises(
        ValueError, match=r"'eth3' is not a workload interface \(declared: eth1, eth2\)"
    ):
        RULES.interface(ip("10.10.0.9"), "eth3")


def test_no_interfaces_declared() -> None:
    free = LeaseRules(default_ttl_s=60, max_ttl_s=60)
    assert free.interface(ip("10.10.0.9"), "anything0") == "anything0"
    with pytest.raises(ValueError, match="no workload interfaces are configured"):
        free.interface(ip("10.10.0.9"), None)
    with pytest.raises(ValueError, match="invalid interface name"):
        free.interface(ip("10.10.0.9"), "x" * 16)
