"""A store with the credential tables and two agents, a data key, and the CLI with the
``credential`` group on the suite's temporary configuration."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gatewayd.cli.context import CliContext
from gatewayd.credentials import DataKey, Vault, create_tables
from gatewayd.identity import Registry
from gatewayd.store import Store, open_store

T0 = 1_700_000_000.0
AGENTS = ("a1", "a2")

# Keys of the shapes providers hand out, made up; none of them works anywhere.
OPENAI_KEY = "sk-proj-Fake0penaiKey1234567890abcdefGHIJT3BlbkFJklmnopqrstuvwxyz0123"
ANTHROPIC_KEY = "sk-ant-api03-FakeAnthropicKey_1234567890abcdefghijklmnopqrstuvwxyzABCDEF-AA"
GEMINI_KEY = "AIzaSyFakeGeminiKey1234567890abcdefghij"
AZURE_KEY = "0123456789abcdef0123456789abcdef"

RunCredential = Callable[..., Result]


def with_tables(store: Store) -> Store:
    """``store`` with the credential tables (what store migration 5 adds)."""
    with store.write():
        create_tables(store.conn)
    return store


def counting_bytes() -> Callable[[int], bytes]:
    """A randomness source giving 0x00, 0x01, ... (known placeholders)."""
    counter = itertools.count()
    return lambda n: bytes(next(counter) % 256 for _ in range(n))


@pytest.fixture
def vault(store: Store) -> Vault:
    registry = Registry(with_tables(store))
    for agent in AGENTS:
        registry.add_agent(agent, team_id="t", project_id="p", environment="dev", now=T0)
    return Vault(store)


@pytest.fixture
def data_key() -> DataKey:
    return DataKey(bytes(range(32)))


@pytest.fixture
def run_credential(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> RunCredential:
    """``run_credential(*args, input=None)``: ``clawgress --config PATH *args`` with the
    ``credential`` group registered, on a store that has the credential tables, on a fixed
    clock. ``input`` is what standard input holds."""
    from gatewayd.cli import cli  # noqa: PLC0415 - as in tests/conftest.py
    from gatewayd.cli.credential import group  # noqa: PLC0415

    monkeypatch.delenv("CLAWGRESS_CONFIG", raising=False)
    monkeypatch.setitem(cli.commands, "credential", group)
    monkeypatch.setattr(CliContext, "now", lambda self: T0)
    with open_store(config_file.parent / "clawgress.db") as store:
        with_tables(store)
    runner = CliRunner()

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(cli, ["--config", str(config_file), *args], input=input)

    return run
