"""What a scan found, and the mechanics the actions need: values, keyed hashes, redaction.

``Findings`` is the result of ``Scanner.scan``: the matches, whether the scan was complete
(a bound can stop it: see ``limit``), and, out of sight of ``repr``, the scanned layout that
``value``, ``fingerprint`` and ``redact`` read. ``redact`` replaces each span of the chosen
classes with ``[REDACTED:<class>]`` and returns the new body: for JSON, inside the decoded
strings, re-encoded, so the body stays valid JSON (its length changes: the caller sets
``Content-Length``). ``fingerprint`` is the HMAC-SHA-256 of a value under the gateway's key,
for ``hash-log`` audit events; ``records`` are those events' DLP fields, with no value in them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Final

from gatewayd.dlp.match import Match, extract
from gatewayd.dlp.segments import TEXT, Layout, rewrite_json

MIN_KEY_BYTES: Final = 16


def class_under(dlp_class: str, prefixes: Iterable[str]) -> bool:
    """Dotted classes: ``secrets`` covers ``secrets.aws.access_key_id``."""
    return any(dlp_class == p or dlp_class.startswith(p + ".") for p in prefixes)


def redaction_marker(dlp_class: str) -> bytes:
    return f"[REDACTED:{dlp_class}]".encode()


@dataclass(frozen=True, slots=True)
class Findings:
    matches: tuple[Match, ...]
    complete: bool = True
    limit: str | None = None  # the bound that stopped the scan: "hits", "carriers", "decoded"
    body: bytes = field(default=b"", repr=False, compare=False)
    layout: Layout | None = field(default=None, repr=False, compare=False)
    placed: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.matches)

    @property
    def classes(self) -> tuple[str, ...]:
        """The distinct classes found, sorted (what policy's ``dlp_classes`` takes)."""
        return tuple(sorted({m.dlp_class for m in self.matches}))

    def of(self, prefixes: Iterable[str]) -> tuple[Match, ...]:
        wanted = tuple(prefixes)
        return tuple(m for m in self.matches if class_under(m.dlp_class, wanted))

    def value(self, match: Match) -> str:
        """The matched text (for a keyed hash; never for a log)."""
        if self.layout is None:
            return match.value(self.body)
        return extract(self.layout, match)

    def fingerprint(self, match: Match, key: bytes) -> str:
        """HMAC-SHA-256 of the value under ``key`` (the gateway's), as hex."""
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a hash-log key has at least {MIN_KEY_BYTES} bytes")
        data = self.value(match).encode("utf-8", "surrogatepass")
        return hmac.new(key, data, hashlib.sha256).hexdigest()

    def records(self, matches: Iterable[Match] | None = None, *,
                key: bytes | None = None) -> list[dict[str, Any]]:
        """Audit fields per match: class, rule, confidence, where, length; ``hmac`` if keyed."""
        out = []
        for m in self.matches if matches is None else matches:
            record: dict[str, Any] = {
                "class": m.dlp_class, "rule": m.rule, "confidence": round(m.confidence, 3),
                "path": m.pointer(), "span": list(m.span), "length": m.span[1] - m.span[0],
            }
            if m.encoding is not None:
                record["encoding"] = m.encoding
            if m.in_key:
                record["in_key"] = True
            if key is not None:
                record["hmac"] = self.fingerprint(m, key)
            out.append(record)
        return out

    def redact(self, prefixes: Iterable[str] | None = None) -> bytes:
        """The body with every match of ``prefixes`` (all, if None) replaced by its marker."""
        wanted = None if prefixes is None else tuple(prefixes)
        chosen = [(span, m) for span, m in zip(self.placed, self.matches, strict=True)
                  if wanted is None or class_under(m.dlp_class, wanted)]
        lay = self.layout
        if not chosen or lay is None:
            return self.body
        by_segment: dict[int, list[tuple[int, int, str]]] = {}
        for (start, end), m in chosen:
            by_segment.setdefault(m.segment, []).append((start, end, m.dlp_class))
        edits: dict[int, bytes] = {}
        for index, spans in by_segment.items():
            seg = lay.segments[index]
            edits[index] = _replace(lay.buf, seg.start, seg.end, spans)
        if lay.segments[0].kind == TEXT:
            return edits[0]
        return rewrite_json(self.body, lay, edits)


_FIELDS: Final = tuple(f.name for f in fields(Findings))


def new_findings(matches: tuple[Match, ...], complete: bool, limit: str | None, body: bytes,
                 layout: Layout, placed: tuple[tuple[int, int], ...]) -> Findings:
    """``Findings(...)`` without the dataclass's ``__init__``, which is generated Python code
    (so interpreted even where the scanner is compiled): a scan makes one. The fields are
    set as that ``__init__`` sets them on a frozen dataclass."""
    findings: Findings = Findings.__new__(Findings)
    for name, value in zip(_FIELDS, (matches, complete, limit, body, layout, placed),
                           strict=True):
        object.__setattr__(findings, name, value)
    return findings


def _replace(buf: bytes, lo: int, hi: int, spans: list[tuple[int, int, str]]) -> bytes:
    """``buf[lo:hi]`` with the (merged) spans replaced by markers."""
    spans.sort(key=lambda s: (s[0], -s[1]))
    out = bytearray()
    pos = lo
    cur_start, cur_end, cur_class = spans[0]
    for start, end, dlp_class in spans[1:]:
        if start < cur_end:  # overlapping spans become one marker (the first's class)
            cur_end = max(cur_end, end)
            continue
        out += buf[pos:cur_start] + redaction_marker(cur_class)
        pos = cur_end
        cur_start, cur_end, cur_class = start, end, dlp_class
    out += buf[pos:cur_start] + redaction_marker(cur_class) + buf[cur_end:hi]
    return bytes(out)
