"""The scanner: a body in, ``Findings`` out, in one pass of the engine (plus what it decodes).

``Scanner.scan(body, content_type=...)`` lays the body out (``segments``: JSON strings or
the text as it is), runs the engine's primary pass and, near the cues that appeared, the
rules that need them; validates each candidate (``validators``), checks its cues, resolves
overlaps, then decodes the encoded runs outside the matches (``carriers``) and scans their
text the same way, once. Candidates below ``min_confidence`` are dropped. A fallback
candidate whose value a match of another class already covers is not validated: it would
give way to that match anyway.

Overlaps: a match of a ``fallback`` rule (the generic key=value secret) gives way to any
other match it overlaps; a context-confirmed match gives way to a format match (a card, an
SSN) it overlaps; a match strictly inside another one (an e-mail address inside a database
URL, an IPv4 address inside an IPv6 one) is the larger one's; two context-confirmed matches
of the same span (a number near "passport" and near "MRN") go to the nearer cue.

Bounds, each a named parameter with a default: ``max_hits`` raw pattern hits per body (the
engine stops there), ``max_carriers`` encoded runs decoded per body, and
``max_decoded_bytes`` decoded bytes per body. Reaching one makes the result incomplete
(``Findings.complete`` false, ``Findings.limit`` names it): the matches found so far are
kept, and the caller's failure policy decides (fail-closed: refuse the request). A body
that claims to be JSON and is not raises ``ParseError``; that too is the caller's to decide.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from gatewayd.dlp.carriers import as_text, decode, encoded_runs
from gatewayd.dlp.engine import CompiledRule, Engine, Hit
from gatewayd.dlp.findings import Findings
from gatewayd.dlp.match import MASKED_KEY, Match
from gatewayd.dlp.rules import SourcedRule, load_rules
from gatewayd.dlp.segments import DECODED, KEY, SEP, JsonPath, Layout, Segment, layout
from gatewayd.dlp.validators import ALNUM, LOWER, UPPER, generic_secret, generic_secret_core

DEFAULT_MIN_CONFIDENCE = 0.5
DEFAULT_MAX_HITS = 2048  # keeps a 1 MiB body built to be slow well under 50 ms
DEFAULT_MAX_CARRIERS = 256
DEFAULT_MAX_DECODED_BYTES = 256 * 1024

_NO_CUE = 1 << 30
_LOWER_OR_DIGIT = LOWER | frozenset(b"0123456789")
# What a validator may raise on a candidate it did not expect; the candidate is dropped.
# (Never re-raised: the exception's message could quote the candidate.)
_VALIDATOR_ERRORS = (ValueError, IndexError, KeyError, UnicodeError, OverflowError)


@dataclass(slots=True)
class _Found:
    rule: CompiledRule
    start: int  # in the scanned buffer
    end: int
    confidence: float
    segment: int
    cue_distance: int


def _cue_bounded(buf: bytes, start: int, end: int) -> bool:
    """A cue is a word: not inside another, but ``patientMRN``, ``dob_`` and plurals count."""
    prev = buf[start - 1] if start else 0
    if prev in ALNUM:
        camel = prev in _LOWER_OR_DIGIT and buf[start] in UPPER  # patientMRN
        escaped = prev in b"ntr" and start >= 2 and buf[start - 2] == 0x5C  # after a \\n escape
        if not camel and not escaped:
            return False
    nxt = buf[end] if end < len(buf) else 0
    if nxt in ALNUM:
        if nxt in UPPER and buf[end - 1] in LOWER:
            return True  # camelCase: passportNumber
        after = buf[end + 1] if end + 1 < len(buf) else 0
        return nxt in b"sS" and after not in ALNUM
    return True


def _start(hit: Hit) -> int:
    return hit[1]


def _cue_distance(cues: list[Hit], rule: CompiledRule, start: int, end: int, lo: int,
                  hi: int) -> int:
    best = _NO_CUE
    for cue, cs, ce in cues:
        if cue not in rule.cues:
            continue
        if ce <= start:
            if cs >= lo and start - ce <= rule.before:
                best = min(best, start - ce)
        elif cs >= end and ce <= hi and cs - end <= rule.after:
            best = min(best, cs - end)
    return best


def _covered(formats: list[_Found], dlp_class: str, start: int, end: int) -> bool:
    """Whether a match of another class than ``dlp_class`` (any, if it is empty) overlaps
    ``[start, end)``."""
    return any(f.start < end and f.end > start and f.rule.dlp_class != dlp_class
               for f in formats)


def _winners(found: list[_Found | None]) -> list[_Found]:
    """The matches that win over any fallback match they overlap: all but the
    context-confirmed ones that ``_unshadowed`` will drop."""
    plain = [f for f in found if f is not None and not f.rule.required]
    return plain + [f for f in found if f is not None and f.rule.required
                    and not _covered(plain, "", f.start, f.end)]


def _unshadowed(found: list[_Found]) -> list[_Found]:
    """Context-confirmed matches that no format match (a card, an SSN...) overlaps."""
    formats = sorted((f.start, f.end) for f in found
                     if not f.rule.required and not f.rule.fallback)
    if not formats or all(not f.rule.required for f in found):
        return found
    starts = [s for s, _ in formats]
    reach = list(accumulate((e for _, e in formats), max))
    out = []
    for f in found:
        if f.rule.required:
            i = bisect_left(starts, f.end)
            if i and reach[i - 1] > f.start:
                continue
        out.append(f)
    return out


def _resolve(found: list[_Found]) -> list[_Found]:
    """Overlaps settled (see the module docstring); the survivors in buffer order."""
    found = _unshadowed(found)
    found.sort(key=lambda f: (f.start, -f.end, -f.confidence))
    kept: list[_Found] = []
    cover = -1  # the kept match reaching furthest right

    def recover() -> int:
        return max(range(len(kept)), key=lambda i: kept[i].end)

    for f in found:
        if cover >= 0 and f.start < kept[cover].end:
            c = kept[cover]
            if f.end <= c.end:
                if f.start == c.start and f.end == c.end:
                    if f.rule.dlp_class == c.rule.dlp_class or f.rule.fallback:
                        continue
                    if c.rule.fallback:
                        kept[cover] = f
                    elif f.rule.required and c.rule.required:
                        if f.cue_distance < c.cue_distance:
                            kept[cover] = f
                    else:
                        kept.append(f)
                        cover = len(kept) - 1
                elif c.rule.fallback and not f.rule.fallback:
                    kept[cover] = f
                    cover = recover()
                continue
            if f.rule.fallback:
                continue
            if c.rule.fallback:
                kept[cover] = f
                continue
        kept.append(f)
        if cover < 0 or f.end > kept[cover].end:
            cover = len(kept) - 1
    return kept


class Scanner:
    """The compiled rules and the bounds; ``scan`` is pure (bytes in, ``Findings`` out)."""

    def __init__(self, rules: Sequence[SourcedRule], *,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 max_hits: int = DEFAULT_MAX_HITS,
                 max_carriers: int = DEFAULT_MAX_CARRIERS,
                 max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> None:
        self.engine = Engine(rules)
        self.min_confidence = min_confidence
        self.max_hits = max_hits
        self.max_carriers = max_carriers
        self.max_decoded_bytes = max_decoded_bytes

    @classmethod
    def from_files(cls, extra: Iterable[Path] = (), *, shipped: bool = True,
                   min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                   max_hits: int = DEFAULT_MAX_HITS,
                   max_carriers: int = DEFAULT_MAX_CARRIERS,
                   max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> Scanner:
        """The shipped rules plus the operator's rules files (``RuleError`` if one is bad)."""
        return cls(load_rules(extra, shipped=shipped), min_confidence=min_confidence,
                   max_hits=max_hits, max_carriers=max_carriers,
                   max_decoded_bytes=max_decoded_bytes)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class the rules can report."""
        return tuple(sorted({r.dlp_class for r in self.engine.rules}))

    def scan(self, body: bytes, *, content_type: str | None = None) -> Findings:
        """Scan a request body: JSON if ``content_type`` says so (or, if it is None, if the
        body looks like JSON), else text. ``ParseError`` if it claims JSON and is not."""
        lay = layout(body, content_type)
        budget = [self.max_hits]
        found, complete = self._pass(lay.buf, lay, budget)
        limit = None if complete else "hits"
        kept = _resolve(found)
        results: list[tuple[_Found, int, int, str | None, tuple[int, int] | None]] = [
            (f, f.start, f.end, None, None) for f in kept]
        if complete:
            inner, limit = self._carriers(lay, kept, budget)
            results.extend(inner)
        return self._findings(body, lay, results, limit)

    def _pass(self, buf: bytes, lay: Layout, budget: list[int]) -> tuple[list[_Found], bool]:
        """One scan of ``buf``: the confirmed candidates, and whether the scans ran to the
        end."""
        candidates, cues, complete = self._candidates(buf, budget)
        if not candidates:
            return [], complete
        return self._confirm(buf, lay, candidates, cues), complete

    def _candidates(self, buf: bytes, budget: list[int],
                    ) -> tuple[dict[tuple[int, int], int], list[Hit], bool]:
        """``{(rule, start): end}`` (the farthest end per start), the word-bounded cues,
        and whether the scans ran to the end."""
        eng = self.engine
        hits, complete = eng.scan_primary(buf, budget[0])
        budget[0] -= len(hits)
        first_cue, refs = eng.first_cue, eng.primary_ref
        candidates: dict[tuple[int, int], int] = {}
        cues: list[Hit] = []
        for pattern, start, end in hits:
            if pattern < first_cue:
                key = (refs[pattern], start)
                if candidates.get(key, -1) < end:
                    candidates[key] = end
            elif _cue_bounded(buf, start, end):
                cues.append((refs[pattern], start, end))
        if cues:
            secondary = eng.secondary_cues
            wanted = sorted((c for c in cues if c[0] in secondary), key=_start)
            if complete and wanted:
                more, complete = eng.scan_secondary(buf, wanted, budget[0])
                budget[0] -= len(more)
                for index, start, end in more:
                    key = (index, start)
                    if candidates.get(key, -1) < end:
                        candidates[key] = end
        return candidates, cues, complete

    def _confirm(self, buf: bytes, lay: Layout, candidates: dict[tuple[int, int], int],
                 cues: list[Hit]) -> list[_Found]:
        """Validated candidates, with their cues checked and their confidence set, in
        candidate order.

        Fallback candidates are looked at last, so that one whose value another class's
        match is known to cover (it would give way to it in ``_resolve``) is not validated.
        """
        cue_ids = {c[0] for c in cues}
        rules = self.engine.rules
        reached = [0] * len(rules)  # how far each rule's confirmed matches reach
        items = list(candidates.items())
        found: list[_Found | None] = [None] * len(items)
        fallbacks: list[int] = []
        for k, ((index, first), last) in enumerate(items):
            rule = rules[index]
            if rule.fallback:
                fallbacks.append(k)
                continue
            found[k] = self._confirm_one(buf, lay, rule, first, last, cues, cue_ids, reached)
        if fallbacks:
            formats = _winners(found)
            # The smallest start of a later candidate of the same rule, per fallback candidate:
            # one that skipping a validation would let through (``reached``) forbids the skip.
            later: list[int] = [_NO_CUE] * len(items)
            least: dict[int, int] = {}
            for k in reversed(fallbacks):
                (index, first), _ = items[k]
                later[k] = least.get(index, _NO_CUE)
                least[index] = min(first, later[k])
            for k in fallbacks:
                (index, first), last = items[k]
                rule = rules[index]
                if (formats and rule.validator is generic_secret and later[k] >= last - 1
                        and _covered(formats, rule.dlp_class, *generic_secret_core(last))):
                    continue
                found[k] = self._confirm_one(buf, lay, rule, first, last, cues, cue_ids,
                                             reached)
        return [f for f in found if f is not None]

    def _confirm_one(self, buf: bytes, lay: Layout, rule: CompiledRule, first: int, last: int,
                     cues: list[Hit], cue_ids: set[int], reached: list[int]) -> _Found | None:
        index = rule.index
        if first < reached[index]:
            return None  # inside a match of the same rule (a key's body, a longer token)
        near = bool(cue_ids) and not rule.cues.isdisjoint(cue_ids)
        if rule.required and not near:
            return None
        start, end, factor = first, last, 1.0
        if rule.validator is not None:
            try:
                confirmed = rule.validator(buf, start, end)
            except _VALIDATOR_ERRORS:
                return None
            if confirmed is None:
                return None
            start, end, factor = confirmed
            reached[index] = end
        seg = lay.find(start, end)
        if seg < 0:
            return None
        confidence = rule.confidence * factor
        distance = _NO_CUE
        if near:
            s = lay.segments[seg]
            distance = _cue_distance(cues, rule, start, end, s.context_start, s.end)
        if distance == _NO_CUE:
            if rule.required:
                return None
        elif rule.boost is not None:
            confidence = rule.boost * factor
        if confidence < self.min_confidence:
            return None
        return _Found(rule, start, end, confidence, seg, distance)

    def _carriers(self, lay: Layout, kept: list[_Found], budget: list[int],
                  ) -> tuple[list[tuple[_Found, int, int, str, tuple[int, int]]], str | None]:
        """Decode the encoded runs outside the matches found, and scan their text."""
        runs = encoded_runs(lay.buf, limit=self.max_carriers * 4)
        if not runs:
            return [], None
        covered = sorted((f.start, f.end) for f in kept)
        starts = [c[0] for c in covered]
        reach = list(accumulate((c[1] for c in covered), max))
        parts = [SEP]
        segments: list[Segment] = []
        sources: list[tuple[int, int, int, str]] = []  # outer segment, run start, end, encoding
        pos, total, limit = 1, 0, None
        for run_start, run_end, encoding in runs:
            i = bisect_left(starts, run_end)
            if i and reach[i - 1] > run_start:
                continue  # inside (or across) a match already made
            outer = lay.find(run_start, run_end)
            if outer < 0:
                continue
            if encoding == "url":  # decoded in Python: its cost is charged up front
                total += run_end - run_start
                if total > self.max_decoded_bytes:
                    limit = "decoded"
                    break
            data = decode(lay.buf[run_start:run_end], encoding)
            if data is None or not as_text(data):
                continue
            if len(sources) >= self.max_carriers:
                limit = "carriers"
                break
            if encoding != "url":
                total += len(data)
            if total > self.max_decoded_bytes:
                limit = "decoded"
                break
            segments.append(Segment(None, DECODED, pos, pos + len(data), pos, data.isascii(),
                                    "strict"))
            sources.append((outer, run_start, run_end, encoding))
            parts.append(data)
            parts.append(SEP)
            pos += len(data) + 1
        if not sources:
            return [], limit
        inner = Layout(b"".join(parts), segments, [s.start for s in segments])
        found, complete = self._pass(inner.buf, inner, budget)
        if not complete:
            limit = limit or "hits"
        out = []
        for f in _resolve(found):
            outer, run_start, run_end, encoding = sources[f.segment]
            span = inner.chars(f.segment, f.start, f.end)
            carried = _Found(f.rule, run_start, run_end, f.confidence, outer, f.cue_distance)
            out.append((carried, run_start, run_end, encoding, span))
        return out, limit

    def _findings(self, body: bytes, lay: Layout,
                  results: Sequence[tuple[_Found, int, int, str | None,
                                          tuple[int, int] | None]],
                  limit: str | None) -> Findings:
        masked: list[JsonPath] = []
        for f, *_ in results:
            seg = lay.segments[f.segment]
            if seg.kind == KEY and seg.path is not None:
                masked.append(seg.path)
        ordered = sorted(results, key=lambda r: (r[1], r[2]))
        matches = []
        placed = []
        for f, start, end, encoding, inner in ordered:
            seg = lay.segments[f.segment]
            path = seg.path
            if path is not None and masked:
                path = _mask(path, masked)
            matches.append(Match(
                dlp_class=f.rule.dlp_class, confidence=round(f.confidence, 4),
                span=lay.chars(f.segment, start, end), path=path, rule=f.rule.id,
                encoding=encoding, inner=inner, in_key=seg.kind == KEY, segment=f.segment))
            placed.append((start, end))
        return Findings(tuple(matches), limit is None, limit, body, lay, tuple(placed))


def _mask(path: JsonPath, keys: list[JsonPath]) -> JsonPath:
    out = list(path)
    for key in keys:
        n = len(key)
        if len(path) >= n and path[:n - 1] == key[:n - 1] and path[n - 1] == key[n - 1]:
            out[n - 1] = MASKED_KEY
    return tuple(out)
