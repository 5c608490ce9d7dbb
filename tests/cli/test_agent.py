from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from gatewayd.cli.context import CliContext

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]

T0 = 1_700_000_000.0
AGENT_KEYS = {
    "agent_id",
    "team_id",
    "project_id",
    "environment",
    "workload_fingerprint",
    "created_at",
    "created_at_unix",
}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The CLI's clock: set ``clock[0]`` to move time."""
    now = [T0]
    monkeypatch.setattr(CliContext, "now", lambda self: now[0])
    return now


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def add(run_cli: RunCli, agent_id: str = "a1", *extra: str) -> Result:
    return run_cli(
        "agent", "add", agent_id, "--team", "t1", "--project", "p1", "--env", "dev", *extra
    )


def test_add_and_list(run_cli: RunCli) -> None:
    assert ok(add(run_cli)) == "added agent a1 (team t1, project p1, environment dev)\n"
    ok(add(run_cli, "b2", "--fingerprint", "sha256:feed"))
    ok(run_cli("lease", "grant", "10.10.0.5", "--agent", "b2"))
    lines = ok(run_cli("agent", "list")).splitlines()
    assert lines[0].split() == [
        "AGENT",
        "TEAM",
        "PROJECT",
        "ENVIRONMENT",
        "FINGERPRINT",
        "LEASES",
        "CREATED",
    ]
    assert lines[1].split()[:6] == ["a1", "t1", "p1", "dev", "-", "-"]
    assert lines[2].split()[:6] == ["b2", "t1", "p1", "dev", "sha256:feed", "10.10.0.5"]
    assert lines[2].split()[6] == "2023-11-14T22:13:20Z"


def test_list_json(run_cli: RunCli) -> None:
    ok(add(run_cli, "b2"))
    ok(add(run_cli, "a1", "--fingerprint", "img@sha256:1"))
    ok(run_cli("lease", "grant", "fd00:10::7", "--agent", "a1"))
    data = json.loads(ok(run_cli("agent", "list", "--json")))
    assert [d["agent_id"] for d in data] == ["a1", "b2"]
    assert set(data[0]) == AGENT_KEYS | {"active_leases"}
    assert data[0]["workload_fingerprint"] == "img@sha256:1"
    assert data[0]["active_leases"] == ["fd00:10::7"]
    assert data[1]["active_leases"] == []
    assert data[0]["created_at"] == "2023-11-14T22:13:20Z"
    assert data[0]["created_at_unix"] == T0


def test_list_empty(run_cli: RunCli) -> None:
    assert json.loads(ok(run_cli("agent", "list", "--json"))) == []
    assert ok(run_cli("agent", "list")).startswith("AGENT")


def test_show(run_cli: RunCli, clock: list[float]) -> None:
    ok(add(run_cli))
    ok(run_cli("lease", "grant", "10.10.0.5", "--agent", "a1", "--ttl", "10m"))
    ok(run_cli("lease", "grant", "10.20.0.5", "--agent", "a1", "--ttl", "1m"))
    clock[0] += 120  # the second lease has expired
    out = ok(run_cli("agent", "show", "a1"))
    assert "agent        a1\n" in out
    assert "environment  dev\n" in out
    assert "leases       10.10.0.5 on eth1 until 2023-11-14T22:23:20Z (8m)\n" in out
    data = json.loads(ok(run_cli("agent", "show", "a1", "--json")))
    assert set(data) == AGENT_KEYS | {"leases", "quarantine"}
    assert [(x["ip"], x["iface"], x["state"]) for x in data["leases"]] == [
        ("10.10.0.5", "eth1", "active")
    ]


def test_remove(run_cli: RunCli) -> None:
    ok(add(run_cli))
    assert ok(run_cli("agent", "remove", "a1")) == "removed agent a1\n"
    assert json.loads(ok(run_cli("agent", "list", "--json"))) == []


def test_remove_with_leases(run_cli: RunCli, expect_error: ExpectError) -> None:
    ok(add(run_cli))
    ok(run_cli("lease", "grant", "10.10.0.5", "--agent", "a1"))
    expect_error(run_cli("agent", "remove", "a1"), "holds 1 active lease(s) (10.10.0.5)", "--force")
    assert len(json.loads(ok(run_cli("agent", "list", "--json")))) == 1
    out = ok(run_cli("agent", "remove", "a1", "--force"))
    assert out == "revoked lease of 10.10.0.5 on eth1 (agent removed)\nremoved agent a1\n"
    assert json.loads(ok(run_cli("lease", "list", "--all", "--json"))) == []


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("agent", "add", "bad id", "--team", "t", "--project", "p", "--env", "e"),
            ("invalid agent id 'bad id'",),
        ),
        (
            ("agent", "add", "a9", "--team", "t/x", "--project", "p", "--env", "e"),
            ("invalid team id",),
        ),
        (
            ("agent", "add", "a9", "--team", "t", "--project", "-p", "--env", "e"),
            ("invalid project id",),
        ),
        (
            ("agent", "add", "a9", "--team", "t", "--project", "p", "--env", "e e"),
            ("invalid environment",),
        ),
        (
            (
                "agent",
                "add",
                "a9",
                "--team",
                "t",
                "--project",
                "p",
                "--env",
                "e",
                "--fingerprint",
                "a b",
            ),
            ("invalid workload fingerprint",),
        ),
        (
            ("agent", "add", "a1", "--team", "t", "--project", "p", "--env", "e"),
            ("agent 'a1' already exists",),
        ),
        (("agent", "show", "zz"), ("no agent 'zz'",)),
        (("agent", "show", "zz", "--json"), ("no agent 'zz'",)),
        (("agent", "remove", "zz"), ("no agent 'zz'",)),
    ],
)
def test_bad_input(
    run_cli: RunCli, expect_error: ExpectError, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    ok(add(run_cli))
    expect_error(run_cli(*args), *fragments)


def test_missing_option_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("agent", "add", "a1", "--project", "p", "--env", "e")
    assert result.exit_code == 2
    assert "Missing option '--team'" in result.stderr


def test_help(run_cli: RunCli) -> None:
    out = ok(run_cli("agent", "--help"))
    for command in ("add", "list", "show", "remove"):
        assert f"  {command} " in out
    out = ok(run_cli("agent", "add", "--help"))
    assert "--team" in out
    assert "--fingerprint" in out
    assert "starting with a letter or digit" in out
    assert "--force" in ok(run_cli("agent", "remove", "--help"))


def test_quarantine_and_release_cli(run_cli: RunCli, expect_error: ExpectError) -> None:
    added = run_cli("agent", "add", "q1", "--team", "t", "--project", "p", "--env", "e")
    assert added.exit_code == 0
    result = run_cli("agent", "quarantine", "q1", "--reason", "leaking keys")
    assert result.exit_code == 0, result.output
    assert "is quarantined since" in result.output
    shown = json.loads(run_cli("agent", "show", "q1", "--json").output)
    assert shown["quarantine"]["reason"] == "leaking keys"
    assert run_cli("agent", "release", "q1").exit_code == 0
    assert json.loads(run_cli("agent", "show", "q1", "--json").output)["quarantine"] is None
    expect_error(run_cli("agent", "release", "q1"), "not quarantined")
    expect_error(run_cli("agent", "quarantine", "ghost", "--reason", "x"), "ghost")
