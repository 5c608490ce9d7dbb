"""A match says where a class was found, never what was found.

``Match`` carries the class, the confidence, the rule, the JSON path of the string (``None``
for a text body) and the span in that string; for a match inside an encoded run, the span is
the run's and ``inner`` the span in its decoded text. It holds no part of the value, so its
``repr``, its ``str`` and anything built from them (logs, exceptions, audit events) cannot
leak one. The value is read back, when an action needs it (``hash-log``), from the payload:
``Match.value(body)`` or ``Findings.value(match)``.

Object keys are payload too: when a key itself matched, every path through it shows ``*``
in its place, and the match in the key has ``in_key`` set.

A ``Match`` is an immutable record (a named tuple: a scan makes one per value found, and a
tuple is made four times faster than a frozen dataclass).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from gatewayd.dlp.carriers import decode
from gatewayd.dlp.segments import JsonPath, Layout, json_layout, parse_json, text_layout

MASKED_KEY: Final = "*"


class Match(NamedTuple):
    dlp_class: str
    confidence: float
    span: tuple[int, int]  # in code points of the string at ``path``
    path: JsonPath | None  # None: the body is text, ``span`` is in the decoded body
    rule: str
    encoding: str | None = None  # "base64", "hex" or "url": ``span`` is the encoded run's
    inner: tuple[int, int] | None = None  # the span in the decoded run
    in_key: bool = False
    segment: int = 0  # which scanned string (for ``value``; not in the repr)

    def __repr__(self) -> str:
        return (f"Match(dlp_class={self.dlp_class!r}, confidence={self.confidence!r},"
                f" span={self.span!r}, path={self.path!r}, rule={self.rule!r},"
                f" encoding={self.encoding!r}, inner={self.inner!r}, in_key={self.in_key!r})")

    def value(self, body: bytes) -> str:
        """The matched text, read from ``body`` (the request body this match was found in)."""
        lay = text_layout(body) if self.path is None else json_layout(*parse_json(body))
        return extract(lay, self)

    def pointer(self) -> str | None:
        """The path as a JSON Pointer (RFC 6901), for audit events."""
        if self.path is None:
            return None
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in self.path)


def new_match(dlp_class: str, confidence: float, span: tuple[int, int], path: JsonPath | None,
              rule: str, encoding: str | None, inner: tuple[int, int] | None, in_key: bool,
              segment: int) -> Match:
    """``Match(...)`` without the named tuple's ``__new__``, which is generated Python code
    (so interpreted even where the scanner is compiled): a scan makes one per value."""
    return tuple.__new__(Match, (dlp_class, confidence, span, path, rule, encoding, inner,
                                 in_key, segment))


def extract(lay: Layout, match: Match) -> str:
    text = lay.text(match.segment)
    start, end = match.span
    piece = text[start:end]
    if match.encoding is None or match.inner is None:
        return piece
    decoded = decode(piece.encode("utf-8", "surrogatepass"), match.encoding)
    if decoded is None:  # the body is not the one the match was found in
        raise ValueError("the match does not belong to this body")
    inner_start, inner_end = match.inner
    return decoded.decode("utf-8")[inner_start:inner_end]
