from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

import pytest

from gatewayd.lab import LabError
from gatewayd.lab.plan import (
    CDN_NAME,
    DNS_SERVER,
    DOH_NAMES,
    GATEWAY_NAME,
    GATEWAY_UPLINK,
    GATEWAY_WORKLOAD,
    LAB_NAMES,
    LOOPBACK,
    MAX_AGENTS,
    METADATA,
    METADATA_NAME,
    PRIVATE,
    PRIVATE_NAME,
    REBIND_NAME,
    SMALL_TXT_NAME,
    TUNNEL_NAME,
    UPLINK_V4,
    UPLINK_V6,
    UPSTREAM,
    WORKLOAD_V4,
    WORKLOAD_V6,
    Endpoint,
    LabPlan,
    resolv_conf,
)


def test_namespaces_follow_the_prefix() -> None:
    plan = LabPlan("cg-lab", 3)
    assert plan.gateway_ns == "cg-lab-gw"
    assert plan.upstream_ns == "cg-lab-up"
    assert plan.agent_namespaces == ("cg-lab-a1", "cg-lab-a2", "cg-lab-a3")
    assert plan.namespaces == ("cg-lab-gw", "cg-lab-up", "cg-lab-a1", "cg-lab-a2", "cg-lab-a3")
    assert plan.agent_port(2) == "a2"


def test_agent_addresses_read_alike_in_both_families() -> None:
    plan = LabPlan("x", 12)
    assert plan.agent_address(1) == Endpoint.of("10.77.0.11", "fd77::11")
    assert plan.agent_address(3) == Endpoint.of("10.77.0.13", "fd77::13")
    assert plan.agent_address(10) == Endpoint.of("10.77.0.20", "fd77::20")
    for i in plan.agent_indexes:
        address = plan.agent_address(i)
        assert address.v4 in WORKLOAD_V4
        assert address.v6 in WORKLOAD_V6
        assert address != GATEWAY_WORKLOAD


def test_every_agent_address_is_distinct_up_to_the_maximum() -> None:
    plan = LabPlan("x", MAX_AGENTS)
    addresses = [plan.agent_address(i) for i in plan.agent_indexes]
    assert len({a.v4 for a in addresses}) == MAX_AGENTS
    assert len({a.v6 for a in addresses}) == MAX_AGENTS
    assert all(a.v4 in WORKLOAD_V4 and a.v4 != WORKLOAD_V4.broadcast_address for a in addresses)


def test_services_get_numbered_upstream_addresses() -> None:
    services = LabPlan().services
    assert tuple(services) == LAB_NAMES
    assert services["api.openai.com"] == Endpoint.of("10.78.0.10", "fd78::10")
    assert services["example.com"] == Endpoint.of("10.78.0.16", "fd78::16")
    for endpoint in services.values():
        assert endpoint.v4 in UPLINK_V4
        assert endpoint.v6 in UPLINK_V6


def test_upstream_addresses_are_unique_and_apart_from_the_gateway() -> None:
    plan = LabPlan()
    addresses = plan.upstream_addresses
    assert addresses[0] == UPSTREAM
    assert DNS_SERVER in addresses
    v4 = [a.v4 for a in addresses] + [GATEWAY_UPLINK.v4]
    v6 = [a.v6 for a in addresses] + [GATEWAY_UPLINK.v6]
    assert len(set(v4)) == len(v4)
    assert len(set(v6)) == len(v6)


def test_dns_names_add_the_metadata_name() -> None:
    names = LabPlan().dns_names
    assert names[METADATA_NAME] == METADATA
    assert METADATA.v4 == IPv4Address("169.254.169.254")
    assert METADATA.v6 == IPv6Address("fd00:ec2::254")
    assert set(names) == {*LAB_NAMES, METADATA_NAME, CDN_NAME, REBIND_NAME, GATEWAY_NAME,
                          PRIVATE_NAME}


def test_the_existing_names_keep_their_addresses() -> None:
    services = LabPlan().services
    assert LAB_NAMES[:7] == (
        "api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com",
        "pastebin.com", "github.com", "raw.githubusercontent.com", "example.com",
    )
    for k, name in enumerate(LAB_NAMES[:7]):
        assert services[name] == Endpoint.of(f"10.78.0.{10 + k}", f"fd78::{10 + k}")


def test_doh_resolvers_are_services_on_the_next_addresses() -> None:
    services = LabPlan().services
    assert DOH_NAMES == ("cloudflare-dns.com", "dns.google")
    assert services["cloudflare-dns.com"] == Endpoint.of("10.78.0.17", "fd78::17")
    assert services["dns.google"] == Endpoint.of("10.78.0.18", "fd78::18")
    assert all(services[n] in LabPlan().upstream_addresses for n in DOH_NAMES)


def test_names_for_bypass_tests_point_where_they_should() -> None:
    names = LabPlan().dns_names
    # Two names, one address (as on a CDN); the upstream does not get another address.
    assert names[CDN_NAME] == names["example.com"] == Endpoint.of("10.78.0.16", "fd78::16")
    assert names[REBIND_NAME] == LOOPBACK == Endpoint.of("127.0.0.1", "::1")
    assert names[GATEWAY_NAME] == GATEWAY_UPLINK == Endpoint.of("10.78.0.1", "fd78::1")
    assert names[PRIVATE_NAME] == PRIVATE == Endpoint.of("192.168.77.7", "fd99::7")
    upstream = LabPlan().upstream_addresses
    for name in (REBIND_NAME, GATEWAY_NAME, PRIVATE_NAME, METADATA_NAME):
        assert names[name] not in upstream
    assert len(upstream) == 1 + len(LAB_NAMES) + 1


def test_txt_records() -> None:
    records = LabPlan().txt_records
    assert set(records) == {TUNNEL_NAME, SMALL_TXT_NAME}
    for name, strings in records.items():
        assert name not in LabPlan().dns_names  # TXT only: no A or AAAA
        assert all(1 <= len(s) <= 255 for s in strings)
        # Plain characters: dnsmasq takes them on its command line, split at commas.
        assert all(re.fullmatch(r"[a-z0-9-]+", s) for s in strings)

    def wire_size(strings: tuple[str, ...]) -> int:
        return sum(1 + len(s) for s in strings)

    assert len(records[TUNNEL_NAME]) > 1
    assert 1100 <= wire_size(records[TUNNEL_NAME]) <= 1300  # more than a 512-byte UDP answer
    assert 15 <= wire_size(records[SMALL_TXT_NAME]) <= 25


def test_the_certificate_names_every_name_with_an_address() -> None:
    plan = LabPlan()
    assert plan.certificate_names[0] == LAB_NAMES[0]
    assert set(plan.certificate_names) == set(plan.dns_names)
    assert {*DOH_NAMES, CDN_NAME} <= set(plan.certificate_names)
    addresses = plan.certificate_addresses
    for endpoint in (*plan.services.values(), UPSTREAM):
        assert endpoint.v4 in addresses
        assert endpoint.v6 in addresses
    assert len(addresses) == 2 * (len(LAB_NAMES) + 1)


@pytest.mark.parametrize(
    ("name", "owned"),
    [
        ("cg-lab-gw", True),
        ("cg-lab-up", True),
        ("cg-lab-a1", True),
        ("cg-lab-a42", True),  # a bigger lab with the same prefix
        ("cg-lab-a0", False),
        ("cg-lab-a100", False),
        ("cg-lab-2-gw", False),  # another lab whose prefix starts alike
        ("cg-lab", False),
        ("cg-labx-gw", False),
        ("other-gw", False),
    ],
)
def test_owns_namespace(name: str, owned: bool) -> None:
    assert LabPlan("cg-lab", 3).owns_namespace(name) is owned


@pytest.mark.parametrize("agent", [2, "2", "a2", "cg-lab-a2"])
def test_agent_index_accepts_every_spelling(agent: str | int) -> None:
    assert LabPlan("cg-lab", 3).agent_index(agent) == 2


@pytest.mark.parametrize("agent", [0, 4, "a4", "b1", "cg-lab-gw", "", "a", "other-a1"])
def test_agent_index_refuses_unknown_agents(agent: str | int) -> None:
    with pytest.raises(LabError, match="agent"):
        LabPlan("cg-lab", 3).agent_index(agent)


@pytest.mark.parametrize("prefix", ["", "CG", "-x", "a b", "a/b", "x" * 25, "lab_1"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(LabError, match="prefix"):
        LabPlan(prefix)


@pytest.mark.parametrize("agents", [0, -1, MAX_AGENTS + 1])
def test_agent_count_is_bounded(agents: int) -> None:
    with pytest.raises(LabError, match="agents"):
        LabPlan("x", agents)


def test_longest_prefix_keeps_namespace_names_usable() -> None:
    plan = LabPlan("x" * 24, MAX_AGENTS)
    assert max(len(n) for n in plan.namespaces) <= 28


def test_resolv_conf_names_the_lab_dns_server() -> None:
    text = resolv_conf()
    servers = [line.split()[1] for line in text.splitlines() if line.startswith("nameserver")]
    assert servers == [str(DNS_SERVER.v4), str(DNS_SERVER.v6)]


def test_endpoint_as_dict() -> None:
    assert Endpoint.of("10.0.0.1", "fd00::1").as_dict() == {"v4": "10.0.0.1", "v6": "fd00::1"}
