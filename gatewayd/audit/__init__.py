"""The audit log: one event per decision, appended to a local log.

``events`` builds events (pure: values in, a JSON-ready mapping out). ``log`` is the IO:
an append-only file of JSON lines, opened with ``O_APPEND``, flushed per event and synced
to disk at a bounded interval. Hash chaining, shipping to a SIEM and the write-ahead queue
for an unavailable sink build on this.
"""

from gatewayd.audit.events import AuditEvent, new_event_id
from gatewayd.audit.log import AuditLog

__all__ = ["AuditEvent", "AuditLog", "new_event_id"]
