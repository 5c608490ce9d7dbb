"""The credential tables, for the store's migrations.

``credentials`` holds provider keys sealed under the data key (``sealed``; never the
text) and the data key's id; ``credential_placeholders`` holds the hashes of the
placeholders agents are given. Placeholders go with their agent when it is removed
(``ON DELETE CASCADE``); a credential stays while placeholders name it (it is revoked,
never deleted: its id names quota counters and audit records).

``create_tables`` runs in the caller's transaction and never commits; every statement is
``IF NOT EXISTS``. This module imports nothing of Clawgress, so the store's migrations can
import it without a cycle.
"""

from __future__ import annotations

import sqlite3

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS credentials (
        credential_id TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        hosts TEXT NOT NULL,
        header TEXT NOT NULL,
        template TEXT NOT NULL,
        sealed BLOB NOT NULL,
        data_key_id TEXT NOT NULL,
        allow_cleartext INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        rotated_at REAL,
        revoked_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS credential_placeholders (
        placeholder_id TEXT PRIMARY KEY,
        credential_id TEXT NOT NULL REFERENCES credentials(credential_id),
        agent_id TEXT NOT NULL REFERENCES agents(agent_id) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL,
        label TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE INDEX IF NOT EXISTS credential_placeholders_agent
        ON credential_placeholders(agent_id)""",
    """CREATE INDEX IF NOT EXISTS credential_placeholders_credential
        ON credential_placeholders(credential_id)""",
)

TABLES = ("credentials", "credential_placeholders")


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the credential tables if missing, in the caller's transaction."""
    for statement in SCHEMA:
        conn.execute(statement)
