"""The embedded quota ledger: three tables in the gateway's SQLite store.

Every worker process on a gateway opens its own connection to the same file (WAL mode);
``reserve`` and ``settle`` are each one ``BEGIN IMMEDIATE`` transaction, so a check and
its hold are atomic across processes: the write lock is taken before the counters are
read, and a second worker waits (up to the busy timeout) instead of reading a total that
is about to change. The reads of all of a request's windowed counters are one statement.

``create_tables`` is the schema, for the store's migrations; the ledger also runs it on
open (every statement is ``IF NOT EXISTS``), so it works on a file of its own too.
Expired usage, holds and full buckets are deleted at most once a minute, on a settle.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from gatewayd.quota import bucket as buckets
from gatewayd.quota.ledger import (
    Booking,
    BucketState,
    LedgerUnavailable,
    Line,
    Refund,
    Settlement,
    Snapshot,
    State,
    WindowLine,
    WindowState,
    line_fits,
)

# How long a worker waits for another's write before the backend counts as degraded.
DEFAULT_BUSY_TIMEOUT_S = 2.0
COLLECT_INTERVAL_S = 60.0

T = TypeVar("T")

SCHEMA = (
    # Usage booked per counter and window slot; kept until the slot leaves its window.
    """CREATE TABLE IF NOT EXISTS quota_counters (
        counter TEXT NOT NULL,
        slot INTEGER NOT NULL,
        amount INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (counter, slot)
    ) WITHOUT ROWID""",
    # Estimates held by requests in flight, until settled or expired. Keyed by counter
    # first: a check sums a counter's few live holds, a settle deletes one by its key, and
    # no second index has to be written on every request.
    """CREATE TABLE IF NOT EXISTS quota_holds (
        counter TEXT NOT NULL,
        reservation TEXT NOT NULL,
        amount INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (counter, reservation)
    ) WITHOUT ROWID""",
    # Token buckets of throttle quotas; a bucket that is full again is deleted.
    """CREATE TABLE IF NOT EXISTS quota_buckets (
        counter TEXT PRIMARY KEY,
        tokens REAL NOT NULL,
        stamp REAL NOT NULL,
        full_at REAL NOT NULL
    ) WITHOUT ROWID""",
)

TABLES = ("quota_counters", "quota_holds", "quota_buckets")
_COUNTERS = " UNION ".join(f"SELECT DISTINCT counter FROM {t}" for t in TABLES)  # noqa: S608 - our table names
_RESET = tuple(f"DELETE FROM {t} WHERE counter = ?" for t in TABLES)  # noqa: S608 - idem

_WINDOW_READ = (
    "(SELECT coalesce(sum(amount), 0) FROM quota_counters WHERE counter = ? AND slot >= ?),"
    " (SELECT coalesce(sum(amount), 0) FROM quota_holds WHERE counter = ? AND expires_at > ?)"
)
_SLOTS = "SELECT slot, amount FROM quota_counters WHERE counter = ? AND slot >= ? ORDER BY slot"
_BUCKET = "SELECT tokens, stamp FROM quota_buckets WHERE counter = ?"
_HOLD = "INSERT OR REPLACE INTO quota_holds VALUES (?, ?, ?, ?)"
_TAKE = (
    "INSERT INTO quota_buckets VALUES (?, ?, ?, ?) ON CONFLICT(counter) DO UPDATE SET"
    " tokens = excluded.tokens, stamp = excluded.stamp, full_at = excluded.full_at"
)
_BOOK = (
    "INSERT INTO quota_counters VALUES (?, ?, ?, ?) ON CONFLICT(counter, slot) DO UPDATE SET"
    " amount = amount + excluded.amount, expires_at = max(expires_at, excluded.expires_at)"
)
_DROP = "DELETE FROM quota_holds WHERE counter = ? AND reservation = ?"
_REFUND = (
    "UPDATE quota_buckets SET tokens = min(?1, tokens + ?2),"
    " full_at = stamp + (?1 - min(?1, tokens + ?2)) / ?3 WHERE counter = ?4"
)


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the ledger's tables on ``conn`` inside the caller's transaction."""
    for statement in SCHEMA:
        conn.execute(statement)


def _enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    # Switching to WAL fails at once ("locked") while another process creates the file.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _execute(conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    """``sql`` for each of ``rows`` (one row: a plain ``execute``, cheaper than
    ``executemany``)."""
    if len(rows) == 1:
        conn.execute(sql, rows[0])
    elif rows:
        conn.executemany(sql, rows)


class SqliteLedger:
    """One connection to the quota tables. Not shared across threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._reads: dict[int, str] = {}
        self._next_collect = 0.0

    @classmethod
    def open(cls, path: str | Path, *,
             busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> SqliteLedger:
        """Open (creating if needed) the ledger's tables in the database at ``path``."""
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(p), timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerUnavailable(f"quota store {p}: cannot open: {exc}") from None
        try:
            _enable_wal(conn, busy_timeout_s)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            conn.execute("BEGIN IMMEDIATE")
            create_tables(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            raise LedgerUnavailable(f"quota store {p}: {exc}") from None
        return cls(conn, p)

    @property
    def name(self) -> str:
        return f"sqlite {self.path}"

    def close(self) -> None:
        self._conn.close()

    def _fail(self, exc: sqlite3.Error) -> LedgerUnavailable:
        return LedgerUnavailable(f"quota store {self.path}: {exc}")

    def _read_sql(self, n: int) -> str:
        sql = self._reads.get(n)
        if sql is None:
            sql = self._reads[n] = "SELECT " + ", ".join([_WINDOW_READ] * n)
        return sql

    def _states(self, lines: Sequence[Line], now: float) -> list[State]:
        conn = self._conn
        windows = [line for line in lines if isinstance(line, WindowLine)]
        totals: tuple[int, ...] = ()
        if windows:
            params: list[object] = []
            for w in windows:
                params += (w.counter, w.first_slot, w.counter, now)
            totals = conn.execute(self._read_sql(len(windows)), params).fetchone()
        out: list[State] = []
        i = 0
        for line in lines:
            if isinstance(line, WindowLine):
                out.append(WindowState(int(totals[i]), int(totals[i + 1])))
                i += 2
            else:
                row = conn.execute(_BUCKET, (line.counter,)).fetchone()
                tokens, stamp = (row[0], row[1]) if row else (None, now)
                out.append(BucketState(buckets.level(tokens, stamp, now, line.bucket)))
        return out

    def _with_slots(self, line: WindowLine, state: WindowState) -> WindowState:
        rows = self._conn.execute(_SLOTS, (line.counter, line.first_slot)).fetchall()
        return WindowState(state.used, state.held, tuple((int(s), int(a)) for s, a in rows))

    def _immediately(self, work: Callable[[], T]) -> T:
        """``work`` in one ``BEGIN IMMEDIATE`` transaction: committed when it returns,
        rolled back when it raises; SQLite's errors come out as ``LedgerUnavailable``."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return result

    def reserve(self, reservation: str, lines: Sequence[Line], now: float,
                hold_until: float, settle: Sequence[Settlement] = ()) -> Snapshot:
        def check_and_hold() -> Snapshot:
            if settle:
                self._apply(settle, now)
            states = self._states(lines, now)
            fits = tuple(line_fits(line, st) for line, st in zip(lines, states, strict=True))
            admitted = all(fits)
            if admitted:
                self._hold(reservation, lines, states, now, hold_until)
            else:
                for i, line in enumerate(lines):
                    st = states[i]
                    if not fits[i] and isinstance(line, WindowLine):
                        assert isinstance(st, WindowState)
                        states[i] = self._with_slots(line, st)
            return Snapshot(admitted, fits, tuple(states))

        return self._immediately(check_and_hold)

    def _hold(self, reservation: str, lines: Sequence[Line], states: Sequence[State],
              now: float, hold_until: float) -> None:
        holds = []
        for line, st in zip(lines, states, strict=True):
            if isinstance(line, WindowLine):
                if line.estimate:
                    holds.append((line.counter, reservation, line.estimate, hold_until))
            else:
                assert isinstance(st, BucketState)
                after = st.level - line.estimate
                full_at = now + buckets.refill_after(after, line.bucket)
                self._conn.execute(_TAKE, (line.counter, after, now, full_at))
        _execute(self._conn, _HOLD, holds)

    def _apply(self, entries: Sequence[Settlement], now: float) -> None:
        """Book, drop holds, adjust buckets: inside the caller's transaction."""
        conn = self._conn
        books = [(e.counter, e.slot, e.amount, e.keep_until)
                 for e in entries if isinstance(e, Booking) and e.amount]
        drops = [(e.counter, e.reservation)
                 for e in entries if isinstance(e, Booking) and e.reservation]
        _execute(conn, _BOOK, books)
        _execute(conn, _DROP, drops)
        for e in entries:
            if isinstance(e, Refund):
                conn.execute(_REFUND, (e.burst, e.tokens, e.rate, e.counter))
        if now >= self._next_collect:
            self._collect(now)

    def settle(self, entries: Sequence[Settlement], now: float) -> None:
        self._immediately(lambda: self._apply(entries, now))

    def _collect(self, now: float) -> None:
        self._conn.execute("DELETE FROM quota_counters WHERE expires_at <= ?", (now,))
        self._conn.execute("DELETE FROM quota_holds WHERE expires_at <= ?", (now,))
        self._conn.execute("DELETE FROM quota_buckets WHERE full_at <= ?", (now,))
        self._next_collect = now + COLLECT_INTERVAL_S

    def read(self, lines: Sequence[Line], now: float) -> tuple[State, ...]:
        try:
            states = self._states(lines, now)
            for i, line in enumerate(lines):
                st = states[i]
                if isinstance(line, WindowLine):
                    assert isinstance(st, WindowState)
                    states[i] = self._with_slots(line, st)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return tuple(states)

    def counters(self) -> set[str]:
        try:
            rows = self._conn.execute(_COUNTERS).fetchall()
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        return {str(r[0]) for r in rows}

    def reset(self, counters: Iterable[str]) -> int:
        wanted = set(counters)
        conn = self._conn

        def remove() -> int:
            had = 0
            for counter in sorted(wanted):
                hit = False
                for statement in _RESET:
                    hit = conn.execute(statement, (counter,)).rowcount > 0 or hit
                had += hit
            return had

        return self._immediately(remove)
