"""How a body becomes the text that is scanned: one buffer, cut into segments.

A body that is JSON is scanned as its decoded strings, so that escaping (``\\u0041KIA``,
``\\/``) cannot hide a match: every object key, string value and large integer (a card or
phone number sent as a number) becomes a *segment*, and the segments are laid end to end
in one buffer for one pass of the engine. A NUL byte separates segments; between an
object key and its value goes ``": "`` instead, so that a member reads as it would in text
(``api_key": "...``) and rules written for ``"api_key": "..."`` in a prompt also match the
member in a tool call's arguments. Any other body is one segment: its bytes as they are.

A match is placed back into its segment: the JSON path of the string (``("messages", 0,
"content")``; ``None`` for a text body) and the span in that string, in code points (the
buffer holds UTF-8). Redaction works in the other direction: replace spans inside the
segments, put the strings back at their paths, and encode the document again, so the body
stays valid JSON.

Parsing uses orjson and falls back to the standard library for what orjson refuses but JSON
allows (integers beyond 64 bits, lone surrogate escapes); anything else is ``ParseError``,
whose message says where the body is malformed and never what it contains.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final, Literal

import orjson

from gatewayd.errors import ParseError

JsonPath = tuple[str | int, ...]
Parser = Literal["orjson", "json"]

TEXT: Final = 0  # a whole non-JSON body
STRING: Final = 1  # a JSON string value
KEY: Final = 2  # a JSON object key
NUMBER: Final = 3  # a JSON integer, as its decimal digits
DECODED: Final = 4  # the decoded content of an encoded run

SEP: Final = b"\x00"
MEMBER: Final = b'": "'
MIN_SCANNED_INT: Final = 100_000  # smaller integers cannot be any class's value
MAX_EMBEDDING: Final = 4  # how deep JSON held in strings (held in strings...) is read


def count_below(values: list[int], x: int) -> int:
    """How many of the sorted ``values`` are below ``x`` (``bisect.bisect_left``).

    Written out because, compiled (gatewayd/compiled.py), this loop compares machine
    integers, where a call to ``bisect`` boxes ``x`` and goes through the generic call path;
    a scan bisects for every candidate.
    """
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def count_at_most(values: list[int], x: int) -> int:
    """How many of the sorted ``values`` are ``x`` or below (``bisect.bisect_right``)."""
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


# Segment and Layout are plain classes, not dataclasses: a JSON body makes one Segment per
# string, and compiled (gatewayd/compiled.py) a plain class's __init__ is compiled too,
# where a dataclass's is generated Python.


class Segment:
    __slots__ = ("ascii", "context_start", "end", "errors", "kind", "path", "start")

    def __init__(self, path: JsonPath | None, kind: int, start: int, end: int,
                 context_start: int, ascii: bool, errors: str) -> None:
        self.path = path
        self.kind = kind
        self.start = start  # in the buffer
        self.end = end
        self.context_start = context_start  # where cues may begin: its member's key, or itself
        self.ascii = ascii
        self.errors = errors  # the codec error handler that maps the bytes back to the text


class Layout:
    __slots__ = ("buf", "document", "embedded", "parser", "segments", "starts")

    def __init__(self, buf: bytes, segments: list[Segment], starts: list[int],
                 document: Any = None, parser: Parser | None = None,
                 embedded: tuple[JsonPath, ...] = ()) -> None:
        self.buf = buf
        self.segments = segments
        self.starts = starts
        self.document = document
        self.parser = parser
        self.embedded = embedded  # strings that held a JSON document, read as one

    def find(self, start: int, end: int) -> int:
        """The index of the segment that holds ``[start, end)``, or -1."""
        i = count_at_most(self.starts, start) - 1
        if i < 0:
            return -1
        seg = self.segments[i]
        return i if start >= seg.start and end <= seg.end else -1

    def chars(self, index: int, start: int, end: int) -> tuple[int, int]:
        """A buffer span as a span in code points of the segment's text."""
        seg = self.segments[index]
        if seg.ascii:
            return start - seg.start, end - seg.start
        lo = len(self.buf[seg.start:start].decode("utf-8", seg.errors))
        return lo, lo + len(self.buf[start:end].decode("utf-8", seg.errors))

    def text(self, index: int) -> str:
        seg = self.segments[index]
        return self.buf[seg.start:seg.end].decode("utf-8", seg.errors)


def text_layout(body: bytes) -> Layout:
    seg = Segment(None, TEXT, 1, 1 + len(body), 1, body.isascii(), "surrogateescape")
    return Layout(SEP + body + SEP, [seg], [1])


def parse_json(body: bytes) -> tuple[Any, Parser]:
    """The document, and which parser read it; ``ParseError`` if it is not JSON.

    The error is raised outside the ``except`` blocks, so that it carries no chained
    exception: the parsers' own keep the whole document (``JSONDecodeError.doc``).
    """
    try:
        return orjson.loads(body), "orjson"
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body), "json"
    except json.JSONDecodeError as err:
        problem = f"{err.msg} at line {err.lineno} column {err.colno}"
    except UnicodeDecodeError as err:
        problem = f"not UTF-8 at byte {err.start}"
    except RecursionError:
        problem = "nested too deeply"
    except ValueError as err:  # e.g. an integer beyond the interpreter's digit limit
        problem = err.__class__.__name__
    raise ParseError(f"body is not valid JSON: {problem}")


def _embedded(value: object) -> Any:
    """The document a string holds (a tool call's ``arguments``), or None."""
    if not isinstance(value, str) or len(value) < 2:
        return None
    head, tail = value[0], value[-1]
    if head not in "{[" or tail not in "}]":
        if not (head.isspace() or tail.isspace()):
            return None  # the common case, decided without copying the string
        head, tail = value.lstrip()[:1], value.rstrip()[-1:]
    if (head, tail) not in (("{", "}"), ("[", "]")):
        return None
    try:
        inner = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return inner if isinstance(inner, dict | list) else None


class _Laying:
    """A JSON layout being built: its buffer's parts, their length so far, its segments."""

    __slots__ = ("parts", "pos", "segments")

    def __init__(self) -> None:
        self.parts = [SEP]
        self.pos = 1
        self.segments: list[Segment] = []

    def put(self, part: bytes) -> None:
        self.parts.append(part)
        self.pos += len(part)

    def segment(self, path: JsonPath, kind: int, text: str, context_start: int | None) -> int:
        """Add ``text`` as a segment whose cues may begin at ``context_start`` (None: at
        itself); its start."""
        data = text.encode("utf-8", "surrogatepass")
        start = self.pos
        end = start + len(data)
        # ASCII if each code point took one byte (a lone surrogate takes three).
        self.segments.append(Segment(path, kind, start, end,
                                     start if context_start is None else context_start,
                                     len(data) == len(text), "surrogatepass"))
        self.parts.append(data)
        self.pos = end
        return start


def json_layout(document: Any, parser: Parser) -> Layout:
    """Every key, string and large integer of ``document``, in document order.

    A string that is itself a JSON object or array (tool-call arguments are) is read as that
    document, to ``MAX_EMBEDDING`` levels, so its escapes cannot hide anything either. The
    walk keeps its own stack (a document may be nested deeper than Python recurses).
    """
    out = _Laying()
    embedded: list[JsonPath] = []
    # The container being walked (its members or elements, its path and its depth of
    # embedding), and the ones it is inside.
    items: Iterator[tuple[Any, Any]] = iter(())
    parent: JsonPath = ()
    depth = 0
    stack: list[tuple[Iterator[tuple[Any, Any]], JsonPath, int]] = []
    # The value to lay out next: its path, its depth of embedding, and where its member's key
    # starts in the buffer (None: it has no key).
    path: JsonPath = ()
    value, value_depth, key_start = document, 0, None
    while True:
        text, kind = None, STRING
        if isinstance(value, str):
            inner = _embedded(value) if value_depth < MAX_EMBEDDING else None
            if inner is None:
                text = value
            else:
                embedded.append(path)
                out.put(SEP)
                value, value_depth, key_start = inner, value_depth + 1, None
        elif (isinstance(value, int) and not isinstance(value, bool)
              and abs(value) >= MIN_SCANNED_INT):
            text, kind = str(value), NUMBER
        if text is not None:
            if key_start is not None:
                out.put(MEMBER)
            out.segment(path, kind, text, key_start)
            out.put(SEP)
        else:
            if key_start is not None:
                out.put(SEP)
            if isinstance(value, dict):
                stack.append((items, parent, depth))
                items, parent, depth = iter(value.items()), path, value_depth
            elif isinstance(value, list):
                stack.append((items, parent, depth))
                items, parent, depth = iter(enumerate(value)), path, value_depth
        # The next member (or element) of the innermost container that has one left.
        item = next(items, None)
        while item is None and stack:
            items, parent, depth = stack.pop()
            item = next(items, None)
        if item is None:
            break
        name, value = item
        path = parent + (name,)  # noqa: RUF005 (compiled, (*parent, name) goes through a list)
        value_depth = depth
        key_start = None
        if isinstance(name, str):
            key_start = out.segment(path, KEY, name, None)
    segments = out.segments
    return Layout(b"".join(out.parts), segments, [s.start for s in segments], document,
                  parser, tuple(embedded))


def is_json(body: bytes, content_type: str | None) -> bool | None:
    """True if the content type says JSON, None if it says nothing and the body looks like it."""
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/json" or media.endswith("+json"):
            return True
        if media:
            return False
    return None if body.lstrip()[:1] in (b"{", b"[") else False


def layout(body: bytes, content_type: str | None) -> Layout:
    """The body as segments: JSON if it is (or claims to be) JSON, else text."""
    verdict = is_json(body, content_type)
    if verdict is False:
        return text_layout(body)
    try:
        document, parser = parse_json(body)
    except ParseError:
        if verdict:
            raise
        return text_layout(body)  # looked like JSON, is not: scan it as it is
    return json_layout(document, parser)


def encode(document: Any, parser: Parser) -> bytes:
    if parser == "orjson":
        return orjson.dumps(document)
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()


def _container(document: Any, path: JsonPath) -> Any:
    node = document
    for part in path[:-1]:
        node = node[part]
    return node


def rewrite_json(body: bytes, lay: Layout, edits: dict[int, bytes]) -> bytes:
    """``body`` with segment ``i`` replaced by the UTF-8 text ``edits[i]``, as JSON again."""
    assert lay.parser is not None
    document, _ = parse_json(body)  # a fresh copy: the scanned document stays as it was
    holder = {"": document}
    root: JsonPath = ("",)
    for path in lay.embedded:  # shallow first: read the strings that hold documents
        parent = _container(holder, root + path)
        parent[(root + path)[-1]] = orjson.loads(parent[(root + path)[-1]])
    keys = []
    for index, data in edits.items():
        seg = lay.segments[index]
        assert seg.path is not None
        text = data.decode("utf-8", "surrogatepass")
        if seg.kind == KEY:
            keys.append((root + seg.path, text))
        else:
            full = root + seg.path
            _container(holder, full)[full[-1]] = text
    for path, text in sorted(keys, key=lambda k: -len(k[0])):  # deepest first
        parent = _container(holder, path)
        members = list(parent.items())
        parent.clear()
        parent.update((text if k == path[-1] else k, v) for k, v in members)
    for path in reversed(lay.embedded):  # deepest first: write them back as strings
        full = root + path
        parent = _container(holder, full)
        parent[full[-1]] = json.dumps(parent[full[-1]], ensure_ascii=True,
                                      separators=(",", ":"))
    return encode(holder[""], lay.parser)
