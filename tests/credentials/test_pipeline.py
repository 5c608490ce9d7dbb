"""The credential steps of the L7 pipeline, in the engine's order: inspect the head,
claim the placeholder once the policy admitted the request, hold quotas under its
credential, inject it as the request leaves."""

from __future__ import annotations

import pytest

from gatewayd.credentials import (
    CredentialRefused,
    DataKey,
    Injector,
    Secret,
    Vault,
    new_credential,
)
from gatewayd.credentials.inspection import KeyInspection
from gatewayd.identity import Identity
from gatewayd.l7.inspection import look
from gatewayd.l7.target import Target
from gatewayd.quota import (
    Consumption,
    MemoryLedger,
    QuotaDocument,
    QuotaEngine,
    compile_quotas,
)

from .conftest import OPENAI_KEY, T0

WHO = Identity("a1", "t", "p", "dev")


def per_credential(limit: int) -> QuotaDocument:
    return QuotaDocument.model_validate({
        "apiVersion": "clawgress.io/v1", "kind": "Quota", "metadata": {"id": "per-key"},
        "spec": {"scope": "credential", "selector": {"credential": ["openai-prod"]},
                 "metric": "requests", "window": "rolling-minute", "limit": limit}})


def test_a_request_through_the_credential_steps(vault: Vault, data_key: DataKey) -> None:
    vault.add_credential(new_credential("openai-prod", "openai", Secret(OPENAI_KEY), data_key,
                                        now=T0))
    token = vault.issue_placeholder("openai-prod", "a1", now=T0).token
    injector = Injector(vault.keyring(), data_key)
    quotas = QuotaEngine(compile_quotas([per_credential(1)]), MemoryLedger())
    target = Target("api.openai.com", 443, "/v1/chat/completions", "/v1/chat/completions")
    head = [(b"host", b"api.openai.com"), (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json")]

    found = look([KeyInspection(injector.carriers)], "POST", target, head, b"{}", True)
    assert found.dlp_classes == ()  # a placeholder is not a provider key

    claim = injector.claim(WHO.agent_id, target.host, head, target.upstream, tls=True)
    assert claim is not None
    first = quotas.reserve(WHO, Consumption(), T0, credential=claim.credential_id)
    assert first.admitted
    assert [a.subject for a in first.applied] == ["openai-prod"]
    second = quotas.reserve(WHO, Consumption(), T0, credential=claim.credential_id)
    assert not second.admitted  # the credential's budget, whichever agent spends it
    assert quotas.reserve(WHO, Consumption(), T0).admitted  # no placeholder, not counted

    done = injector.inject(claim, head, target.upstream)
    assert done.headers == [(b"host", b"api.openai.com"),
                            (b"content-type", b"application/json"),
                            (b"authorization", f"Bearer {OPENAI_KEY}".encode())]
    assert done.upstream == "/v1/chat/completions"
    assert done.note.endswith("-> credential openai-prod in authorization")


def test_reload_when_the_generation_moves(vault: Vault, data_key: DataKey) -> None:
    vault.add_credential(new_credential("openai-prod", "openai", Secret(OPENAI_KEY), data_key,
                                        now=T0))
    issued = vault.issue_placeholder("openai-prod", "a1", now=T0)
    injector = Injector(vault.keyring(), data_key)
    assert injector.generation == vault.generation()
    vault.revoke_placeholder(issued.placeholder_id, now=T0 + 1)
    assert injector.generation != vault.generation()  # time to build a new one
    head = [(b"authorization", f"Bearer {issued.token}".encode())]
    fresh = Injector(vault.keyring(), data_key)
    with pytest.raises(CredentialRefused) as err:
        fresh.claim("a1", "api.openai.com", head, "/", tls=True)
    assert err.value.kind == "placeholder-revoked"
