"""How streamed answers are framed: server-sent events, JSON lines, streamed JSON arrays.

Each decoder is fed bytes as they arrive, in pieces of any size, and returns the
``Frame``s those bytes complete: an SSE event's data (OpenAI, Anthropic, Gemini with
``alt=sse``, MCP), one line of NDJSON (Ollama), one element of a JSON array written
element by element (Gemini's ``streamGenerateContent`` without ``alt=sse``). Feeding a
stream whole or byte by byte gives the same frames.

Memory is bounded by ``max_event_bytes`` per frame: a longer frame keeps only its first
and last ``edge_bytes`` (``Clip``) and is marked ``oversize``; its reader looks for what
it needs (usage sits at the end of a provider's JSON) in those edges. ``close`` says
whether the stream ended inside a frame, which makes the answer truncated.

SSE follows the WHATWG HTML "server-sent events" parsing rules: lines end in CRLF, LF or
CR; ``data`` lines join with LF; comments and ``id``/``retry`` are ignored; an event is
dispatched at a blank line, and one the stream ends in is not dispatched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gatewayd.errors import ParseError

_EOL = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"
# Outside a string, the bytes that change a JSON value's nesting; inside one, its end.
_STRUCTURE = re.compile(rb'["{}\[\]]')
_STRING_STOP = re.compile(rb'["\\]')
_SPACE = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed message of a stream.

    ``name`` is the SSE event name or the event-stream event type; ``data`` the
    message's payload — whole, or its first bytes when ``oversize``, with ``tail`` its
    last. ``kind`` is ``"event"``, or ``"exception"`` for an AWS event-stream exception.
    """

    name: str | None
    data: bytes
    tail: bytes = b""
    oversize: bool = False
    kind: str = "event"


class Clip:
    """The bytes of one run (a line, an event, a body) within a bound: all of them up to
    ``limit``; past it, the first and the last ``edge`` bytes."""

    def __init__(self, limit: int, edge: int) -> None:
        if limit < 2 * edge:
            raise ValueError("the limit must hold both edges")
        self._limit = limit
        self._edge = edge
        self._buf = bytearray()
        self.head = b""
        self.over = False
        self.size = 0

    def add(self, data: bytes | memoryview) -> None:
        if not data:
            return
        self.size += len(data)
        if self.over:
            if len(data) >= self._edge:
                self._buf[:] = data[len(data) - self._edge:]
                return
            self._buf += data
            if len(self._buf) > 2 * self._edge:
                del self._buf[:len(self._buf) - self._edge]
            return
        self._buf += data
        if len(self._buf) > self._limit:
            self.over = True
            self.head = bytes(self._buf[:self._edge])
            del self._buf[:len(self._buf) - self._edge]

    def add_clipped(self, head: bytes, tail: bytes, size: int) -> None:
        """A run of ``size`` bytes of which only the first and last are known."""
        self.add(head)
        if not self.over:
            self.over = True
            self.head = bytes(self._buf[:self._edge])
        self._buf[:] = tail[-self._edge:]
        self.size += max(0, size - len(head))

    @property
    def whole(self) -> bytes:
        """Every byte (only when not ``over``)."""
        return bytes(self._buf)

    @property
    def tail(self) -> bytes:
        return bytes(self._buf[-self._edge:])

    def frame(self, name: str | None = None) -> Frame:
        if self.over:
            return Frame(name, self.head, self.tail, oversize=True)
        return Frame(name, bytes(self._buf))

    def clear(self) -> None:
        self._buf.clear()
        self.head = b""
        self.over = False
        self.size = 0


class SseDecoder:
    """Server-sent events, from bytes as they arrive."""

    def __init__(self, max_event_bytes: int, edge_bytes: int) -> None:
        self._line = Clip(max_event_bytes, edge_bytes)
        self._data = Clip(max_event_bytes, edge_bytes)
        self._has_data = False
        self._name: str | None = None
        self._after_cr = False
        self._first = True

    def feed(self, chunk: bytes) -> list[Frame]:
        out: list[Frame] = []
        view = memoryview(chunk)
        i, n = 0, len(chunk)
        if self._after_cr and n:
            self._after_cr = False
            if chunk[0] == 0x0A:
                i = 1
        while i < n:
            found = _EOL.search(chunk, i)
            if found is None:
                self._line.add(view[i:])
                break
            j = found.start()
            self._line.add(view[i:j])
            self._end_line(out)
            if chunk[j] == 0x0D:
                if j + 1 == n:
                    self._after_cr = True
                    i = n
                else:
                    i = j + 2 if chunk[j + 1] == 0x0A else j + 1
            else:
                i = j + 1
        return out

    def close(self) -> bool:
        """End of stream: whether it ended inside an event (not dispatched)."""
        return self._has_data or self._line.size > 0 or self._name is not None

    def _end_line(self, out: list[Frame]) -> None:
        line = self._line
        over, size = line.over, line.size
        head = line.head if over else line.whole
        tail = line.tail if over else b""
        line.clear()
        if self._first:
            self._first = False
            if head.startswith(_BOM):
                head = head[len(_BOM):]
                size -= len(_BOM)
        if size == 0:
            if self._has_data:
                out.append(self._data.frame(self._name))
            self._data.clear()
            self._has_data = False
            self._name = None
            return
        if head.startswith(b":"):
            return
        colon = head.find(b":")
        name, value = (head, b"") if colon < 0 else (head[:colon], head[colon + 1:])
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            if self._has_data:
                self._data.add(b"\n")
            self._has_data = True
            if over:
                self._data.add_clipped(value, tail, size)
            else:
                self._data.add(value)
        elif name == b"event" and colon >= 0:
            self._name = value[:64].decode("utf-8", "replace")


class LineDecoder:
    """JSON lines (NDJSON): one frame per non-blank line."""

    def __init__(self, max_event_bytes: int, edge_bytes: int) -> None:
        self._line = Clip(max_event_bytes, edge_bytes)

    def feed(self, chunk: bytes) -> list[Frame]:
        out: list[Frame] = []
        view = memoryview(chunk)
        i = 0
        while i < len(chunk):
            j = chunk.find(b"\n", i)
            if j < 0:
                self._line.add(view[i:])
                break
            self._line.add(view[i:j])
            self._end_line(out)
            i = j + 1
        return out

    def close(self) -> list[Frame]:
        """The last line, when the stream does not end with a newline."""
        out: list[Frame] = []
        self._end_line(out)
        return out

    def _end_line(self, out: list[Frame]) -> None:
        frame = self._line.frame()
        self._line.clear()
        if frame.oversize or frame.data.strip(_SPACE):
            out.append(frame)


class JsonArrayDecoder:
    """The elements of a JSON array written element by element, each as it completes.

    Only the nesting is tracked (strings skipped, escapes honoured); each element is
    parsed by its reader. Scalars in the array are skipped: the streams read here are
    arrays of objects. Bytes other than white space before the array are an error.
    """

    def __init__(self, max_event_bytes: int, edge_bytes: int) -> None:
        self._element = Clip(max_event_bytes, edge_bytes)
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._started = False
        self._ended = False

    def feed(self, chunk: bytes) -> list[Frame]:
        out: list[Frame] = []
        if self._ended:
            return out
        i = self._open(chunk) if not self._started else 0
        if i < 0:
            return out
        view = memoryview(chunk)
        n = len(chunk)
        start = 0 if self._depth >= 2 else -1
        while i < n:
            if self._escape or self._in_string:
                i = self._skip_string(chunk, i)
                continue
            found = _STRUCTURE.search(chunk, i)
            if found is None:
                break
            k = found.start()
            byte = chunk[k]
            i = k + 1
            if byte == 0x22:  # '"'
                self._in_string = True
            elif byte in (0x7B, 0x5B):  # '{' '['
                self._depth += 1
                if self._depth == 2:
                    start = k
            else:
                self._depth -= 1
                if self._depth == 1 and start >= 0:
                    self._element.add(view[start:i])
                    out.append(self._element.frame())
                    self._element.clear()
                    start = -1
                elif self._depth == 0:
                    self._ended = True
                    return out
        if start >= 0 and self._depth >= 2:
            self._element.add(view[start:])
        return out

    def _open(self, chunk: bytes) -> int:
        """Where the array's content starts in the first bytes that are not white
        space (-1: only white space so far)."""
        i = len(chunk) - len(chunk.lstrip(_SPACE))
        if i == len(chunk):
            return -1
        if chunk[i] != 0x5B:  # '['
            raise ParseError("a streamed JSON array does not start with '['")
        self._started = True
        self._depth = 1
        return i + 1

    def _skip_string(self, chunk: bytes, i: int) -> int:
        """Inside a string from ``i``: where reading goes on (past its end, or the chunk's)."""
        if self._escape:
            self._escape = False
            return i + 1
        found = _STRING_STOP.search(chunk, i)
        if found is None:
            return len(chunk)
        k = found.start()
        if chunk[k] == 0x5C:  # a backslash escapes the next byte, maybe in the next chunk
            self._escape = k + 1 == len(chunk)
            return k + 2
        self._in_string = False
        return k + 1

    def close(self) -> bool:
        """End of stream: whether the array was left open."""
        return not self._ended
