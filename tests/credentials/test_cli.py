from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from gatewayd.credentials import Vault, open_data_key, placeholder_id_of, verify_placeholder
from gatewayd.store import open_store

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, T0, RunCredential

ExpectError = Callable[..., str]

CREDENTIAL_FIELDS = {
    "credential_id", "provider", "hosts", "header", "format", "allow_cleartext",
    "data_key_id", "state", "created_at", "created_at_unix", "rotated_at",
    "rotated_at_unix", "revoked_at", "revoked_at_unix", "active_placeholders",
}
PLACEHOLDER_FIELDS = {
    "placeholder_id", "placeholder", "credential_id", "agent_id", "label", "state",
    "created_at", "created_at_unix", "revoked_at", "revoked_at_unix",
}


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


@pytest.fixture(autouse=True)
def agents(run_credential: RunCredential) -> None:
    for agent in ("a1", "a2"):
        ok(run_credential("agent", "add", agent, "--team", "t", "--project", "p",
                          "--env", "dev"))


def vault_of(tmp_path: Path) -> Vault:
    return Vault(open_store(tmp_path / "clawgress.db"))


def add_openai(run: RunCredential, cid: str = "openai-prod", *extra: str) -> str:
    return ok(run("credential", "add", cid, "--provider", "openai", *extra,
                  input=OPENAI_KEY + "\n"))


def issue(run: RunCredential, cid: str = "openai-prod", agent: str = "a1") -> dict[str, str]:
    data: dict[str, str] = json.loads(ok(run("credential", "placeholder", "issue", cid,
                                             "--agent", agent, "--json")))
    return data


def test_add_from_stdin(run_credential: RunCredential, tmp_path: Path) -> None:
    out = add_openai(run_credential)
    assert out.splitlines() == [
        "added credential openai-prod (openai): sent to api.openai.com as"
        " authorization: Bearer {key}",
        f"created data key {tmp_path / 'credentials.key'} (0600): back it up apart from"
        " the store",
    ]
    key_file = tmp_path / "credentials.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with vault_of(tmp_path).store as store:
        stored = Vault(store).get_credential("openai-prod")
        assert open_data_key(key_file).unseal(stored.sealed, "openai-prod").reveal() == OPENAI_KEY
    second = ok(run_credential("credential", "add", "anthropic", "--provider", "anthropic",
                               input=ANTHROPIC_KEY))
    assert second.splitlines() == ["added credential anthropic (anthropic): sent to"
                                   " api.anthropic.com as x-api-key: {key}"]


def test_add_from_a_key_file_with_options(run_credential: RunCredential,
                                          tmp_path: Path) -> None:
    key_path = tmp_path / "key.txt"
    key_path.write_text("lab-token-0123456789\n")
    data_key = tmp_path / "elsewhere" / "dk"
    out = ok(run_credential("credential", "add", "lab", "--provider", "vllm",
                            "--host", "llm.lab.internal", "--host", "*.llm.example.com",
                            "--header", "X-LLM-Token", "--format", "Token {key}",
                            "--allow-cleartext", "--key-file", str(key_path),
                            "--data-key", str(data_key), "--json"))
    data = json.loads(out)
    assert set(data) == CREDENTIAL_FIELDS
    assert data["hosts"] == ["llm.lab.internal", "*.llm.example.com"]
    assert (data["header"], data["format"]) == ("x-llm-token", "Token {key}")
    assert data["allow_cleartext"] is True
    assert data["data_key_id"] == open_data_key(data_key).key_id
    assert data["created_at_unix"] == T0
    assert not (tmp_path / "credentials.key").exists()


def test_add_refusals(run_credential: RunCredential, expect_error: ExpectError,
                      tmp_path: Path) -> None:
    run = run_credential
    expect_error(run("credential", "add", "x", "--provider", "openai", input=""),
                 "standard input: the key is empty")
    expect_error(run("credential", "add", "x", "--provider", "openai",
                     input="sk-with space"), "spaces, control or non-ASCII")
    expect_error(run("credential", "add", "x", "--provider", "openai",
                     input="sk-\u00e9\u00e9\u00e9".encode()), "the key is not ASCII")
    expect_error(run("credential", "add", "x", "--provider", "vllm", input="k"),
                 "provider 'vllm' has no default hosts")
    expect_error(run("credential", "add", "x", "--provider", "openai", "--header", "host",
                     input="k"), "a key cannot go there")
    expect_error(run("credential", "add", "x", "--provider", "openai", "--format", "Bearer",
                     input="k"), "must hold {key} exactly once")
    expect_error(run("credential", "add", "x", "--provider", "openai",
                     "--key-file", str(tmp_path / "missing")), "cannot read")
    expect_error(run("credential", "add", "x", "--provider", "openai",
                     input="k" * (64 * 1024 + 1)), "more than 65536 bytes")
    add_openai(run)
    expect_error(run("credential", "add", "openai-prod", "--provider", "openai",
                     input=OPENAI_KEY), "already exists")


def test_the_key_is_never_an_argument(run_credential: RunCredential) -> None:
    result = run_credential("credential", "add", "x", "--provider", "openai",
                            "--key", OPENAI_KEY)
    assert result.exit_code == 2
    assert "No such option '--key'" in result.output


def test_list(run_credential: RunCredential) -> None:
    add_openai(run_credential)
    ok(run_credential("credential", "add", "anthropic", "--provider", "anthropic",
                      input=ANTHROPIC_KEY))
    issue(run_credential)
    lines = ok(run_credential("credential", "list")).splitlines()
    assert lines[0].split() == ["CREDENTIAL", "PROVIDER", "HOSTS", "HEADER", "STATE",
                                "PLACEHOLDERS", "CREATED", "ROTATED", "REVOKED"]
    assert lines[1].split()[:3] == ["anthropic", "anthropic", "api.anthropic.com"]
    assert lines[2].split()[:7] == ["openai-prod", "openai", "api.openai.com",
                                    "authorization:", "Bearer", "{key}", "active"]
    data = json.loads(ok(run_credential("credential", "list", "--json")))
    assert [d["credential_id"] for d in data] == ["anthropic", "openai-prod"]
    assert set(data[0]) == CREDENTIAL_FIELDS
    assert [d["active_placeholders"] for d in data] == [0, 1]


def test_rotate(run_credential: RunCredential, expect_error: ExpectError,
                tmp_path: Path) -> None:
    add_openai(run_credential)
    new_key = OPENAI_KEY.replace("Fake", "Next")
    assert ok(run_credential("credential", "rotate", "openai-prod", input=new_key)) == (
        "rotated the key of credential openai-prod\n")
    with vault_of(tmp_path).store as store:
        stored = Vault(store).get_credential("openai-prod")
    key = open_data_key(tmp_path / "credentials.key")
    assert key.unseal(stored.sealed, "openai-prod").reveal() == new_key
    assert stored.rotated_at == T0
    expect_error(run_credential("credential", "rotate", "nope", input=new_key),
                 "no credential 'nope'")


def test_revoke(run_credential: RunCredential, expect_error: ExpectError) -> None:
    add_openai(run_credential)
    assert ok(run_credential("credential", "revoke", "openai-prod")) == (
        "revoked credential openai-prod\n")
    data = json.loads(ok(run_credential("credential", "list", "--json")))
    assert data[0]["state"] == "revoked"
    assert data[0]["revoked_at_unix"] == T0
    expect_error(run_credential("credential", "revoke", "openai-prod"), "revoked already")
    expect_error(run_credential("credential", "placeholder", "issue", "openai-prod",
                                "--agent", "a1"), "is revoked")


def test_placeholder_issue_prints_it_once(run_credential: RunCredential,
                                          tmp_path: Path) -> None:
    add_openai(run_credential)
    lines = ok(run_credential("credential", "placeholder", "issue", "openai-prod",
                              "--agent", "a1", "--label", "ci")).splitlines()
    token = lines[1]
    pid = placeholder_id_of(token)
    assert pid is not None
    assert lines[0] == f"issued placeholder cg-ph-{pid} to agent a1 for credential openai-prod"
    assert "will not be shown again" in lines[2]
    with vault_of(tmp_path).store as store:
        stored = Vault(store).get_placeholder(pid)
    assert verify_placeholder(token, stored.hash)
    assert stored.label == "ci"
    listed = ok(run_credential("credential", "placeholder", "list"))
    assert token not in listed
    assert f"cg-ph-{pid}" in listed


def test_placeholder_issue_json(run_credential: RunCredential) -> None:
    add_openai(run_credential)
    result = run_credential("credential", "placeholder", "issue", "openai-prod", "--agent",
                            "a2", "--json")
    data = json.loads(ok(result))
    assert set(data) == PLACEHOLDER_FIELDS
    assert placeholder_id_of(data["placeholder"]) == data["placeholder_id"]
    assert data["agent_id"] == "a2"
    assert "will not be shown again" in result.stderr


def test_placeholder_refusals(run_credential: RunCredential,
                              expect_error: ExpectError) -> None:
    expect_error(run_credential("credential", "placeholder", "issue", "nope", "--agent",
                                "a1"), "no credential 'nope'")
    add_openai(run_credential)
    expect_error(run_credential("credential", "placeholder", "issue", "openai-prod",
                                "--agent", "ghost"), "no agent 'ghost'")
    expect_error(run_credential("credential", "placeholder", "revoke", "0123456789abcdef"),
                 "no placeholder cg-ph-0123456789abcdef")
    expect_error(run_credential("credential", "placeholder", "revoke", "garbage"),
                 "not a placeholder id")


def test_placeholder_list_and_revoke(run_credential: RunCredential,
                                     expect_error: ExpectError) -> None:
    add_openai(run_credential)
    ok(run_credential("credential", "add", "anthropic", "--provider", "anthropic",
                      input=ANTHROPIC_KEY))
    first = issue(run_credential, "openai-prod", "a1")
    issue(run_credential, "anthropic", "a1")
    issue(run_credential, "openai-prod", "a2")
    every = json.loads(ok(run_credential("credential", "placeholder", "list", "--json")))
    # One clock: same creation times, so in id order.
    assert sorted((p["credential_id"], p["agent_id"]) for p in every) == [
        ("anthropic", "a1"), ("openai-prod", "a1"), ("openai-prod", "a2")]
    assert all(set(p) == PLACEHOLDER_FIELDS for p in every)
    assert all(p["placeholder"] == f"cg-ph-{p['placeholder_id']}" for p in every)
    some = json.loads(ok(run_credential("credential", "placeholder", "list", "--agent", "a1",
                                        "--credential", "openai-prod", "--json")))
    assert [p["placeholder_id"] for p in some] == [first["placeholder_id"]]
    shown = f"cg-ph-{first['placeholder_id']}"
    assert ok(run_credential("credential", "placeholder", "revoke", shown)) == (
        f"revoked placeholder {shown} of agent a1\n")
    lines = ok(run_credential("credential", "placeholder", "list")).splitlines()
    assert lines[0].split() == ["PLACEHOLDER", "AGENT", "CREDENTIAL", "LABEL", "STATE",
                                "CREATED", "REVOKED"]
    row = next(line.split() for line in lines if line.startswith(shown))
    assert row[:5] == [shown, "a1", "openai-prod", "-", "revoked"]
    expect_error(run_credential("credential", "placeholder", "revoke",
                                first["placeholder_id"]), "revoked already")


def test_a_refused_add_makes_no_data_key(run_credential: RunCredential,
                                         expect_error: ExpectError, tmp_path: Path) -> None:
    expect_error(run_credential("credential", "add", "x", "--provider", "vllm",
                                input=OPENAI_KEY), "no default hosts")
    assert not (tmp_path / "credentials.key").exists()


def test_a_missing_data_key_is_not_replaced_silently(run_credential: RunCredential,
                                                     expect_error: ExpectError,
                                                     tmp_path: Path) -> None:
    add_openai(run_credential)
    (tmp_path / "credentials.key").rename(tmp_path / "moved.key")
    with vault_of(tmp_path).store as store:
        sealed_with = Vault(store).get_credential("openai-prod").data_key_id
    expect_error(run_credential("credential", "add", "more", "--provider", "openai",
                                input=OPENAI_KEY),
                 "no data key there", f"sealed with data key {sealed_with}")
    expect_error(run_credential("credential", "rotate", "openai-prod", input=OPENAI_KEY),
                 "no data key there")
    assert not (tmp_path / "credentials.key").exists()
    ok(run_credential("credential", "add", "more", "--provider", "openai", "--data-key",
                      str(tmp_path / "moved.key"), input=OPENAI_KEY))
    # Once the credentials of a lost data key are revoked, a new one is made.
    ok(run_credential("credential", "revoke", "openai-prod"))
    ok(run_credential("credential", "revoke", "more"))
    out = add_openai(run_credential, "fresh")
    assert "created data key" in out
