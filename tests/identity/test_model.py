from __future__ import annotations

import dataclasses

import pytest

from gatewayd.identity import Agent, Identity, Lease, check_name

T0 = 1_700_000_000.0


def test_identity_is_a_frozen_slotted_value() -> None:
    ident = Identity("a1", "t1", "p1", "prod")
    assert ident.workload_fingerprint == ""
    assert not hasattr(ident, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.agent_id = "other"  # type: ignore[misc]
    assert ident == Identity("a1", "t1", "p1", "prod", "")
    assert hash(ident) == hash(Identity("a1", "t1", "p1", "prod"))
    assert ident.as_dict() == {
        "agent_id": "a1",
        "team_id": "t1",
        "project_id": "p1",
        "environment": "prod",
        "workload_fingerprint": "",
    }


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        (("a 1", "t", "p", "e"), "agent id"),
        (("a", "", "p", "e"), "team id"),
        (("a", "t", "p\n", "e"), "project id"),
        (("a", "t", "p", "_e"), "environment"),
        (("a", "t", "p", "e", "two words"), "workload fingerprint"),
    ],
)
def test_identity_checks_its_fields(fields: tuple[str, ...], what: str) -> None:
    with pytest.raises(ValueError, match=f"invalid {what}"):
        Identity(*fields)


@pytest.mark.parametrize("name", ["a", "A-1", "9.x_y:z", "a" * 128])
def test_valid_names(name: str) -> None:
    assert check_name("agent id", name) == name


@pytest.mark.parametrize("name", ["", "a" * 129, "-a", ".a", "a b", "a\n", "a/b", "ä"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError, match="expected 1 to 128"):
        check_name("agent id", name)


def test_agent_identity_and_dict() -> None:
    agent = Agent("a1", "t1", "p1", "dev", "fp", T0)
    assert agent.identity == Identity("a1", "t1", "p1", "dev", "fp")
    assert agent.as_dict()["created_at"] == T0


def test_lease_states() -> None:
    lease = Lease(1, "10.0.0.5", "eth1", "a1", T0, T0 + 60)
    assert lease.state(T0) == "active"
    assert lease.state(T0 + 59.5) == "active"
    assert lease.remaining(T0 + 59.5) == 0.5
    assert lease.state(T0 + 60) == "expired"
    assert lease.remaining(T0 + 61) == 0.0
    revoked = dataclasses.replace(lease, revoked_at=T0 + 1, revoke_reason="x")
    assert revoked.state(T0 + 2) == "revoked"
    assert revoked.state(T0 + 100) == "revoked"
    assert revoked.remaining(T0 + 2) == 0.0
    assert revoked.as_dict()["revoke_reason"] == "x"
