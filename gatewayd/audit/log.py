"""The local append-only audit log (JSON lines)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

import orjson

from gatewayd.audit.events import AuditEvent
from gatewayd.errors import ClawgressError

# Events are written (one write() each, so lines never interleave) as they happen, and the
# file is synced to disk at most this long after an event.
DEFAULT_SYNC_INTERVAL_S = 1.0


class AuditLog:
    def __init__(self, path: Path, *, sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S) -> None:
        self.path = path
        self.sync_interval_s = sync_interval_s
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise ClawgressError(f"audit log {path}: cannot open: {exc.strerror}") from None
        self._dirty = False
        self._last_sync = time.monotonic()
        self.written = 0

    def append(self, event: AuditEvent) -> None:
        line = orjson.dumps(event.as_dict(), default=str,
                            option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        os.write(self._fd, line)
        self.written += 1
        self._dirty = True
        if time.monotonic() - self._last_sync >= self.sync_interval_s:
            self.sync()

    def sync(self) -> None:
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
