"""Fixtures shared across the suite: a fresh store, and the CLI on a temporary config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gatewayd.store import Store, open_store

# Two workload interfaces in two environments; the store path is relative on purpose
# (it resolves next to the config file).
TEST_CONFIG = """\
workload:
  interfaces:
    - name: eth1
      subnets: ["10.10.0.0/24", "fd00:10::/64"]
    - name: eth2
      subnets: ["10.20.0.0/24"]
      environment: prod
environments:
  default: {}
  prod: {fail_mode: fail-open}
leases:
  default_ttl: 1h
  max_ttl: 1d
store:
  path: clawgress.db
"""

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "store.db") as opened:
        yield opened


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(TEST_CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def run_cli(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """``run_cli(*args, config=PATH | None)``: ``clawgress --config PATH *args``.

    ``config`` defaults to ``TEST_CONFIG`` in ``tmp_path``; ``None`` passes no ``--config``.
    """
    # Imported here so that tests of the core do not depend on every CLI module importing.
    from gatewayd.cli import cli  # noqa: PLC0415

    monkeypatch.delenv("CLAWGRESS_CONFIG", raising=False)
    runner = CliRunner()

    def run(*args: str, config: Path | None = config_file) -> Result:
        head = ["--config", str(config)] if config is not None else []
        return runner.invoke(cli, [*head, *args])

    return run


@pytest.fixture
def expect_error() -> ExpectError:
    """``expect_error(result, *fragments)``: a user error, one ``error:`` line, no traceback."""

    def check(result: Result, *fragments: str) -> str:
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit), result.exception
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: "), result.stderr
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])
        return lines[0]

    return check
