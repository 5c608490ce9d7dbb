"""Credential injection through the lab gateway: the agent holds a placeholder, the
upstream gets the provider key; a placeholder used toward another host or after it was
revoked is refused; an agent that sends a real provider key is refused by policy; the key
is never written anywhere in plain text."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from l7_support import L7Gateway, json_body

REAL_KEY = "sk-proj-" + "LabProviderKey" * 3 + "T3BlbkFJ" + "q" * 20


def _headers(body: dict[str, object]) -> dict[str, str]:
    pairs = body["headers"]
    assert isinstance(pairs, list)
    return {str(k): str(v) for k, v in pairs}


def test_a_placeholder_is_swapped_for_the_key_and_refused_elsewhere(
        gateway: L7Gateway, tmp_path: Path) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text(REAL_KEY + "\n")
    cred = f"openai-lab-{int(time.time() * 1000) % 10**9}"
    gateway.clawgress("credential", "add", cred, "--provider", "openai",
                      "--host", "api.openai.com", "--key-file", str(key_file))
    issued = json.loads(gateway.clawgress("credential", "placeholder", "issue", cred,
                                          "--agent", "researcher", "--json"))
    token = issued["placeholder"]
    assert token.startswith("cg-ph-") and REAL_KEY not in json.dumps(issued)
    time.sleep(1.5)  # the engine loads the new credential
    cursor = gateway.cursor()
    got = gateway.curl("a1", "https://api.openai.com/headers", "-H",
                       f"Authorization: Bearer {token}")
    assert got.status == 200, got.stderr
    seen = _headers(json_body(got))
    assert seen["authorization"] == f"Bearer {REAL_KEY}"
    record = cursor.wait("http.request", path="/headers")
    assert record["credential"]["credential"] == cred
    # Toward a host the credential is not for: refused, the key never sent.
    elsewhere = gateway.curl("a1", "https://api.anthropic.com/headers", "-H",
                             f"x-api-key: {token}")
    assert elsewhere.status == 403
    assert "placeholder-wrong-host" in cursor.wait("http.request", status=403)["flags"]
    # Revoked: refused.
    gateway.clawgress("credential", "placeholder", "revoke", issued["placeholder_id"])
    time.sleep(1.5)
    revoked = gateway.curl("a1", "https://api.openai.com/headers", "-H",
                           f"Authorization: Bearer {token}")
    assert revoked.status == 403 and "revoked" in json_body(revoked)["reason"]
    # An agent sending a provider key itself: the policy refuses it.
    raw = gateway.curl("a1", "https://api.openai.com/headers", "-H",
                       f"Authorization: Bearer {REAL_KEY}")
    assert raw.status == 403
    assert json_body(raw)["rule_id"] == "no-raw-provider-keys"
    # The key is in no file the gateway wrote (the store holds it sealed).
    time.sleep(0.5)
    leaked = [str(p) for p in gateway.lab.paths.root.rglob("*")
              if p.is_file() and REAL_KEY.encode() in p.read_bytes()]
    assert not leaked, leaked


@pytest.fixture(autouse=True)
def _revoke_credentials(gateway: L7Gateway) -> object:
    yield None
    listed = json.loads(gateway.clawgress("credential", "list", "--json"))
    for c in listed:
        if not c.get("revoked_at"):
            gateway.run_clawgress("credential", "revoke", c["credential_id"])
