from __future__ import annotations

import pytest

from gatewayd.verdict.resolved import MAX_NAMES_PER_ADDRESS, ResolvedNames

A = bytes([10, 78, 0, 10])
B = bytes([10, 78, 0, 11])


def table(max_addresses: int = 8) -> ResolvedNames:
    return ResolvedNames(min_ttl=60, max_ttl=3600, max_addresses=max_addresses)


def test_names_are_per_agent_and_per_address() -> None:
    t = table()
    t.record("a1", "api.openai.com", A, 300, 0.0)
    assert t.names_for("a1", A, 1.0) == ("api.openai.com",)
    assert t.names_for("a2", A, 1.0) == ()
    assert t.names_for("a1", B, 1.0) == ()


def test_aliases_bind_too_and_names_come_sorted() -> None:
    t = table()
    t.record("a1", "www.example.com", A, 300, 0.0, aliases=("edge.cdn.example",))
    assert t.names_for("a1", A, 1.0) == ("edge.cdn.example", "www.example.com")


def test_ttl_is_held_within_bounds() -> None:
    t = table()
    t.record("a1", "zero.example", A, 0, 0.0)
    assert t.names_for("a1", A, 59.0) == ("zero.example",)
    assert t.names_for("a1", A, 60.5) == ()
    t.record("a1", "long.example", B, 10**9, 0.0)
    assert t.names_for("a1", B, 3599.0) == ("long.example",)
    assert t.names_for("a1", B, 3601.0) == ()


def test_a_later_answer_extends_a_binding_never_shortens_it() -> None:
    t = table()
    t.record("a1", "n.example", A, 600, 0.0)
    t.record("a1", "n.example", A, 60, 10.0)
    assert t.names_for("a1", A, 500.0) == ("n.example",)


def test_oldest_addresses_go_first_when_full() -> None:
    t = table(max_addresses=2)
    for i in range(3):
        t.record("a1", f"n{i}.example", bytes([10, 0, 0, i]), 300, float(i))
    assert t.names_for("a1", bytes([10, 0, 0, 0]), 3.0) == ()
    assert t.names_for("a1", bytes([10, 0, 0, 2]), 3.0) == ("n2.example",)
    assert len(t) == 2


def test_names_per_address_are_bounded() -> None:
    t = table()
    for i in range(MAX_NAMES_PER_ADDRESS + 5):
        t.record("a1", f"n{i}.example", A, 300 + i, 0.0)
    names = t.names_for("a1", A, 1.0)
    assert len(names) == MAX_NAMES_PER_ADDRESS
    assert "n0.example" not in names  # the soonest to expire went


def test_expire_drops_what_ran_out() -> None:
    t = table()
    t.record("a1", "n.example", A, 60, 0.0)
    t.record("a2", "m.example", B, 600, 0.0)
    assert t.expire(100.0) == 1
    assert len(t) == 1
    t.forget_agent("a2")
    assert len(t) == 0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="min_ttl"):
        ResolvedNames(min_ttl=10, max_ttl=5, max_addresses=1)
    with pytest.raises(ValueError, match="min_ttl"):
        ResolvedNames(min_ttl=0, max_ttl=5, max_addresses=0)
