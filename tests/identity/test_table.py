from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.errors import StoreError
from gatewayd.identity import Identity, Lease, LeaseRules, LeaseTable, Registry
from gatewayd.identity.address import address_key
from gatewayd.store import Store, open_store

T0 = 1_700_000_000.0
A1 = Identity("a1", "t1", "p1", "dev")
A2 = Identity("a2", "t2", "p2", "prod", "sha256:abc")


def lease(
    ip: str, iface: str, agent: str, *, expires: float, revoked: float | None = None
) -> Lease:
    return Lease(1, ip, iface, agent, T0, expires, revoked, "x" if revoked else None)


@pytest.fixture
def table() -> LeaseTable:
    return LeaseTable.build(
        [
            (lease("10.10.0.5", "eth1", "a1", expires=T0 + 60), A1),
            (lease("fd00:10::5", "eth1", "a2", expires=T0 + 120), A2),
            (lease("10.10.0.6", "eth1", "a2", expires=T0 + 60, revoked=T0), A2),
            (lease("10.10.0.7", "eth1", "a2", expires=T0 - 1), A2),
        ],
        generation=7,
        now=T0,
    )


def test_only_active_leases_are_kept(table: LeaseTable) -> None:
    assert len(table) == 2
    assert (table.generation, table.built_at) == (7, T0)
    assert table.identity_for("10.10.0.6", "eth1", T0) is None
    assert table.identity_for("10.10.0.7", "eth1", T0) is None


@pytest.mark.parametrize(
    "ip",
    [
        "10.10.0.5",
        ipaddress.IPv4Address("10.10.0.5"),
        bytes([10, 10, 0, 5]),
        bytearray([10, 10, 0, 5]),
        memoryview(bytes([10, 10, 0, 5])),
    ],
)
def test_lookup_forms_ipv4(table: LeaseTable, ip: str | bytes) -> None:
    assert table.identity_for(ip, "eth1", T0) == A1


@pytest.mark.parametrize(
    "ip",
    [
        "fd00:10::5",
        "FD00:0010:0000:0000:0000:0000:0000:0005",
        ipaddress.IPv6Address("fd00:10::5"),
        ipaddress.IPv6Address("fd00:10::5").packed,
    ],
)
def test_lookup_forms_ipv6(table: LeaseTable, ip: str | ipaddress.IPv6Address | bytes) -> None:
    assert table.identity_for(ip, "eth1", T0) == A2


def test_lease_binds_only_on_its_interface(table: LeaseTable) -> None:
    assert table.identity_for("10.10.0.5", "eth2", T0) is None
    assert table.identity_for(bytes([10, 10, 0, 5]), "eth1.10", T0) is None


def test_expiry_is_checked_at_lookup(table: LeaseTable) -> None:
    assert table.identity_for("10.10.0.5", "eth1", T0 + 59.999) == A1
    assert table.identity_for("10.10.0.5", "eth1", T0 + 60) is None
    assert table.identity_for("fd00:10::5", "eth1", T0 + 60) == A2


def test_ipv4_mapped_does_not_alias_ipv4(table: LeaseTable) -> None:
    mapped = ipaddress.IPv6Address("::ffff:10.10.0.5")
    assert table.identity_for(mapped, "eth1", T0) is None
    assert table.identity_for(mapped.packed, "eth1", T0) is None
    assert table.identity_for("::ffff:10.10.0.5", "eth1", T0) is None


@pytest.mark.parametrize("ip", [b"", b"\x0a\x0a\x00", b"\x00" * 5, b"\x00" * 15, b"\x00" * 17])
def test_bad_packed_length(table: LeaseTable, ip: bytes) -> None:
    with pytest.raises(ValueError, match="4 or 16 bytes"):
        table.identity_for(ip, "eth1", T0)


@pytest.mark.parametrize("ip", ["", "10.10.0", "10.10.0.5/32", "host.example"])
def test_bad_text(table: LeaseTable, ip: str) -> None:
    with pytest.raises(ValueError, match="invalid IP address"):
        table.identity_for(ip, "eth1", T0)


def test_unknown_address(table: LeaseTable) -> None:
    assert table.identity_for("10.10.0.99", "eth1", T0) is None


def test_lookup_is_one_probe_of_a_flat_dict(table: LeaseTable) -> None:
    # O(1) by construction: one dict keyed by (packed address, interface).
    entries = table._entries
    assert type(entries) is dict
    assert set(entries) == {
        (bytes([10, 10, 0, 5]), "eth1"),
        (ipaddress.IPv6Address("fd00:10::5").packed, "eth1"),
    }


def test_built_from_registry(store: Store) -> None:
    reg = Registry(store, LeaseRules(default_ttl_s=60, max_ttl_s=600))
    reg.add_agent("a1", team_id="t1", project_id="p1", environment="dev", now=T0)
    reg.grant_lease("10.10.0.5", "a1", iface="eth1", now=T0)
    reg.grant_lease("10.10.0.6", "a1", iface="eth1", ttl_s=10, now=T0)
    reg.grant_lease("10.10.0.7", "a1", iface="eth1", now=T0)
    reg.revoke_lease("10.10.0.7", now=T0 + 1)
    table = reg.lease_table(T0 + 20)
    assert table.generation == reg.generation()
    assert len(table) == 1
    assert table.identity_for(bytes([10, 10, 0, 5]), "eth1", T0 + 20) == A1
    reg.grant_lease("10.10.0.8", "a1", iface="eth1", now=T0 + 21)
    assert reg.generation() > table.generation  # the data plane's cue to rebuild


# -- property: the snapshot agrees with the store --------------------------------------

IPS = ["10.0.0.1", "10.0.0.2", "fd00::1"]
IFACES = ["eth1", "eth2"]
AGENTS = ["a1", "a2"]

operation = st.one_of(
    st.tuples(
        st.just("grant"),
        st.sampled_from(IPS),
        st.sampled_from(AGENTS),
        st.sampled_from(IFACES),
        st.integers(1, 100),
        st.integers(0, 50),
    ),
    st.tuples(st.just("revoke"), st.sampled_from(IPS), st.integers(0, 50)),
)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(operation, max_size=12),
    at=st.integers(0, 200),
)
def test_table_agrees_with_registry(ops: list[tuple[object, ...]], at: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "s.db") as store:
        reg = Registry(store, LeaseRules(default_ttl_s=60, max_ttl_s=100))
        for agent in AGENTS:
            reg.add_agent(agent, team_id="t", project_id="p", environment="e", now=T0)
        clock = T0
        for op in ops:
            try:
                if op[0] == "grant":
                    _, ip, agent, iface, ttl, step = op
                    clock += step
                    reg.grant_lease(ip, agent, iface=iface, ttl_s=ttl, now=clock)
                else:
                    _, ip, step = op
                    clock += step
                    reg.revoke_lease(ip, now=clock)
            except StoreError:
                continue  # refused (a conflict, nothing to revoke): both views stay equal
        now = clock + at
        table = reg.lease_table(now)
        for ip in IPS:
            packed = ipaddress.ip_address(ip).packed
            for iface in IFACES:
                for probe in (now, now + at / 2):
                    assert table.identity_for(packed, iface, probe) == reg.identity_for(
                        ip, iface, probe
                    )


def test_withdrawn_names_sources_whose_binding_changed() -> None:
    now = 1_000.0
    a = Identity("a", "t", "p", "e")
    b = Identity("b", "t", "p", "e")

    def table(*rows: tuple[str, str, Identity, float]) -> LeaseTable:
        pairs = [(Lease(i, ip, iface, who.agent_id, 0.0, exp), who)
                 for i, (ip, iface, who, exp) in enumerate(rows, 1)]
        return LeaseTable.build(pairs, generation=1, now=now)

    old = table(("10.0.0.1", "wl0", a, 2_000.0), ("10.0.0.2", "wl0", a, 2_000.0),
                ("10.0.0.3", "wl0", a, 2_000.0), ("10.0.0.4", "wl0", a, 1_500.0))
    new = table(("10.0.0.1", "wl0", a, 3_000.0),  # renewed: still bound
                ("10.0.0.2", "wl0", b, 2_000.0),  # now someone else
                ("10.0.0.9", "wl0", a, 2_000.0))  # new: withdraws nothing
    assert old.withdrawn(new, now) == {address_key("10.0.0.2"), address_key("10.0.0.3"),
                                       address_key("10.0.0.4")}
    assert old.withdrawn(old, 1_600.0) == {address_key("10.0.0.4")}  # expired


def test_bindings_are_the_active_address_interface_pairs() -> None:
    now = 1_000.0
    who = Identity("a", "t", "p", "e")
    pairs = [(Lease(1, "10.0.0.1", "wl0", "a", 0.0, 2_000.0), who),
             (Lease(2, "fd00::1", "wl1", "a", 0.0, 1_500.0), who)]
    table = LeaseTable.build(pairs, generation=1, now=now)
    assert sorted(table.bindings(now)) == sorted([(address_key("10.0.0.1"), "wl0"),
                                                  (address_key("fd00::1"), "wl1")])
    assert table.bindings(1_600.0) == [(address_key("10.0.0.1"), "wl0")]
