"""AWS event-stream framing: how Bedrock streams ConverseStream and
InvokeModelWithResponseStream answers (``application/vnd.amazon.eventstream``).

A message is binary: a 12-byte prelude (total length, headers length, CRC-32 of those
eight bytes), typed headers, a payload, and a CRC-32 of everything before it. Headers
name what the payload is: ``:message-type`` (``event`` or ``exception``),
``:event-type`` (``messageStart``, ``contentBlockDelta``, ``metadata``, ``chunk``...) or
``:exception-type``. The payload is JSON.

``EventStreamDecoder`` is fed bytes as they arrive and returns the ``Frame``s they
complete, checking both CRCs; a bad CRC, length or header raises ``ParseError``. A message
longer than ``max_event_bytes`` is not held: its headers are read, its payload passes
through keeping its first and last ``edge_bytes``, and its CRC is computed as it goes.
"""

from __future__ import annotations

import struct
import zlib

from gatewayd.ai.framing import Clip, Frame
from gatewayd.errors import ParseError

PRELUDE = 12
TRAILER = 4
# The format's own limits: 16 MiB of payload, 128 KiB of headers.
MAX_MESSAGE = 16 * 1024 * 1024 + 128 * 1024 + PRELUDE + TRAILER
MAX_HEADERS = 128 * 1024
# Header value types: their fixed sizes, or -2 for a 2-byte length then the bytes.
_VALUE_SIZES = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 6: -2, 7: -2, 8: 8, 9: 16}
_STRING = 7


def parse_headers(data: bytes) -> dict[str, str]:
    """The string-valued headers of a message (others are checked and skipped)."""
    out: dict[str, str] = {}
    i, n = 0, len(data)
    while i < n:
        size = data[i]
        name_end = i + 1 + size
        if size == 0 or name_end >= n:
            raise ParseError("an event-stream header name runs past the headers")
        name = data[i + 1:name_end].decode("utf-8", "replace")
        kind = data[name_end]
        width = _VALUE_SIZES.get(kind)
        if width is None:
            raise ParseError(f"event-stream header {name!r} has unknown type {kind}")
        i = name_end + 1
        if width == -2:
            if i + 2 > n:
                raise ParseError("an event-stream header value runs past the headers")
            (width,) = struct.unpack_from(">H", data, i)
            i += 2
            if kind == _STRING and i + width <= n:
                out[name] = data[i:i + width].decode("utf-8", "replace")
        if i + width > n:
            raise ParseError("an event-stream header value runs past the headers")
        i += width
    return out


class EventStreamDecoder:
    """AWS event-stream messages, from bytes as they arrive."""

    def __init__(self, max_event_bytes: int, edge_bytes: int) -> None:
        self._max = max_event_bytes
        self._edge = edge_bytes
        self._buf = bytearray()
        # A message too long to hold: what is left of it, its running CRC, headers, payload.
        self._left = 0
        self._crc = 0
        self._headers: dict[str, str] = {}
        self._payload: Clip | None = None
        self._trailer = bytearray()
        self._error: ParseError | None = None

    def feed(self, chunk: bytes) -> list[Frame]:
        """The messages ``chunk`` completes. An error after some of them is raised by the
        next call, so that the frames before it are the same however the bytes came."""
        if self._error is not None:
            raise self._error
        out: list[Frame] = []
        try:
            self._feed(chunk, out)
        except ParseError as exc:
            if not out:
                raise
            self._error = exc
        return out

    def _feed(self, chunk: bytes, out: list[Frame]) -> None:
        if self._payload is not None:
            chunk = self._pass_through(chunk, out)
        self._buf += chunk
        while len(self._buf) >= PRELUDE and self._payload is None:
            total, header_size, prelude_crc = struct.unpack_from(">III", self._buf, 0)
            if zlib.crc32(self._buf[:8]) != prelude_crc:
                raise ParseError("event-stream prelude CRC mismatch")
            if total < PRELUDE + TRAILER + header_size or header_size > MAX_HEADERS \
                    or total > MAX_MESSAGE:
                raise ParseError(f"event-stream message length {total} (headers"
                                 f" {header_size}) is impossible")
            if total <= self._max:
                if len(self._buf) < total:
                    break
                message = bytes(self._buf[:total])
                del self._buf[:total]
                (crc,) = struct.unpack_from(">I", message, total - TRAILER)
                if zlib.crc32(message[:-TRAILER]) != crc:
                    raise ParseError("event-stream message CRC mismatch")
                headers = parse_headers(message[PRELUDE:PRELUDE + header_size])
                out.append(_frame(headers, message[PRELUDE + header_size:-TRAILER]))
                continue
            if len(self._buf) < PRELUDE + header_size:
                break
            start = bytes(self._buf[:PRELUDE + header_size])
            self._headers = parse_headers(start[PRELUDE:])
            self._crc = zlib.crc32(start)
            self._left = total - len(start) - TRAILER
            self._payload = Clip(2 * self._edge, self._edge)
            self._trailer.clear()
            rest = bytes(self._buf[len(start):])
            self._buf.clear()
            self._buf += self._pass_through(rest, out)

    def _pass_through(self, chunk: bytes, out: list[Frame]) -> bytes:
        """Feed an oversize message's payload and trailer; the bytes after it."""
        assert self._payload is not None
        take = min(self._left, len(chunk))
        if take:
            piece = chunk[:take]
            self._payload.add(piece)
            self._crc = zlib.crc32(piece, self._crc)
            self._left -= take
        rest = chunk[take:]
        if self._left:
            return b""
        need = TRAILER - len(self._trailer)
        self._trailer += rest[:need]
        rest = rest[need:]
        if len(self._trailer) < TRAILER:
            return b""
        (crc,) = struct.unpack(">I", self._trailer)
        if crc != self._crc:
            raise ParseError("event-stream message CRC mismatch")
        payload = self._payload
        self._payload = None
        frame = _frame(self._headers, payload.head or payload.whole)
        out.append(Frame(frame.name, frame.data, payload.tail, oversize=True, kind=frame.kind))
        return rest

    def close(self) -> bool:
        """End of stream: whether it ended inside a message."""
        if self._error is not None:
            raise self._error
        return bool(self._buf) or self._payload is not None


def _frame(headers: dict[str, str], payload: bytes) -> Frame:
    kind = headers.get(":message-type", "event")
    if kind == "exception":
        return Frame(headers.get(":exception-type"), payload, kind="exception")
    if kind == "error":
        return Frame(headers.get(":error-code"), payload, kind="exception")
    return Frame(headers.get(":event-type"), payload)
