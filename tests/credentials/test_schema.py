from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gatewayd.credentials import create_tables
from gatewayd.credentials.schema import TABLES
from gatewayd.store import db, open_store
from gatewayd.store.migrations import MIGRATIONS, Migration


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_create_tables_is_idempotent_and_does_not_commit() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN")
    create_tables(conn)
    create_tables(conn)
    assert conn.in_transaction
    conn.execute("ROLLBACK")
    assert not tables(conn) & set(TABLES)


def test_as_the_next_store_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    version = MIGRATIONS[-1].version + 1
    monkeypatch.setattr(db, "MIGRATIONS",
                        (*MIGRATIONS, Migration(version, "credentials", create_tables)))
    monkeypatch.setattr(db, "SCHEMA_VERSION", version)
    with open_store(tmp_path / "s.db") as store:
        assert store.schema_version() == version
        assert set(TABLES) <= tables(store.conn)
    with open_store(tmp_path / "s.db") as store:  # opened again: nothing to do
        assert store.schema_version() == version
