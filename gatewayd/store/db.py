"""Opening the store, transactions and change generations."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database

from gatewayd.errors import StoreError
from gatewayd.store.migrations import MIGRATIONS, SCHEMA_VERSION

# How long a writer waits for another process's write transaction before giving up.
DEFAULT_BUSY_TIMEOUT_S = 10.0


class Store:
    """One open connection to the store. Not shared across threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.db = Database(conn)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """A write transaction taken with ``BEGIN IMMEDIATE``: all or nothing.

        Taking the write lock up front means a second writer waits for the busy timeout
        instead of failing when it upgrades a read lock.
        """
        if self._in_transaction():
            raise StoreError("nested write transaction")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"store {self.path}: cannot start a write: {exc}") from None
        try:
            yield self.db
        except BaseException:
            if self._in_transaction():
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def _in_transaction(self) -> bool:
        return self.conn.in_transaction

    def bump(self, domain: str) -> None:
        """Advance ``domain``'s generation; call inside ``write()``."""
        self.conn.execute(
            "INSERT INTO generations(domain, generation) VALUES (?, 1)"
            " ON CONFLICT(domain) DO UPDATE SET generation = generation + 1",
            (domain,),
        )

    def generation(self, domain: str) -> int:
        """How many writes ``domain`` has seen (0 if none)."""
        row = self.conn.execute(
            "SELECT generation FROM generations WHERE domain = ?", (domain,)
        ).fetchone()
        return int(row[0]) if row else 0

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])


def _enable_wal(conn: sqlite3.Connection, path: Path, timeout_s: float) -> None:
    """Switch to WAL, waiting out other processes opening the same new file.

    Changing the journal mode can fail with "database is locked" at once, without the
    busy handler, while another connection is creating or converting the file; once set,
    WAL is persistent and this is a read.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
    if mode.lower() not in ("wal", "memory"):  # "memory": an in-memory store (tests)
        raise StoreError(f"store {path}: cannot use WAL journaling (journal mode is {mode})")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"store {path}: schema version {current} is newer than this Clawgress knows"
            f" ({SCHEMA_VERSION}); upgrade Clawgress"
        )
    if current == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for migration in MIGRATIONS:
            if migration.version > current:
                migration.apply(conn)
                conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def open_store(path: str | Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Store:
    """Open (creating if needed) the store at ``path`` and bring its schema up to date."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write says BEGIN itself.
        conn = sqlite3.connect(str(p), timeout=busy_timeout_s, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"store {p}: cannot open: {exc}") from None
    try:
        _enable_wal(conn, p, busy_timeout_s)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        _migrate(conn, p)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"store {p}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return Store(conn, p)
