"""The SQLite ledger: its schema in the store, cleanup, and a store that is busy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gatewayd.quota import (
    Consumption,
    LedgerUnavailable,
    QuotaEngine,
    SqliteLedger,
    create_tables,
    usage_rows,
)
from gatewayd.quota.sqlite_ledger import COLLECT_INTERVAL_S, TABLES
from gatewayd.store import open_store
from tests.quota.conftest import AGENT, NOW, plan_of, quota

PLAIN = Consumption()


def rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_tables_are_created_in_the_callers_transaction_and_again_harmlessly(
        tmp_path: Path) -> None:
    bare = sqlite3.connect(tmp_path / "bare.db", isolation_level=None)
    bare.execute("BEGIN IMMEDIATE")
    create_tables(bare)
    assert bare.in_transaction  # nothing committed behind the caller's back
    bare.execute("ROLLBACK")
    assert not {r[0] for r in bare.execute("SELECT name FROM sqlite_master")} & set(TABLES)
    bare.close()
    # The store's migrations create them; doing it again is harmless.
    with open_store(tmp_path / "store.db") as store, store.write():
        assert {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")} >= set(
            TABLES)
        create_tables(store.conn)
    ledger = SqliteLedger.open(tmp_path / "store.db")  # beside the store's own tables
    eng = QuotaEngine(plan_of(quota("req")), ledger)
    eng.reconcile(eng.reserve(AGENT, PLAIN, NOW), PLAIN, NOW)
    ledger.close()
    assert rows(tmp_path / "store.db", "agents") == 0
    assert rows(tmp_path / "store.db", "quota_counters") == 1


def test_expired_usage_holds_and_buckets_are_deleted(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "q.db"
    ledger = SqliteLedger.open(path)
    plan = plan_of(quota("req", window="rolling-minute", limit=100),
                   quota("rate", scope="agent", mode="throttle", limit=60))
    eng = QuotaEngine(plan, ledger, hold_ttl_s=30)
    eng.reconcile(eng.reserve(AGENT, PLAIN, NOW), PLAIN, NOW)
    eng.reserve(AGENT, PLAIN, NOW)  # never settled
    assert [rows(path, t) for t in TABLES] == [1, 1, 1]
    later = NOW + 2 * COLLECT_INTERVAL_S
    eng.reconcile(eng.reserve(AGENT, PLAIN, later), PLAIN, later)
    # the minute-old usage, the expired hold and the refilled bucket are gone
    assert [rows(path, t) for t in TABLES] == [1, 0, 1]
    ledger.close()


def test_a_store_locked_too_long_is_a_backend_failure(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    ledger = SqliteLedger.open(path, busy_timeout_s=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        eng = QuotaEngine(plan_of(quota("req", limit=5)), ledger)
        with pytest.raises(LedgerUnavailable, match="database is locked"):
            ledger.reserve("r", [], NOW, NOW + 1)
        with pytest.raises(LedgerUnavailable, match="database is locked"):
            ledger.settle([], NOW)
        with pytest.raises(LedgerUnavailable, match="database is locked"):
            ledger.reset(["x|y|z"])
        adm = eng.reserve(AGENT, PLAIN, NOW)
        assert adm.admitted and adm.decision.degraded and adm.where == "local"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    eng.reconcile(adm, PLAIN, NOW + 2)  # the store answers again: booked there
    row, = usage_rows(eng.plan, ledger, NOW + 2, who=AGENT)
    assert row.used == 1
    ledger.close()


def test_an_unopenable_file_is_a_backend_failure(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LedgerUnavailable, match="cannot open"):
        SqliteLedger.open(tmp_path / "file" / "q.db")
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(LedgerUnavailable, match=r"junk\.db"):
        SqliteLedger.open(tmp_path / "junk.db")


def test_reset_forgets_every_kind_of_state(tmp_path: Path) -> None:
    ledger = SqliteLedger.open(tmp_path / "q.db")
    plan = plan_of(quota("req"), quota("rate", scope="agent", mode="throttle", limit=60))
    eng = QuotaEngine(plan, ledger)
    eng.reconcile(eng.reserve(AGENT, PLAIN, NOW), PLAIN, NOW)
    eng.reserve(AGENT, PLAIN, NOW)
    counters = {a.counter for a in plan.applicable(AGENT)}
    assert ledger.counters() == counters
    assert ledger.reset([*counters, "other|a|b"]) == 2
    assert ledger.counters() == set()
    ledger.close()
