"""The first bytes of TCP streams the engine reads: ClientHellos of pending flows, DNS over TCP.

The engine sees a pending flow's client segments one at a time (they are queued until the
ClientHello is complete) and a DNS-over-TCP flow's answer segments the same way. ``Streams``
puts their payloads back in order by sequence number, from the byte after the SYN:

* a segment at the next expected byte is appended (a retransmission that overlaps what
  was read adds only its new bytes; one wholly read before adds nothing);
* a segment beyond it leaves a gap: ``GAP`` is returned and nothing is kept, so the caller
  can drop it and let the client send it again in order.

Bounded: at most ``max_flows`` streams (the oldest go first), ``max_bytes`` per stream
(beyond it ``feed`` returns ``TOO_LONG``), and a stream unfed for ``idle_s`` is forgotten.
Pure: the caller passes the time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from enum import Enum
from typing import Final

SEQ_MOD: Final = 1 << 32


class Feed(Enum):
    UNKNOWN = "unknown"  # no stream was started for this key (or it was forgotten)
    GAP = "gap"  # the segment starts after the next expected byte
    TOO_LONG = "too-long"  # the stream grew past max_bytes


class _Stream:
    __slots__ = ("data", "next_seq", "touched")

    def __init__(self, next_seq: int, now: float) -> None:
        self.data = bytearray()
        self.next_seq = next_seq
        self.touched = now


class Streams:
    def __init__(self, *, max_flows: int, max_bytes: int, idle_s: float) -> None:
        self.max_flows = max_flows
        self.max_bytes = max_bytes
        self.idle_s = idle_s
        self._streams: OrderedDict[Hashable, _Stream] = OrderedDict()

    def start(self, key: Hashable, isn: int, now: float) -> None:
        """A stream whose SYN (or SYN-ACK) carried sequence number ``isn``."""
        self._streams.pop(key, None)
        if len(self._streams) >= self.max_flows:
            self._streams.popitem(last=False)
        self._streams[key] = _Stream((isn + 1) % SEQ_MOD, now)

    def feed(self, key: Hashable, seq: int, data: bytes, now: float) -> bytes | Feed:
        """Add a segment; the stream's bytes so far, or why they could not be added."""
        stream = self._streams.get(key)
        if stream is None or now - stream.touched > self.idle_s:
            self._streams.pop(key, None)
            return Feed.UNKNOWN
        stream.touched = now
        ahead = (seq - stream.next_seq) % SEQ_MOD
        if ahead and ahead < SEQ_MOD // 2:
            return Feed.GAP
        behind = (stream.next_seq - seq) % SEQ_MOD
        fresh = data[behind:] if behind < len(data) else b""
        if len(stream.data) + len(fresh) > self.max_bytes:
            self._streams.pop(key, None)
            return Feed.TOO_LONG
        stream.data += fresh
        stream.next_seq = (stream.next_seq + len(fresh)) % SEQ_MOD
        return bytes(stream.data)

    def consume(self, key: Hashable, count: int) -> None:
        """The first ``count`` bytes were read whole (a DNS message): keep only the rest."""
        stream = self._streams.get(key)
        if stream is not None:
            del stream.data[:count]

    def forget(self, key: Hashable) -> None:
        self._streams.pop(key, None)

    def expire(self, now: float) -> list[Hashable]:
        """Forget the streams unfed for ``idle_s``; returns their keys."""
        stale = [k for k, s in self._streams.items() if now - s.touched > self.idle_s]
        for key in stale:
            del self._streams[key]
        return stale

    def __contains__(self, key: Hashable) -> bool:
        return key in self._streams

    def __len__(self) -> int:
        return len(self._streams)
