"""NFQUEUE statistics from ``/proc/net/netfilter/nfnetlink_queue``.

One line per bound queue: ``queue_number peer_portid queue_total copy_mode copy_range
queue_dropped user_dropped id_sequence 1``. ``parse_queue_stats`` is pure;
``read_queue_stats`` reads the file of the calling thread's network namespace (through
``/proc/thread-self``, so a thread that entered another namespace sees that one's queues).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gatewayd.errors import ParseError

QUEUE_STATS_PATH = Path("/proc/thread-self/net/netfilter/nfnetlink_queue")
_FIELDS = 9


@dataclass(frozen=True)
class QueueStats:
    """One queue: who listens, how many packets wait, and how many were lost."""

    queue_number: int
    # Netlink port id of the listening socket (0: nobody).
    peer_portid: int
    # Packets waiting for a verdict now.
    queue_total: int
    copy_mode: int
    copy_range: int
    # Dropped because the queue was full (queue_max_len).
    queue_dropped: int
    # Dropped because the listener's netlink socket could not take them.
    user_dropped: int
    # Packet id of the last packet queued: how many went through.
    id_sequence: int

    @property
    def drops(self) -> int:
        return self.queue_dropped + self.user_dropped


def parse_queue_stats(text: str) -> dict[int, QueueStats]:
    """Queues by number; raises ``ParseError`` on a line that is not nine integers."""
    stats: dict[int, QueueStats] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        words = line.split()
        if len(words) != _FIELDS:
            raise ParseError(f"nfnetlink_queue line {number}: expected {_FIELDS} fields: {line!r}")
        try:
            values = [int(w) for w in words]
        except ValueError:
            raise ParseError(f"nfnetlink_queue line {number}: not integers: {line!r}") from None
        if any(v < 0 for v in values[:8]):
            raise ParseError(f"nfnetlink_queue line {number}: negative counter: {line!r}")
        q = QueueStats(*values[:8])
        stats[q.queue_number] = q
    return stats


def read_queue_stats(path: Path = QUEUE_STATS_PATH) -> dict[int, QueueStats]:
    """The live queues; empty when the file is absent (nfnetlink_queue not loaded)."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return {}
    return parse_queue_stats(text)
