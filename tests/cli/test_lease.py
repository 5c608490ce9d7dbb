from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from gatewayd.cli.context import CliContext

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]

T0 = 1_700_000_000.0
LEASE_KEYS = {
    "id",
    "ip",
    "iface",
    "agent_id",
    "state",
    "granted_at",
    "granted_at_unix",
    "expires_at",
    "expires_at_unix",
    "remaining_s",
    "revoked_at",
    "revoked_at_unix",
    "revoke_reason",
}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The CLI's clock: set ``clock[0]`` to move time."""
    now = [T0]
    monkeypatch.setattr(CliContext, "now", lambda self: now[0])
    return now


@pytest.fixture(autouse=True)
def agents(run_cli: RunCli) -> None:
    for agent_id, env in (("a1", "dev"), ("a2", "prod")):
        ok(run_cli("agent", "add", agent_id, "--team", "t", "--project", "p", "--env", env))


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_grant_defaults(run_cli: RunCli) -> None:
    out = ok(run_cli("lease", "grant", "10.20.0.9", "--agent", "a2"))
    assert out == "leased 10.20.0.9 on eth2 to agent a2 until 2023-11-14T23:13:20Z (1h)\n"


def test_grant_ipv6_normalized_with_iface_and_ttl(run_cli: RunCli) -> None:
    out = ok(
        run_cli(
            "lease", "grant", "FD00:10::0:5", "--agent", "a1", "--iface", "eth1", "--ttl", "90m"
        )
    )
    assert out.startswith("leased fd00:10::5 on eth1 to agent a1 until ")
    assert out.endswith("(1h30m)\n")


def test_regrant_renews(run_cli: RunCli, clock: list[float]) -> None:
    ok(run_cli("lease", "grant", "10.10.0.5", "--agent", "a1", "--ttl", "10m"))
    clock[0] += 300
    ok(run_cli("lease", "grant", "10.10.0.5", "--agent", "a1", "--ttl", "10m"))
    data = json.loads(ok(run_cli("lease", "list", "--all", "--json")))
    assert len(data) == 1
    assert data[0]["granted_at_unix"] == T0
    assert data[0]["expires_at_unix"] == T0 + 900
    assert data[0]["remaining_s"] == 600


def test_list_and_json(run_cli: RunCli, clock: list[float]) -> None:
    ok(run_cli("lease", "grant", "10.10.0.10", "--agent", "a1"))
    ok(run_cli("lease", "grant", "10.10.0.2", "--agent", "a2", "--ttl", "1m"))
    ok(run_cli("lease", "grant", "10.10.0.3", "--agent", "a2"))
    ok(run_cli("lease", "revoke", "10.10.0.3"))
    clock[0] += 120
    lines = ok(run_cli("lease", "list")).splitlines()
    assert lines[0].split() == ["IP", "IFACE", "AGENT", "STATE", "GRANTED", "EXPIRES", "REMAINING"]
    assert len(lines) == 2
    assert lines[1].split()[:4] == ["10.10.0.10", "eth1", "a1", "active"]
    assert lines[1].split()[-1] == "58m"
    every = ok(run_cli("lease", "list", "--all")).splitlines()
    assert every[0].split()[-1] == "REASON"
    assert [line.split()[0] for line in every[1:]] == ["10.10.0.2", "10.10.0.3", "10.10.0.10"]
    assert every[2].split()[3] == "revoked"
    assert every[2].endswith("revoked by operator")
    data = json.loads(ok(run_cli("lease", "list", "--all", "--json")))
    assert all(set(d) == LEASE_KEYS for d in data)
    assert [(d["ip"], d["state"]) for d in data] == [
        ("10.10.0.2", "expired"),
        ("10.10.0.3", "revoked"),
        ("10.10.0.10", "active"),
    ]
    assert data[1]["revoked_at"] == "2023-11-14T22:13:20Z"
    assert data[1]["revoked_at_unix"] == T0
    assert data[2]["expires_at"] == "2023-11-14T23:13:20Z"
    assert [d["ip"] for d in json.loads(ok(run_cli("lease", "list", "--json")))] == ["10.10.0.10"]


def test_show(run_cli: RunCli, clock: list[float]) -> None:
    ok(run_cli("lease", "grant", "10.20.0.9", "--agent", "a2", "--ttl", "2h"))
    out = ok(run_cli("lease", "show", "10.20.0.9"))
    assert "state        active\n" in out
    assert "environment  prod\n" in out
    assert "remaining    2h\n" in out
    data = json.loads(ok(run_cli("lease", "show", "10.20.0.9", "--json")))
    assert set(data) == LEASE_KEYS | {"identity"}
    assert data["identity"] == {
        "agent_id": "a2",
        "team_id": "t",
        "project_id": "p",
        "environment": "prod",
        "workload_fingerprint": "",
    }
    clock[0] += 7200
    assert json.loads(ok(run_cli("lease", "show", "10.20.0.9", "--json")))["state"] == "expired"


def test_revoke(run_cli: RunCli, expect_error: ExpectError) -> None:
    ok(run_cli("lease", "grant", "10.10.0.5", "--agent", "a1"))
    out = ok(run_cli("lease", "revoke", "10.10.0.5", "--reason", "key leaked"))
    assert out == "revoked lease of 10.10.0.5 on eth1 (agent a1)\n"
    data = json.loads(ok(run_cli("lease", "show", "10.10.0.5", "--json")))
    assert (data["state"], data["revoke_reason"]) == ("revoked", "key leaked")
    expect_error(run_cli("lease", "revoke", "10.10.0.5"), "no active lease for 10.10.0.5")
    # Free again, for anyone.
    ok(run_cli("lease", "grant", "10.10.0.5", "--agent", "a2"))


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("grant", "10.10.0.300", "--agent", "a1"), ("invalid IP address '10.10.0.300'",)),
        (("grant", "10.10.0.0/24", "--agent", "a1"), ("that is a network",)),
        (("grant", "::ffff:10.10.0.5", "--agent", "a1"), ("lease the IPv4 address 10.10.0.5",)),
        (("grant", "224.0.0.5", "--agent", "a1"), ("multicast",)),
        (("grant", "10.10.0.5", "--agent", "zz"), ("no agent 'zz'",)),
        (("grant", "10.10.0.7", "--agent", "a2"), ("10.10.0.7 is leased to agent 'a1' on eth1",)),
        (
            ("grant", "10.10.0.5", "--agent", "a1", "--ttl", "0"),
            ("--ttl: invalid duration '0'", "greater than zero"),
        ),
        (
            ("grant", "10.10.0.5", "--agent", "a1", "--ttl", "-5m"),
            ("--ttl: invalid duration '-5m'",),
        ),
        (
            ("grant", "10.10.0.5", "--agent", "a1", "--ttl", "soon"),
            ("--ttl: invalid duration 'soon'",),
        ),
        (
            ("grant", "10.10.0.5", "--agent", "a1", "--ttl", "2d"),
            ("2d is longer than the maximum 1d", "leases.max_ttl"),
        ),
        (
            ("grant", "10.99.0.5", "--agent", "a1"),
            (
                "10.99.0.5 is not in any workload interface's subnets",
                "eth1: 10.10.0.0/24, fd00:10::/64",
                "eth2: 10.20.0.0/24",
            ),
        ),
        (
            ("grant", "10.10.0.5", "--agent", "a1", "--iface", "eth2"),
            ("10.10.0.5 is not in eth2's subnets (10.20.0.0/24)",),
        ),
        (
            ("grant", "10.10.0.5", "--agent", "a1", "--iface", "eth9"),
            ("interface 'eth9' is not a workload interface (declared: eth1, eth2)",),
        ),
        (
            ("grant", "10.10.0.5", "--agent", "a1", "--iface", "a/b"),
            ("invalid interface name 'a/b'",),
        ),
        (("revoke", "10.10.0.8"), ("no active lease for 10.10.0.8",)),
        (("revoke", "nonsense"), ("invalid IP address 'nonsense'",)),
        (("revoke", "10.10.0.7", "--reason", ""), ("invalid reason",)),
        (("show", "10.10.0.8"), ("no lease for 10.10.0.8",)),
        (("show", "10.10.0.8", "--json"), ("no lease for 10.10.0.8",)),
        (("show", "fd00::/8"), ("that is a network",)),
    ],
)
def test_bad_input(
    run_cli: RunCli, expect_error: ExpectError, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    ok(run_cli("lease", "grant", "10.10.0.7", "--agent", "a1"))
    before = ok(run_cli("lease", "list", "--all", "--json"))
    expect_error(run_cli("lease", *args), *fragments)
    assert ok(run_cli("lease", "list", "--all", "--json")) == before


def test_iface_required_without_workload_interfaces(
    run_cli: RunCli, expect_error: ExpectError, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("store:\n  path: clawgress.db\n", encoding="utf-8")
    expect_error(
        run_cli("lease", "grant", "192.0.2.5", "--agent", "a1", config=bare),
        "--iface is required",
        "declares no workload interfaces",
    )
    out = ok(
        run_cli("lease", "grant", "192.0.2.5", "--agent", "a1", "--iface", "veth7", config=bare)
    )
    assert out.startswith("leased 192.0.2.5 on veth7 to agent a1")


def test_help(run_cli: RunCli) -> None:
    out = ok(run_cli("lease", "--help"))
    for command in ("grant", "list", "show", "revoke"):
        assert f"  {command} " in out
    out = ok(run_cli("lease", "grant", "--help"))
    for text in ("--agent", "--iface", "--ttl", "leases.default_ttl", "leases.max_ttl", "renews"):
        assert text in out
    assert "--all" in ok(run_cli("lease", "list", "--help"))
    assert "--json" in ok(run_cli("lease", "show", "--help"))
