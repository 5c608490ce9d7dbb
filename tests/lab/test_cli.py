"""``clawgress lab``: what can be checked without building a lab (netns-tests/lab builds one)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]


def test_up_as_non_root_fails_before_making_anything(
    run_cli: RunCli, expect_error: ExpectError, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    state = tmp_path / "state"
    result = run_cli("lab", "up", "--state", str(state), "--prefix", "cgunit", config=None)
    expect_error(result, "needs root")
    assert not state.exists()


def test_status_of_no_lab(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("lab", "status", "--json", "--state", str(tmp_path / "none"),
                     "--prefix", "cgunit-none", config=None)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["up"] is False
    assert report["prefix"] == "cgunit-none"
    assert [n["present"] for n in report["namespaces"]] == [False] * 5
    assert report["engine"] == {"alive": False, "pid": None, "queues": []}


def test_exec_without_a_lab(run_cli: RunCli, expect_error: ExpectError, tmp_path: Path) -> None:
    result = run_cli("lab", "exec", "--state", str(tmp_path), "--prefix", "cgunit-none",
                     "a1", "--", "true", config=None)
    expect_error(result, "cgunit-none-a1 does not exist", "not up")


def test_exec_of_an_unknown_agent(run_cli: RunCli, expect_error: ExpectError,
                                  tmp_path: Path) -> None:
    result = run_cli("lab", "exec", "--state", str(tmp_path), "a7", "--", "true", config=None)
    expect_error(result, "agent 7", "a1..a3")


def test_exec_needs_a_command(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("lab", "exec", "--state", str(tmp_path), "a1", "--", config=None)
    assert result.exit_code == 2
    assert "no command" in result.stderr


def test_a_bad_prefix_is_one_error_line(run_cli: RunCli, expect_error: ExpectError,
                                        tmp_path: Path) -> None:
    result = run_cli("lab", "status", "--state", str(tmp_path), "--prefix", "Bad_Prefix",
                     config=None)
    expect_error(result, "prefix")


def test_a_foreign_record_is_refused(run_cli: RunCli, expect_error: ExpectError,
                                     tmp_path: Path) -> None:
    (tmp_path / "lab.json").write_text("{}")
    result = run_cli("lab", "status", "--state", str(tmp_path), config=None)
    expect_error(result, "not a lab record")
