"""``clawgress quota show|reset`` on the test configuration's store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd.cli.quota import quota as quota_group
from gatewayd.identity import Identity
from gatewayd.quota import Consumption, PriceTable, QuotaEngine, SqliteLedger, compile_quotas
from gatewayd.quota.documents import parse_quota_file
from tests.conftest import ExpectError, RunCli

QUOTAS = """\
apiVersion: clawgress.io/v1
kind: Quota
metadata: {id: team-requests}
spec: {scope: team, selector: {team: [research, ml]}, metric: requests,
       window: calendar-day, limit: 100}
---
apiVersion: clawgress.io/v1
kind: Quota
metadata: {id: agent-cost}
spec: {scope: agent, metric: cost-usd, window: calendar-month, limit: 2.5, mode: soft-stop}
---
apiVersion: clawgress.io/v1
kind: Quota
metadata: {id: project-rate}
spec: {scope: project, metric: requests, window: rolling-minute, limit: 60, mode: throttle}
"""
PRICES = PriceTable.model_validate(
    [{"model": "*", "input_per_million": 1, "output_per_million": 1}])
WHO = Identity("agent-1", "research", "atlas", "default")


@pytest.fixture
def quota_cli(run_cli: RunCli, tmp_path: Path) -> Iterator[RunCli]:
    """The CLI with the ``quota`` group, an agent, and three calls of usage in the store."""
    from gatewayd.cli import cli  # noqa: PLC0415 - as tests/conftest.py imports it

    added = "quota" not in cli.commands
    if added:
        cli.add_command(quota_group)
    try:
        assert run_cli("agent", "add", "agent-1", "--team", "research", "--project", "atlas",
                       "--env", "default").exit_code == 0
        (tmp_path / "quotas.yaml").write_text(QUOTAS)
        ledger = SqliteLedger.open(tmp_path / "clawgress.db")
        eng = QuotaEngine(compile_quotas(parse_quota_file(QUOTAS, "quotas.yaml")), ledger,
                          prices=PRICES)
        now = time.time()
        for _ in range(3):
            adm = eng.reserve(WHO, Consumption(input_tokens=100_000, model="m"), now)
            eng.reconcile(adm, Consumption(input_tokens=100_000, model="m"), now)
        ledger.close()
        yield run_cli
    finally:
        if added:
            cli.commands.pop("quota")


def test_show_an_agent_as_json(quota_cli: RunCli, tmp_path: Path) -> None:
    result = quota_cli("quota", "show", "--agent", "agent-1", "--json",
                       "--file", str(tmp_path / "quotas.yaml"))
    assert result.exit_code == 0, result.output
    rows = {r["quota_id"]: r for r in json.loads(result.output)}
    assert set(rows) == {"team-requests", "agent-cost", "project-rate"}
    team = rows["team-requests"]
    assert (team["subject"], team["used"], team["limit"], team["remaining"]) == (
        "research", 3, 100, 97)
    assert team["resets_at"].endswith("T00:00:00Z")
    cost = rows["agent-cost"]
    assert (cost["unit"], cost["used"], cost["limit"], cost["remaining"]) == (
        "USD", 0.3, 2.5, 2.2)
    assert cost["resets_at"].endswith("-01T00:00:00Z")
    assert rows["project-rate"]["used"] == 3 and rows["project-rate"]["limit"] == 60


def test_show_a_team_as_a_table(quota_cli: RunCli, tmp_path: Path) -> None:
    result = quota_cli("quota", "show", "--team", "research", "-f", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["QUOTA", "SCOPE", "WINDOW", "MODE", "USED", "LIMIT",
                                "REMAINING", "RESETS"]
    assert lines[1].split()[:9] == ["team-requests", "team", "research", "calendar-day",
                                    "hard-stop", "3", "requests", "100", "requests"]
    assert len(lines) == 2


def test_show_everything_lists_used_and_named_subjects(quota_cli: RunCli,
                                                       tmp_path: Path) -> None:
    result = quota_cli("quota", "show", "--json", "-f", str(tmp_path / "quotas.yaml"))
    subjects = {(r["quota_id"], r["subject"], r["used"]) for r in json.loads(result.output)}
    assert subjects == {("team-requests", "research", 3), ("team-requests", "ml", 0),
                        ("agent-cost", "agent-1", 0.3), ("project-rate", "atlas", 3)}


def test_show_needs_quotas(quota_cli: RunCli, expect_error: ExpectError) -> None:
    expect_error(quota_cli("quota", "show"), "no policy bundle at", "--file")
    expect_error(quota_cli("quota", "show", "--agent", "nobody", "-f", "."), "nobody")
    expect_error(quota_cli("quota", "show", "--team", "a", "--project", "b", "-f", "."),
                 "choose one of --agent, --team and --project")


def test_reset_lists_until_confirmed(quota_cli: RunCli, tmp_path: Path,
                                     expect_error: ExpectError) -> None:
    listed = quota_cli("quota", "reset", "--team", "research")
    expect_error(listed, "nothing reset: 1 counters of team research listed; add --yes")
    assert listed.stdout.splitlines() == [
        "team-requests|team/requests/calendar-day|research"]
    done = quota_cli("quota", "reset", "--team", "research", "--yes")
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-1] == "reset 1 counters of team research"
    again = quota_cli("quota", "reset", "--team", "research", "--yes")
    assert again.output == "no counters of team research\n"
    shown = quota_cli("quota", "show", "--team", "research", "--json", "-f", str(tmp_path))
    assert json.loads(shown.output)[0]["used"] == 0


def test_reset_by_quota_and_everything(quota_cli: RunCli) -> None:
    result = quota_cli("quota", "reset", "--quota", "agent-cost", "--yes", "--json")
    assert json.loads(result.output) == {
        "counters": ["agent-cost|agent/cost-usd/calendar-month|agent-1"], "done": True,
        "reset": 1}
    result = quota_cli("quota", "reset", "--all", "--yes", "--json")
    assert json.loads(result.output)["reset"] == 2


def test_reset_needs_a_selection(quota_cli: RunCli, expect_error: ExpectError) -> None:
    expect_error(quota_cli("quota", "reset", "--yes"), "say what to reset")
    expect_error(quota_cli("quota", "reset", "--all", "--team", "x"), "do not combine")
    expect_error(quota_cli("quota", "reset", "--agent", "a", "--team", "x"), "name one subject")
