from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gatewayd.store import MIGRATIONS, SCHEMA_VERSION, db, open_store


def test_versions_are_consecutive() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == MIGRATIONS[-1].version == 5


def test_a_version_2_store_gets_api_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.db"
    with monkeypatch.context() as patch:
        patch.setattr(db, "MIGRATIONS", MIGRATIONS[:2])
        patch.setattr(db, "SCHEMA_VERSION", 2)
        with open_store(path) as store, store.write():
            store.conn.execute(
                "INSERT INTO agents(agent_id, team_id, project_id, environment, created_at)"
                " VALUES ('a1', 't', 'p', 'e', 1.0)"
            )
    with open_store(path) as store:
        assert store.schema_version() == 5
        columns = [row[1] for row in store.conn.execute("PRAGMA table_info(api_keys)")]
        assert columns == ["key_id", "agent_id", "hash", "created_at", "revoked_at", "label"]
        with store.write():
            store.conn.execute(
                "INSERT INTO api_keys(key_id, agent_id, hash, created_at)"
                " VALUES ('k', 'a1', 'sha256:00', 2.0)"
            )
        label = store.conn.execute("SELECT label FROM api_keys").fetchone()[0]
        assert label == ""
        with pytest.raises(sqlite3.IntegrityError), store.write():
            store.conn.execute(
                "INSERT INTO api_keys(key_id, agent_id, hash, created_at)"
                " VALUES ('k2', 'nobody', 'sha256:00', 2.0)"
            )


def test_a_version_3_store_gets_the_quota_ledger(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.db"
    with monkeypatch.context() as patch:
        patch.setattr(db, "MIGRATIONS", MIGRATIONS[:3])
        patch.setattr(db, "SCHEMA_VERSION", 3)
        with open_store(path):
            pass
    with open_store(path) as store:
        assert store.schema_version() == 5
        tables = {row[0] for row in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"quota_counters", "quota_holds", "quota_buckets"} <= tables
