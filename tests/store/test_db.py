from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gatewayd
from gatewayd.errors import StoreError
from gatewayd.store import MIGRATIONS, SCHEMA_VERSION, Store, db, open_store
from gatewayd.store.migrations import Migration


def tables(store: Store) -> set[str]:
    rows = store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """How many times each migration ran (through ``open_store``)."""
    runs: dict[int, int] = {}

    def wrap(m: Migration) -> Migration:
        def apply(conn: sqlite3.Connection) -> None:
            runs[m.version] = runs.get(m.version, 0) + 1
            m.apply(conn)

        return Migration(m.version, m.name, apply)

    monkeypatch.setattr(db, "MIGRATIONS", tuple(wrap(m) for m in MIGRATIONS))
    return runs


def test_new_store_is_migrated_once(tmp_path: Path, counted: dict[int, int]) -> None:
    with open_store(tmp_path / "new" / "c.db") as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert {"agents", "leases", "generations", "policy_bundles"} <= tables(store)
    assert counted == {m.version: 1 for m in MIGRATIONS}


def test_reopening_is_a_no_op(tmp_path: Path, counted: dict[int, int]) -> None:
    path = tmp_path / "c.db"
    with open_store(path) as store, store.write():
        store.bump("identity")
    with open_store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.generation("identity") == 1
    with open_store(path):
        pass
    assert counted == {m.version: 1 for m in MIGRATIONS}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as info:
        open_store(path)
    message = str(info.value)
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in message
    assert "upgrade Clawgress" in message


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        open_store(path)


def test_wal_and_foreign_keys(store: Store) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_write_is_all_or_nothing(store: Store) -> None:
    def aborted() -> None:
        with store.write():
            store.bump("identity")
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        aborted()
    assert store.generation("identity") == 0
    assert not store.conn.in_transaction


def test_nested_write_refused(store: Store) -> None:
    with store.write(), pytest.raises(StoreError, match="nested"), store.write():
        pass


def test_generations_are_per_domain(store: Store) -> None:
    with store.write():
        store.bump("identity")
        store.bump("identity")
        store.bump("policy")
    assert (store.generation("identity"), store.generation("policy")) == (2, 1)
    assert store.generation("never") == 0


def _python(code: str, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(gatewayd.__file__).parents[1])}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            errors.append(err)
    assert not errors, "\n".join(errors)


# Waits for the start file, then opens the store.
_OPENER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gatewayd.store import open_store

    path, go = sys.argv[1:]
    while not Path(go).exists():
        time.sleep(0.0005)
    open_store(path).close()
    """
)

# Waits for the start file, registers its agent, then grants 200 leases, one
# transaction each.
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gatewayd.identity import LeaseRules, Registry
    from gatewayd.store import open_store

    path, agent, octet, go = sys.argv[1:]
    with open_store(path) as store:
        reg = Registry(store, LeaseRules(default_ttl_s=3600, max_ttl_s=3600))
        while not Path(go).exists():
            time.sleep(0.0005)
        reg.add_agent(agent, team_id="t", project_id="p", environment="e", now=1.0)
        for i in range(200):
            ip = f"10.{octet}.{i // 250}.{i % 250 + 1}"
            reg.grant_lease(ip, agent, iface="eth1", now=2.0 + i)
    """
)


def test_processes_opening_a_new_store_at_once(tmp_path: Path) -> None:
    # Each round races six processes to create, switch to WAL and migrate one new file.
    for round_ in range(4):
        path, go = tmp_path / f"new-{round_}.db", tmp_path / f"go-{round_}"
        procs = [_python(_OPENER, path, go) for _ in range(6)]
        time.sleep(0.2)  # let them start and wait at the line
        go.touch()
        _finish(procs)
        with open_store(path) as store:
            assert store.schema_version() == SCHEMA_VERSION
            assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.db", tmp_path / "go"
    open_store(path).close()
    procs = [_python(_WRITER, path, f"agent-{n}", n, go) for n in (1, 2)]
    time.sleep(0.2)
    go.touch()
    _finish(procs)
    with open_store(path) as store:
        count = store.conn.execute(
            "SELECT agent_id, count(*) FROM leases GROUP BY agent_id ORDER BY 1"
        ).fetchall()
        assert count == [("agent-1", 200), ("agent-2", 200)]
        assert store.generation("identity") == 2 * (1 + 200)
