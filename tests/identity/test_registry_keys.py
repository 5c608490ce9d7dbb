from __future__ import annotations

import pytest

from gatewayd.errors import NotFound, StoreError
from gatewayd.identity import IDENTITY_DOMAIN, Registry
from gatewayd.identity.registry import ApiKey
from gatewayd.l7.api_keys import new_api_key
from gatewayd.store import Store

T0 = 1_700_000_000.0


@pytest.fixture
def registry(store: Store) -> Registry:
    reg = Registry(store)
    for agent in ("a1", "a2"):
        reg.add_agent(agent, team_id="t", project_id="p", environment="dev", now=T0)
    return reg


def test_add_list_and_read_keys(registry: Registry) -> None:
    first = new_api_key("a1", now=T0 + 1, label="ci").record
    second = new_api_key("a1", now=T0 + 2).record
    other = new_api_key("a2", now=T0 + 3).record
    generation = registry.generation()
    for key in (second, first, other):
        assert registry.add_api_key(key) == key
    assert registry.generation() == generation + 3
    assert registry.list_api_keys("a1") == [first, second]
    assert registry.list_api_keys("a2") == [other]
    assert registry.get_api_key(first.key_id) == first
    assert registry.api_keys_by_id() == {k.key_id: k for k in (first, second, other)}


def test_revoke(registry: Registry) -> None:
    key = registry.add_api_key(new_api_key("a1", now=T0).record)
    generation = registry.generation()
    revoked = registry.revoke_api_key(key.key_id, now=T0 + 60)
    assert revoked.revoked_at == T0 + 60
    assert revoked.revoked
    assert registry.generation() == generation + 1
    assert registry.get_api_key(key.key_id) == revoked
    # Revoked keys stay, so that the engine can tell them from unknown ones.
    assert registry.api_keys_by_id()[key.key_id] == revoked
    assert registry.list_api_keys("a1") == [revoked]
    with pytest.raises(StoreError, match="revoked already"):
        registry.revoke_api_key(key.key_id, now=T0 + 61)
    assert registry.generation() == generation + 1


def test_refusals(registry: Registry) -> None:
    with pytest.raises(NotFound, match="no agent 'zz'"):
        registry.add_api_key(new_api_key("zz", now=T0).record)
    with pytest.raises(NotFound, match="no agent 'zz'"):
        registry.list_api_keys("zz")
    with pytest.raises(NotFound, match="no API key 'ffffffffffffffff'"):
        registry.revoke_api_key("ffffffffffffffff", now=T0)
    with pytest.raises(NotFound, match="no API key"):
        registry.get_api_key("nope")
    key = registry.add_api_key(new_api_key("a1", now=T0).record)
    with pytest.raises(StoreError, match="is taken"):
        registry.add_api_key(key)
    with pytest.raises(StoreError, match="invalid API key id"):
        registry.add_api_key(ApiKey("XYZ", "a1", "sha256:00", T0))
    with pytest.raises(StoreError, match="invalid label"):
        registry.add_api_key(ApiKey("00000000000000aa", "a1", "sha256:00", T0, label="a\nb"))
    with pytest.raises(StoreError, match="revoked already"):
        registry.add_api_key(ApiKey("00000000000000ab", "a1", "sha256:00", T0, T0))
    assert registry.api_keys_by_id() == {key.key_id: key}


def test_removing_an_agent_removes_its_keys(registry: Registry) -> None:
    mine = registry.add_api_key(new_api_key("a1", now=T0).record)
    theirs = registry.add_api_key(new_api_key("a2", now=T0).record)
    registry.remove_agent("a1", now=T0)
    assert registry.api_keys_by_id() == {theirs.key_id: theirs}
    with pytest.raises(NotFound):
        registry.get_api_key(mine.key_id)


def test_generation_is_the_identity_domain(registry: Registry, store: Store) -> None:
    registry.add_api_key(new_api_key("a1", now=T0).record)
    assert registry.generation() == store.generation(IDENTITY_DOMAIN)
