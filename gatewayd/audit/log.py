"""The local append-only audit log (JSON lines)."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import orjson

from gatewayd.audit.events import AuditEvent
from gatewayd.errors import ClawgressError

# Events are encoded as they happen and written in batches: ``flush`` (the engine calls it
# after each batch of packets it decided) writes every pending line with one write(), so
# lines never interleave and a burst costs one system call. ``fsync`` forces what was
# written to disk; the engine calls it every second from a worker thread, so the disk
# never stalls a verdict.
# Pending lines are written at the latest when this many have accumulated.
MAX_PENDING = 256


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise ClawgressError(f"audit log {path}: cannot open: {exc.strerror}") from None
        self._pending: list[bytes] = []
        self._dirty = False
        self.written = 0

    def append(self, event: AuditEvent) -> None:
        """Queue one event; it is written by the next ``flush`` (or when many are pending)."""
        self._pending.append(orjson.dumps(
            event.as_dict(), default=str,
            option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
        ))
        if len(self._pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Write every pending event (one write)."""
        if self._pending:
            data = b"".join(self._pending)
            count = len(self._pending)
            self._pending.clear()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            self.written += count
            self._dirty = True

    def fsync(self) -> None:
        """Force what was written to disk. Safe to call from another thread than the one
        appending: it touches no pending state."""
        if self._dirty and self._fd >= 0:
            self._dirty = False
            os.fsync(self._fd)

    def sync(self) -> None:
        """``flush``, then ``fsync``."""
        self.flush()
        self.fsync()

    def close(self) -> None:
        if self._fd >= 0:
            self.flush()
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
