from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

import pytest

from gatewayd.errors import NotFound, StoreError
from gatewayd.identity import (
    AGENT_REMOVED,
    IDENTITY_DOMAIN,
    Identity,
    LeaseRules,
    Registry,
    WorkloadSubnets,
)
from gatewayd.identity import registry as registry_module
from gatewayd.store import Store

T0 = 1_700_000_000.0
HOUR = 3600

RULES = LeaseRules(
    default_ttl_s=HOUR,
    max_ttl_s=24 * HOUR,
    interfaces=(
        WorkloadSubnets(
            "eth1",
            (ipaddress.ip_network("10.10.0.0/24"), ipaddress.ip_network("fd00:10::/64")),
        ),
        WorkloadSubnets("eth2", (ipaddress.ip_network("10.20.0.0/24"),)),
    ),
)
# No workload interfaces declared: any interface name, which must then be given.
FREE = LeaseRules(default_ttl_s=HOUR, max_ttl_s=24 * HOUR)


@pytest.fixture
def registry(store: Store) -> Registry:
    reg = Registry(store, RULES)
    reg.add_agent("a1", team_id="t1", project_id="p1", environment="dev", now=T0)
    reg.add_agent(
        "a2",
        team_id="t2",
        project_id="p2",
        environment="prod",
        workload_fingerprint="sha256:abc",
        now=T0,
    )
    return reg


def dump(store: Store) -> tuple[list[Any], ...]:
    """Everything the registry writes, to compare before and after a refused operation."""
    return tuple(
        store.conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("agents", "leases", "generations")
    )


# -- agents ----------------------------------------------------------------------------


def test_add_get_list_agents(registry: Registry) -> None:
    agent = registry.get_agent("a2")
    assert agent.identity == Identity("a2", "t2", "p2", "prod", "sha256:abc")
    assert agent.created_at == T0
    assert [a.agent_id for a in registry.list_agents()] == ["a1", "a2"]


def test_get_unknown_agent(registry: Registry) -> None:
    with pytest.raises(NotFound, match="no agent 'zz'"):
        registry.get_agent("zz")


def test_duplicate_agent_refused(registry: Registry) -> None:
    before = dump(registry.store)
    with pytest.raises(StoreError, match="agent 'a1' already exists"):
        registry.add_agent("a1", team_id="x", project_id="y", environment="z", now=T0 + 1)
    assert dump(registry.store) == before
    assert registry.get_agent("a1").team_id == "t1"


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("agent_id", "", "agent id"),
        ("agent_id", "-lead", "agent id"),
        ("agent_id", "has space", "agent id"),
        ("agent_id", "trailing\n", "agent id"),
        ("agent_id", "x" * 129, "agent id"),
        ("agent_id", "caf\u00e9", "agent id"),
        ("team_id", "a/b", "team id"),
        ("project_id", ".p", "project id"),
        ("environment", "prod env", "environment"),
        ("workload_fingerprint", "has space", "workload fingerprint"),
        ("workload_fingerprint", "x" * 257, "workload fingerprint"),
    ],
)
def test_malformed_agent_fields_refused(
    registry: Registry, field: str, value: str, what: str
) -> None:
    fields = {"team_id": "t", "project_id": "p", "environment": "dev"}
    agent_id = "new"
    if field == "agent_id":
        agent_id = value
    else:
        fields[field] = value
    before = dump(registry.store)
    with pytest.raises(StoreError, match=f"invalid {what}"):
        registry.add_agent(agent_id, **fields, now=T0)
    assert dump(registry.store) == before


def test_name_boundaries_accepted(registry: Registry) -> None:
    long_id = "A" + "b" * 127
    registry.add_agent(long_id, team_id="t.e_a:m-1", project_id="9p", environment="E", now=T0)
    assert registry.get_agent(long_id).team_id == "t.e_a:m-1"


def test_remove_agent_without_leases(registry: Registry) -> None:
    assert registry.remove_agent("a1", now=T0) == []
    with pytest.raises(NotFound):
        registry.get_agent("a1")


def test_remove_unknown_agent(registry: Registry) -> None:
    before = dump(registry.store)
    with pytest.raises(NotFound, match="no agent 'zz'"):
        registry.remove_agent("zz", now=T0)
    assert dump(registry.store) == before


def test_remove_agent_with_active_lease_refused(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", now=T0)
    before = dump(registry.store)
    with pytest.raises(StoreError, match=r"holds 1 active lease\(s\) \(10\.10\.0\.5\)"):
        registry.remove_agent("a1", now=T0 + 1)
    assert dump(registry.store) == before


def test_remove_agent_force_revokes_and_deletes_history(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", now=T0)
    registry.grant_lease("10.20.0.5", "a1", now=T0)
    registry.grant_lease("10.10.0.6", "a1", ttl_s=10, now=T0)  # expired by T0 + 60
    registry.grant_lease("10.10.0.7", "a2", now=T0)
    ended = registry.remove_agent("a1", force=True, now=T0 + 60)
    assert sorted(x.ip for x in ended) == ["10.10.0.5", "10.20.0.5"]
    assert all(x.state(T0 + 60) == "revoked" for x in ended)
    assert {(x.revoked_at, x.revoke_reason) for x in ended} == {(T0 + 60, AGENT_REMOVED)}
    assert registry.identity_for("10.10.0.5", "eth1", T0 + 61) is None
    assert [x.agent_id for x in registry.list_leases(T0 + 61, include_inactive=True)] == ["a2"]
    # The address is free for someone else at once.
    assert registry.grant_lease("10.10.0.5", "a2", now=T0 + 61).agent_id == "a2"


def test_remove_agent_with_only_inactive_leases(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", ttl_s=10, now=T0)
    registry.grant_lease("10.10.0.6", "a1", now=T0)
    registry.revoke_lease("10.10.0.6", now=T0 + 1)
    assert registry.remove_agent("a1", now=T0 + 20) == []
    assert registry.list_leases(T0 + 20, include_inactive=True) == []


# -- granting --------------------------------------------------------------------------


def test_grant_defaults(registry: Registry) -> None:
    lease = registry.grant_lease("10.20.0.9", "a2", now=T0)
    assert (lease.ip, lease.iface, lease.agent_id) == ("10.20.0.9", "eth2", "a2")
    assert (lease.granted_at, lease.expires_at) == (T0, T0 + HOUR)
    assert lease.state(T0) == "active"
    assert registry.get_lease("10.20.0.9", T0) == lease


def test_grant_normalizes_ipv6(registry: Registry) -> None:
    lease = registry.grant_lease("FD00:10:0:0::0005", "a1", ttl_s=60, now=T0)
    assert (lease.ip, lease.iface) == ("fd00:10::5", "eth1")
    assert registry.identity_for("fd00:10::5", "eth1", T0) == registry.get_agent("a1").identity


def test_grant_accepts_address_objects_and_bytes(registry: Registry) -> None:
    registry.grant_lease(ipaddress.ip_address("10.10.0.1"), "a1", now=T0)
    registry.grant_lease(ipaddress.ip_address("10.10.0.2").packed, "a1", now=T0)
    assert [x.ip for x in registry.list_leases(T0)] == ["10.10.0.1", "10.10.0.2"]


def test_regrant_same_agent_and_iface_renews(registry: Registry) -> None:
    first = registry.grant_lease("10.10.0.5", "a1", ttl_s=600, now=T0)
    again = registry.grant_lease("10.10.0.5", "a1", ttl_s=HOUR, now=T0 + 300)
    assert again.id == first.id
    assert again.granted_at == T0
    assert again.expires_at == T0 + 300 + HOUR
    assert registry.get_lease("10.10.0.5", T0 + 300) == again
    assert len(registry.list_leases(T0, include_inactive=True)) == 1


def test_grant_to_other_agent_refused_while_active(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", ttl_s=600, now=T0)
    before = dump(registry.store)
    with pytest.raises(StoreError, match=r"10\.10\.0\.5 is leased to agent 'a1' on eth1"):
        registry.grant_lease("10.10.0.5", "a2", now=T0 + 10)
    assert dump(registry.store) == before


def test_grant_after_expiry_is_a_new_lease(registry: Registry) -> None:
    first = registry.grant_lease("10.10.0.5", "a1", ttl_s=600, now=T0)
    second = registry.grant_lease("10.10.0.5", "a2", now=T0 + 600)
    assert second.id != first.id
    assert registry.identity_for("10.10.0.5", "eth1", T0 + 601) == registry.get_agent("a2").identity
    history = registry.list_leases(T0 + 601, include_inactive=True)
    assert [(x.agent_id, x.state(T0 + 601)) for x in history] == [
        ("a1", "expired"),
        ("a2", "active"),
    ]


def test_grant_after_revoke_is_a_new_lease(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", now=T0)
    registry.revoke_lease("10.10.0.5", now=T0 + 5)
    lease = registry.grant_lease("10.10.0.5", "a1", now=T0 + 6)
    assert lease.granted_at == T0 + 6
    assert len(registry.list_leases(T0 + 6, include_inactive=True)) == 2


def test_grant_on_other_iface_refused_while_active(store: Store) -> None:
    reg = Registry(store, FREE)
    reg.add_agent("a1", team_id="t", project_id="p", environment="dev", now=T0)
    reg.grant_lease("192.0.2.5", "a1", iface="veth1", now=T0)
    before = dump(store)
    with pytest.raises(StoreError, match=r"leased to agent 'a1' on veth1"):
        reg.grant_lease("192.0.2.5", "a1", iface="veth2", now=T0 + 1)
    assert dump(store) == before


def test_grant_without_configured_interfaces_needs_iface(store: Store) -> None:
    reg = Registry(store, FREE)
    reg.add_agent("a1", team_id="t", project_id="p", environment="dev", now=T0)
    with pytest.raises(StoreError, match="no workload interfaces are configured"):
        reg.grant_lease("192.0.2.5", "a1", now=T0)
    with pytest.raises(StoreError, match="invalid interface name"):
        reg.grant_lease("192.0.2.5", "a1", iface="bad/name", now=T0)


def test_registry_defaults_to_config_defaults(store: Store) -> None:
    reg = Registry(store)
    assert reg.rules.default_ttl_s == 3600
    assert reg.rules.interfaces == ()


REFUSED_GRANTS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("10.10.0.300", {}, StoreError, "invalid IP address '10.10.0.300'"),
    ("10.10.0.05", {}, StoreError, "invalid IP address"),
    (" 10.10.0.5", {}, StoreError, "invalid IP address"),
    ("10.10.0.0/24", {}, StoreError, "that is a network"),
    ("10.10.0.5/32", {}, StoreError, "that is a network"),
    ("fe80::1%eth1", {}, StoreError, "zone index"),
    ("::ffff:10.10.0.5", {}, StoreError, "lease the IPv4 address 10.10.0.5 instead"),
    ("0.0.0.0", {}, StoreError, "unspecified"),
    ("::", {}, StoreError, "unspecified"),
    ("127.0.0.1", {}, StoreError, "loopback"),
    ("::1", {}, StoreError, "loopback"),
    ("224.0.0.1", {}, StoreError, "multicast"),
    ("ff02::1", {}, StoreError, "multicast"),
    ("255.255.255.255", {}, StoreError, "broadcast"),
    ("10.99.0.5", {}, StoreError, "not in any workload interface's subnets"),
    ("10.10.0.5", {"iface": "eth2"}, StoreError, "not in eth2's subnets (10.20.0.0/24)"),
    ("10.10.0.5", {"iface": "eth9"}, StoreError, "'eth9' is not a workload interface"),
    ("10.10.0.5", {"ttl_s": 0}, StoreError, "greater than zero"),
    ("10.10.0.5", {"ttl_s": -5}, StoreError, "greater than zero"),
    ("10.10.0.5", {"ttl_s": 24 * HOUR + 1}, StoreError, "longer than the maximum 1d"),
    ("10.10.0.5", {"agent_id": "zz"}, NotFound, "no agent 'zz'"),
]


@pytest.mark.parametrize(("ip", "kwargs", "error", "message"), REFUSED_GRANTS)
def test_refused_grant_leaves_store_unchanged(
    registry: Registry, ip: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    registry.grant_lease("10.10.0.77", "a2", now=T0)
    before = dump(registry.store)
    agent_id = kwargs.pop("agent_id", "a1")
    with pytest.raises(error) as info:
        registry.grant_lease(ip, agent_id, now=T0 + 1, **kwargs)
    assert message in str(info.value)
    assert dump(registry.store) == before


def test_max_ttl_is_allowed(registry: Registry) -> None:
    lease = registry.grant_lease("10.10.0.5", "a1", ttl_s=24 * HOUR, now=T0)
    assert lease.expires_at == T0 + 24 * HOUR


# -- revoking, reading -----------------------------------------------------------------


def test_revoke(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", now=T0)
    lease = registry.revoke_lease("10.10.0.5", now=T0 + 10, reason="compromised")
    assert (lease.revoked_at, lease.revoke_reason) == (T0 + 10, "compromised")
    assert lease.state(T0 + 10) == "revoked"
    assert registry.get_lease("10.10.0.5", T0 + 11, include_inactive=True) == lease
    assert registry.identity_for("10.10.0.5", "eth1", T0 + 10) is None


@pytest.mark.parametrize("when", ["never", "expired", "revoked"])
def test_revoke_without_active_lease(registry: Registry, when: str) -> None:
    if when != "never":
        registry.grant_lease("10.10.0.5", "a1", ttl_s=60, now=T0)
    if when == "revoked":
        registry.revoke_lease("10.10.0.5", now=T0 + 1)
    before = dump(registry.store)
    with pytest.raises(NotFound, match=r"no active lease for 10\.10\.0\.5"):
        registry.revoke_lease("10.10.0.5", now=T0 + 60)
    assert dump(registry.store) == before


@pytest.mark.parametrize(
    ("ip", "reason", "message"),
    [
        ("10.10.0.5", "", "invalid reason"),
        ("10.10.0.5", "a\nb", "invalid reason"),
        ("nope", "x", "invalid IP address"),
    ],
)
def test_revoke_bad_input(registry: Registry, ip: str, reason: str, message: str) -> None:
    registry.grant_lease("10.10.0.5", "a1", now=T0)
    before = dump(registry.store)
    with pytest.raises(StoreError, match=message):
        registry.revoke_lease(ip, now=T0 + 1, reason=reason)
    assert dump(registry.store) == before


def test_get_lease_active_and_history(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", ttl_s=60, now=T0)
    assert registry.get_lease("10.10.0.5", T0 + 59).state(T0 + 59) == "active"
    with pytest.raises(NotFound, match=r"no active lease for 10\.10\.0\.5"):
        registry.get_lease("10.10.0.5", T0 + 60)
    assert (
        registry.get_lease("10.10.0.5", T0 + 60, include_inactive=True).state(T0 + 60) == "expired"
    )
    with pytest.raises(NotFound, match=r"no lease for 10\.10\.0\.6"):
        registry.get_lease("10.10.0.6", T0, include_inactive=True)


def test_list_leases_order_and_filters(registry: Registry) -> None:
    for ip in ("fd00:10::1", "10.10.0.10", "10.10.0.2", "10.20.0.1"):
        registry.grant_lease(ip, "a1" if ip != "10.20.0.1" else "a2", ttl_s=100, now=T0)
    registry.grant_lease("10.10.0.3", "a1", ttl_s=10, now=T0)
    registry.revoke_lease("10.10.0.2", now=T0 + 1)
    active = registry.list_leases(T0 + 20)
    assert [x.ip for x in active] == ["10.10.0.10", "10.20.0.1", "fd00:10::1"]
    every = registry.list_leases(T0 + 20, include_inactive=True)
    assert [x.ip for x in every] == [
        "10.10.0.2",
        "10.10.0.3",
        "10.10.0.10",
        "10.20.0.1",
        "fd00:10::1",
    ]
    assert [x.ip for x in registry.list_leases(T0 + 20, agent_id="a2")] == ["10.20.0.1"]
    assert len(registry.list_leases(T0 + 20, True, agent_id="a1")) == 4


# -- resolution ------------------------------------------------------------------------


def test_identity_for(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a2", ttl_s=60, now=T0)
    ident = registry.get_agent("a2").identity
    assert registry.identity_for("10.10.0.5", "eth1", T0) == ident
    assert registry.identity_for(ipaddress.ip_address("10.10.0.5"), "eth1", T0 + 59) == ident
    assert registry.identity_for(bytes([10, 10, 0, 5]), "eth1", T0) == ident
    # Anti-spoofing: the address means nothing on another interface.
    assert registry.identity_for("10.10.0.5", "eth2", T0) is None
    # Expiry is exclusive: at expires_at the lease is over.
    assert registry.identity_for("10.10.0.5", "eth1", T0 + 60) is None
    # An IPv4-mapped IPv6 source is not the IPv4 host.
    assert registry.identity_for("::ffff:10.10.0.5", "eth1", T0) is None
    assert registry.identity_for("10.10.0.6", "eth1", T0) is None


def test_identity_for_rejects_malformed(registry: Registry) -> None:
    with pytest.raises(StoreError, match="invalid IP address"):
        registry.identity_for("10.10.0", "eth1", T0)


def test_identity_for_uses_the_address_index(registry: Registry) -> None:
    plan = registry.store.conn.execute(
        "EXPLAIN QUERY PLAN " + registry_module._IDENTITY_FOR, ("10.10.0.5", "eth1", T0)
    ).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX leases_ip" in details, details
    assert "SCAN l" not in details, details


# -- generations and time --------------------------------------------------------------


def test_every_write_bumps_identity_generation(registry: Registry) -> None:
    writes: list[Callable[[], object]] = [
        lambda: registry.add_agent("a3", team_id="t", project_id="p", environment="e", now=T0),
        lambda: registry.grant_lease("10.10.0.5", "a3", now=T0),
        lambda: registry.grant_lease("10.10.0.5", "a3", now=T0 + 1),
        lambda: registry.revoke_lease("10.10.0.5", now=T0 + 2),
        lambda: registry.remove_agent("a3", now=T0 + 3),
    ]
    for write in writes:
        before = registry.generation()
        write()
        assert registry.generation() == before + 1
    assert registry.generation() == registry.store.generation(IDENTITY_DOMAIN)


def test_reads_and_refusals_do_not_bump(registry: Registry) -> None:
    registry.grant_lease("10.10.0.5", "a1", now=T0)
    before = registry.generation()
    registry.list_agents()
    registry.list_leases(T0, include_inactive=True)
    registry.identity_for("10.10.0.5", "eth1", T0)
    registry.lease_table(T0)
    with pytest.raises(StoreError):
        registry.grant_lease("10.10.0.5", "a2", now=T0)
    assert registry.generation() == before


def test_registry_never_reads_the_clock(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_clock() -> float:
        raise AssertionError("the registry must take time as an argument")

    monkeypatch.setattr(time, "time", no_clock)
    monkeypatch.setattr(time, "monotonic", no_clock)
    registry.grant_lease("10.10.0.5", "a1", now=T0)
    registry.lease_table(T0).identity_for("10.10.0.5", "eth1", T0)
    registry.revoke_lease("10.10.0.5", now=T0 + 1)
    registry.remove_agent("a1", now=T0 + 2)
