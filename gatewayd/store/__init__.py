"""The embedded store: one SQLite database (WAL) for agents, leases and policy bundles.

IO boundary: this package is the only code that opens the database. It is safe for one
writer and many readers across processes: WAL journaling, a busy timeout, and every write
in a ``BEGIN IMMEDIATE`` transaction. The schema is versioned; migrations run on open.
Each table family has a *generation* counter bumped on every write so that a long-running
reader (the data plane) can tell cheaply whether it must reload.
"""

from gatewayd.store.db import Store, open_store
from gatewayd.store.migrations import MIGRATIONS, SCHEMA_VERSION

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store", "open_store"]
