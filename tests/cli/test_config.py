from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]


def test_valid_config(run_cli: RunCli, config_file: Path) -> None:
    result = run_cli("config", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {config_file}\n")
    assert "interface eth2: 10.20.0.0/24 (environment prod, fail-open)" in result.stdout


def test_invalid_field_names_file_path_and_expectation(
    run_cli: RunCli, expect_error: ExpectError, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "workload:\n  interfaces:\n    - name: eth1\n      subnets: ['10.0.0.300/24']\n",
        encoding="utf-8",
    )
    expect_error(
        run_cli("config", "check", config=bad),
        str(bad),
        "workload.interfaces[0].subnets[0]",
        "not a valid IPv4 or IPv6 network",
        "10.0.0.300/24",
    )


def test_invalid_yaml_names_file_and_line(
    run_cli: RunCli, expect_error: ExpectError, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("workload:\n  interfaces: [\n", encoding="utf-8")
    line = expect_error(run_cli("config", "check", config=bad), str(bad), "not valid YAML")
    assert "line " in line


def test_unknown_key_is_refused(run_cli: RunCli, expect_error: ExpectError, tmp_path: Path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text("leases:\n  default_tll: 1h\n", encoding="utf-8")
    expect_error(run_cli("config", "check", config=bad), str(bad), "leases.default_tll")


def test_missing_explicit_file(run_cli: RunCli, expect_error: ExpectError, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    expect_error(run_cli("config", "check", config=missing), str(missing), "no such file")


def test_env_variable_is_honoured(
    run_cli: RunCli, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAWGRESS_CONFIG", str(config_file))
    result = run_cli("config", "check", config=None)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {config_file}\n")


def test_missing_env_file(
    run_cli: RunCli, expect_error: ExpectError, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAWGRESS_CONFIG", str(tmp_path / "gone.yaml"))
    expect_error(run_cli("config", "check", config=None), "gone.yaml", "no such file")


def test_explicit_flag_beats_env(
    run_cli: RunCli, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAWGRESS_CONFIG", str(tmp_path / "gone.yaml"))
    result = run_cli("config", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {config_file}\n")


def test_relative_store_path_is_next_to_the_config(
    run_cli: RunCli, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    shown = json.loads(run_cli("config", "show").stdout)
    assert shown["store"]["path"] == str(config_file.parent.resolve() / "clawgress.db")
    result = run_cli("agent", "add", "a1", "--team", "t", "--project", "p", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert (config_file.parent / "clawgress.db").exists()
    assert not (elsewhere / "clawgress.db").exists()
