"""Versioned schema migrations, applied in order on open.

The schema version lives in SQLite's ``PRAGMA user_version``. A migration is a function
of the open connection; each runs in the same ``BEGIN IMMEDIATE`` transaction as the
version bump, so two processes opening a new store at once apply it exactly once. Later
components append their migrations here; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from gatewayd.credentials.schema import create_tables as credential_tables
from gatewayd.quota.sqlite_ledger import create_tables


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``script``'s statements one by one inside the caller's transaction.

    Not ``Connection.executescript``: it COMMITs the open transaction first, so the
    migration would no longer be atomic with its version bump (and the final COMMIT in
    ``_migrate`` fails with "no transaction is active").
    """
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _identity_and_policy(conn: sqlite3.Connection) -> None:
    _execute_script(
        conn,
        """
        CREATE TABLE agents (
            agent_id TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            project_id TEXT NOT NULL,
            environment TEXT NOT NULL,
            workload_fingerprint TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        );
        CREATE TABLE leases (
            id INTEGER PRIMARY KEY,
            ip TEXT NOT NULL,
            iface TEXT NOT NULL,
            agent_id TEXT NOT NULL REFERENCES agents(agent_id),
            granted_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            revoked_at REAL,
            revoke_reason TEXT
        );
        CREATE INDEX leases_ip ON leases(ip) WHERE revoked_at IS NULL;
        CREATE INDEX leases_agent ON leases(agent_id) WHERE revoked_at IS NULL;
        CREATE TABLE policy_bundles (
            version INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            key_id TEXT,
            published_at REAL NOT NULL,
            blob BLOB NOT NULL
        );
        CREATE TABLE policy_active (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL REFERENCES policy_bundles(version),
            activated_at REAL NOT NULL
        );
        CREATE TABLE generations (
            domain TEXT PRIMARY KEY,
            generation INTEGER NOT NULL
        );
        """
    )


def _quarantines(conn: sqlite3.Connection) -> None:
    _execute_script(
        conn,
        """
        CREATE TABLE quarantines (
            agent_id TEXT PRIMARY KEY REFERENCES agents(agent_id) ON DELETE CASCADE,
            since REAL NOT NULL,
            reason TEXT NOT NULL
        );
        """,
    )


def _api_keys(conn: sqlite3.Connection) -> None:
    _execute_script(
        conn,
        """
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL REFERENCES agents(agent_id) ON DELETE CASCADE,
            hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            revoked_at REAL,
            label TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX api_keys_agent ON api_keys(agent_id);
        """,
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "identity registry and policy bundles", _identity_and_policy),
    Migration(2, "quarantined agents", _quarantines),
    Migration(3, "hashed API keys of agents", _api_keys),
    Migration(4, "quota counters, holds and buckets", create_tables),
    Migration(5, "provider credentials and placeholders", credential_tables),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
