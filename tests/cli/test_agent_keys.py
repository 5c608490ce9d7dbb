from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from gatewayd.cli.context import CliContext
from gatewayd.l7.api_keys import hash_api_key, key_id_of

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]

T0 = 1_700_000_000.0
KEY_FIELDS = {
    "key_id",
    "agent_id",
    "label",
    "state",
    "created_at",
    "created_at_unix",
    "revoked_at",
    "revoked_at_unix",
}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [T0]
    monkeypatch.setattr(CliContext, "now", lambda self: now[0])
    return now


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


@pytest.fixture(autouse=True)
def agents(run_cli: RunCli) -> None:
    for agent in ("a1", "a2"):
        ok(run_cli("agent", "add", agent, "--team", "t", "--project", "p", "--env", "dev"))


def create(run_cli: RunCli, agent: str = "a1", *extra: str) -> tuple[str, str]:
    """(key id, key) of a new key, from the JSON output."""
    data = json.loads(ok(run_cli("agent", "key", "create", agent, "--json", *extra)))
    return data["key_id"], data["api_key"]


def test_create_prints_the_key_once(run_cli: RunCli) -> None:
    result = run_cli("agent", "key", "create", "a1", "--label", "ci runner")
    lines = ok(result).splitlines()
    key = lines[1]
    key_id = key_id_of(key)
    assert key_id is not None
    assert lines[0] == f"created API key {key_id} for agent a1"
    assert "will not be shown again" in lines[2]
    listed = ok(run_cli("agent", "key", "list", "a1"))
    assert key_id in listed
    assert "ci runner" in listed
    assert key not in listed
    assert key.split("_", 2)[2] not in listed  # the secret (it may hold "_" too)
    assert hash_api_key(key) not in listed


def test_create_json(run_cli: RunCli) -> None:
    result = run_cli("agent", "key", "create", "a1", "--json")
    data = json.loads(ok(result))
    assert set(data) == KEY_FIELDS | {"api_key"}
    assert key_id_of(data["api_key"]) == data["key_id"]
    assert (data["agent_id"], data["state"], data["label"]) == ("a1", "active", "")
    assert data["created_at"] == "2023-11-14T22:13:20Z"
    assert data["created_at_unix"] == T0
    assert "will not be shown again" in result.stderr


def test_list_and_revoke(run_cli: RunCli, clock: list[float]) -> None:
    first, first_key = create(run_cli, "a1", "--label", "one")
    clock[0] += 60
    second, second_key = create(run_cli, "a1")
    create(run_cli, "a2")
    assert ok(run_cli("agent", "key", "revoke", first)) == f"revoked API key {first} of agent a1\n"
    data = json.loads(ok(run_cli("agent", "key", "list", "a1", "--json")))
    assert [d["key_id"] for d in data] == [first, second]
    assert all(set(d) == KEY_FIELDS for d in data)
    assert [d["state"] for d in data] == ["revoked", "active"]
    assert data[0]["revoked_at_unix"] == T0 + 60
    assert data[1]["revoked_at"] is None
    out = ok(run_cli("agent", "key", "list", "a1"))
    lines = out.splitlines()
    assert lines[0].split() == ["KEY_ID", "LABEL", "STATE", "CREATED", "REVOKED"]
    assert lines[1].split() == [
        first, "one", "revoked", "2023-11-14T22:13:20Z", "2023-11-14T22:14:20Z"
    ]
    assert lines[2].split() == [second, "-", "active", "2023-11-14T22:14:20Z", "-"]
    for key in (first_key, second_key):
        assert key not in out
        assert hash_api_key(key) not in out
    assert json.loads(ok(run_cli("agent", "key", "list", "a2", "--json")))[0]["agent_id"] == "a2"


def test_list_empty(run_cli: RunCli) -> None:
    assert json.loads(ok(run_cli("agent", "key", "list", "a1", "--json"))) == []
    assert ok(run_cli("agent", "key", "list", "a1")).startswith("KEY_ID")


def test_removing_the_agent_removes_its_keys(run_cli: RunCli, expect_error: ExpectError) -> None:
    key_id, _ = create(run_cli)
    ok(run_cli("agent", "remove", "a1"))
    expect_error(run_cli("agent", "key", "revoke", key_id), f"no API key '{key_id}'")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("agent", "key", "create", "zz"), ("no agent 'zz'",)),
        (("agent", "key", "create", "zz", "--json"), ("no agent 'zz'",)),
        (("agent", "key", "create", "a1", "--label", "tab\there"), ("invalid label",)),
        (("agent", "key", "list", "zz"), ("no agent 'zz'",)),
        (("agent", "key", "list", "zz", "--json"), ("no agent 'zz'",)),
        (("agent", "key", "revoke", "0123456789abcdef"), ("no API key '0123456789abcdef'",)),
    ],
)
def test_bad_input(
    run_cli: RunCli, expect_error: ExpectError, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    expect_error(run_cli(*args), *fragments)
    assert json.loads(ok(run_cli("agent", "key", "list", "a1", "--json"))) == []


def test_revoking_twice(run_cli: RunCli, expect_error: ExpectError) -> None:
    key_id, _ = create(run_cli)
    ok(run_cli("agent", "key", "revoke", key_id))
    expect_error(run_cli("agent", "key", "revoke", key_id), "revoked already")


def test_help(run_cli: RunCli) -> None:
    assert "  key " in ok(run_cli("agent", "--help"))
    out = ok(run_cli("agent", "key", "--help"))
    for command in ("create", "list", "revoke"):
        assert f"  {command} " in out
    assert "Proxy-Authorization: Basic" in " ".join(out.split())
    assert "--label" in ok(run_cli("agent", "key", "create", "--help"))
