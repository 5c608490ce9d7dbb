from __future__ import annotations

import pytest

from gatewayd.credentials import (
    CREDENTIALS_DOMAIN,
    DataKey,
    Secret,
    Vault,
    new_credential,
    verify_placeholder,
)
from gatewayd.errors import NotFound, StoreError
from gatewayd.identity import Registry

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, T0, counting_bytes


def add(vault: Vault, data_key: DataKey, cid: str = "openai-prod",
        provider: str = "openai", key: str = OPENAI_KEY) -> None:
    vault.add_credential(new_credential(cid, provider, Secret(key), data_key, now=T0))


def test_add_get_list(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    add(vault, data_key, "anthropic", "anthropic", ANTHROPIC_KEY)
    got = vault.get_credential("openai-prod")
    assert (got.provider, got.created_at, got.data_key_id) == ("openai", T0, data_key.key_id)
    assert (got.allow_cleartext, got.rotated_at, got.revoked_at) == (False, None, None)
    assert got.hosts == ("api.openai.com",)
    assert got.injection.header == "authorization"
    assert data_key.unseal(got.sealed, "openai-prod").reveal() == OPENAI_KEY
    assert [c.credential_id for c in vault.list_credentials()] == ["anthropic", "openai-prod"]


def test_add_refuses_a_taken_id(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    vault.revoke_credential("openai-prod", now=T0 + 1)
    with pytest.raises(StoreError, match="already exists"):
        add(vault, data_key)


def test_unknown_credential(vault: Vault) -> None:
    with pytest.raises(NotFound, match="no credential 'nope'"):
        vault.get_credential("nope")
    with pytest.raises(NotFound):
        vault.revoke_credential("nope", now=T0)


def test_revoke_credential(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    done = vault.revoke_credential("openai-prod", now=T0 + 5)
    assert done.revoked_at == T0 + 5
    assert vault.get_credential("openai-prod").revoked
    with pytest.raises(StoreError, match="revoked already"):
        vault.revoke_credential("openai-prod", now=T0 + 6)
    with pytest.raises(StoreError, match="is revoked"):
        vault.issue_placeholder("openai-prod", "a1", now=T0 + 7)


def test_rotate_key(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    issued = vault.issue_placeholder("openai-prod", "a1", now=T0)
    new_key = OPENAI_KEY.replace("Fake", "Next")
    rotated = vault.rotate_key("openai-prod", Secret(new_key), data_key, now=T0 + 9)
    assert rotated.rotated_at == T0 + 9
    stored = vault.get_credential("openai-prod")
    assert data_key.unseal(stored.sealed, "openai-prod").reveal() == new_key
    assert not vault.get_placeholder(issued.placeholder_id).revoked
    vault.revoke_credential("openai-prod", now=T0 + 10)
    with pytest.raises(StoreError, match="is revoked"):
        vault.rotate_key("openai-prod", Secret(new_key), data_key, now=T0 + 11)


def test_issue_placeholder(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    issued = vault.issue_placeholder("openai-prod", "a1", now=T0, label="ci",
                                     random_bytes=counting_bytes())
    assert issued.placeholder_id == "0001020304050607"
    stored = vault.get_placeholder("0001020304050607")
    assert stored == issued.record
    assert verify_placeholder(issued.token, stored.hash)
    assert vault.get_placeholder("cg-ph-0001020304050607") == stored
    assert vault.get_placeholder(issued.token) == stored
    row = vault.store.conn.execute("SELECT * FROM credential_placeholders").fetchone()
    assert issued.token not in repr(row)


def test_issue_refusals(vault: Vault, data_key: DataKey) -> None:
    with pytest.raises(NotFound, match="no credential"):
        vault.issue_placeholder("openai-prod", "a1", now=T0)
    add(vault, data_key)
    with pytest.raises(NotFound, match="no agent 'ghost'"):
        vault.issue_placeholder("openai-prod", "ghost", now=T0)
    with pytest.raises(StoreError, match="invalid agent id"):
        vault.issue_placeholder("openai-prod", "bad agent", now=T0)
    with pytest.raises(StoreError, match="invalid label"):
        vault.issue_placeholder("openai-prod", "a1", now=T0, label="\n")
    vault.issue_placeholder("openai-prod", "a1", now=T0, random_bytes=counting_bytes())
    with pytest.raises(StoreError, match="is taken"):
        vault.issue_placeholder("openai-prod", "a1", now=T0, random_bytes=counting_bytes())


def test_list_and_revoke_placeholders(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    add(vault, data_key, "anthropic", "anthropic", ANTHROPIC_KEY)
    p1 = vault.issue_placeholder("openai-prod", "a1", now=T0).record
    p2 = vault.issue_placeholder("anthropic", "a1", now=T0 + 1).record
    p3 = vault.issue_placeholder("openai-prod", "a2", now=T0 + 2).record
    assert vault.list_placeholders() == [p1, p2, p3]
    assert vault.list_placeholders(credential_id="openai-prod") == [p1, p3]
    assert vault.list_placeholders(agent_id="a1") == [p1, p2]
    assert vault.list_placeholders(credential_id="anthropic", agent_id="a2") == []
    done = vault.revoke_placeholder(p1.shown, now=T0 + 3)
    assert done.revoked_at == T0 + 3
    assert vault.get_placeholder(p1.placeholder_id).revoked
    with pytest.raises(StoreError, match="revoked already"):
        vault.revoke_placeholder(p1.placeholder_id, now=T0 + 4)
    with pytest.raises(NotFound, match="no placeholder cg-ph-ffffffffffffffff"):
        vault.revoke_placeholder("ffffffffffffffff", now=T0)


@pytest.mark.parametrize("text", ["", "cg-ph-", "xyz", "cg-ph-0001020304050607-short"])
def test_a_placeholder_id_that_names_none(vault: Vault, text: str) -> None:
    with pytest.raises(StoreError, match="not a placeholder id") as err:
        vault.get_placeholder(text)
    assert "short" not in str(err.value)


def test_placeholders_go_with_their_agent(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    vault.issue_placeholder("openai-prod", "a1", now=T0)
    kept = vault.issue_placeholder("openai-prod", "a2", now=T0).record
    Registry(vault.store).remove_agent("a1", now=T0)
    assert vault.list_placeholders() == [kept]


def test_every_write_moves_the_generation(vault: Vault, data_key: DataKey) -> None:
    seen = [vault.generation()]

    def moved() -> None:
        seen.append(vault.generation())
        assert seen[-1] > seen[-2]

    add(vault, data_key)
    moved()
    p = vault.issue_placeholder("openai-prod", "a1", now=T0)
    moved()
    vault.revoke_placeholder(p.placeholder_id, now=T0)
    moved()
    vault.rotate_key("openai-prod", Secret(OPENAI_KEY), data_key, now=T0)
    moved()
    vault.revoke_credential("openai-prod", now=T0)
    moved()
    assert vault.store.generation(CREDENTIALS_DOMAIN) == seen[-1]


def test_a_refused_write_changes_nothing(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    before = vault.generation()
    with pytest.raises(NotFound):
        vault.issue_placeholder("openai-prod", "ghost", now=T0)
    assert vault.generation() == before
    assert vault.list_placeholders() == []


def test_keyring(vault: Vault, data_key: DataKey) -> None:
    add(vault, data_key)
    p = vault.issue_placeholder("openai-prod", "a1", now=T0).record
    vault.revoke_placeholder(p.placeholder_id, now=T0)
    ring = vault.keyring()
    assert ring.generation == vault.generation()
    assert set(ring.credentials) == {"openai-prod"}
    assert ring.placeholders[p.placeholder_id].revoked
