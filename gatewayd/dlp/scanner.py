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

from collections.abc import Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Final

from gatewayd.dlp.carriers import as_text, decode
from gatewayd.dlp.engine import CompiledRule, Engine
from gatewayd.dlp.findings import Findings, new_findings
from gatewayd.dlp.hits import Hit
from gatewayd.dlp.match import MASKED_KEY, new_match
from gatewayd.dlp.rules import SourcedRule, load_rules
from gatewayd.dlp.runs import encoded_runs
from gatewayd.dlp.segments import (
    DECODED,
    KEY,
    SEP,
    JsonPath,
    Layout,
    Segment,
    count_at_most,
    count_below,
    layout,
)
from gatewayd.dlp.validators import ALNUM, LOWER, UPPER, generic_secret, generic_secret_core

DEFAULT_MIN_CONFIDENCE: Final = 0.5
DEFAULT_MAX_HITS: Final = 2048  # keeps a 1 MiB body built to be slow well under 50 ms
DEFAULT_MAX_CARRIERS: Final = 256
DEFAULT_MAX_DECODED_BYTES: Final = 256 * 1024
# Encoded runs looked at per body, per carrier decoded: most runs (ids, hashes, words in
# camelCase) decode to no text; past this many, the scan is incomplete ("carriers").
RUNS_PER_CARRIER: Final = 4

_NO_CUE: Final = 1 << 30
_LOWER_OR_DIGIT: Final = LOWER | frozenset(b"0123456789")
# What a validator may raise on a candidate it did not expect; the candidate is dropped.
# (Never re-raised: the exception's message could quote the candidate.)
_VALIDATOR_ERRORS: Final = (ValueError, IndexError, KeyError, UnicodeError, OverflowError)


class _Found:
    """A confirmed candidate (a plain class: see ``segments.Segment``)."""

    __slots__ = ("confidence", "cue_distance", "end", "rule", "segment", "start")

    def __init__(self, rule: CompiledRule, start: int, end: int, confidence: float,
                 segment: int, cue_distance: int) -> None:
        self.rule = rule
        self.start = start  # in the scanned buffer
        self.end = end
        self.confidence = confidence
        self.segment = segment
        self.cue_distance = cue_distance


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


# Sort keys as C callables: sorted() calls them per item, and calling a compiled function
# from C costs more than an itemgetter.
_start: Final = itemgetter(1)  # of a hit: its start
_end: Final = itemgetter(2)  # of a hit: its end
_placed: Final = itemgetter(1, 2)  # of a result: its start and end


class _Cues:
    """The word-bounded cues of one pass: which appeared, and the nearest to a candidate.

    Sorted by end and by start on the first ``distance`` asked, so that a body with many
    cues looks only at those within a rule's reach of each candidate.
    """

    __slots__ = ("by_end", "by_start", "ends", "hits", "ids", "starts")

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.ids = {cue for cue, _, _ in hits}
        self.by_end: list[Hit] | None = None
        self.ends: list[int] = []
        self.by_start: list[Hit] = []
        self.starts: list[int] = []

    def distance(self, rule: CompiledRule, start: int, end: int, lo: int, hi: int) -> int:
        """Bytes between ``[start, end)`` and the nearest of ``rule``'s cues: one ending at
        most ``rule.before`` before it (and starting at ``lo`` or later), or starting at most
        ``rule.after`` after it (and ending by ``hi``); ``_NO_CUE`` if none."""
        if self.by_end is None:
            self.by_end = sorted(self.hits, key=_end)
            self.ends = [ce for _, _, ce in self.by_end]
            self.by_start = sorted(self.hits, key=_start)
            self.starts = [cs for _, cs, _ in self.by_start]
        best = _NO_CUE
        wanted = rule.cues
        ends, by_end = self.ends, self.by_end
        for i in range(count_below(ends, start - rule.before), count_at_most(ends, start)):
            cue, cs, ce = by_end[i]
            if cue in wanted and cs >= lo and start - ce < best:
                best = start - ce
        starts, by_start = self.starts, self.by_start
        for i in range(count_below(starts, end), count_at_most(starts, end + rule.after)):
            cue, cs, ce = by_start[i]
            if cue in wanted and ce <= hi and cs - end < best:
                best = cs - end
        return best


class _Cover:
    """Spans sorted by start, with how far right the spans up to each one reach: whether
    any of them overlaps a given span is one bisection."""

    __slots__ = ("reach", "starts")

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans.sort()
        starts: list[int] = []
        reach: list[int] = []
        far = -1
        for start, end in spans:
            far = max(far, end)
            starts.append(start)
            reach.append(far)
        self.starts = starts
        self.reach = reach

    def overlaps(self, start: int, end: int) -> bool:
        i = count_below(self.starts, end)
        return i > 0 and self.reach[i - 1] > start


def _winners(found: list[_Found | None]) -> list[_Found]:
    """The matches that win over any fallback match they overlap: all but the
    context-confirmed ones that ``_unshadowed`` will drop."""
    plain = [f for f in found if f is not None and not f.rule.required]
    cover = _Cover([(f.start, f.end) for f in plain])
    return plain + [f for f in found if f is not None and f.rule.required
                    and not cover.overlaps(f.start, f.end)]


def _given_way(items: list[tuple[tuple[int, int], int]], fallbacks: list[int],
               formats: list[_Found], rules: Sequence[CompiledRule]) -> set[int]:
    """The fallback candidates (indices into ``items``) not worth validating: those whose
    value, if confirmed, a match of another class in ``formats`` is known to overlap."""
    if not formats:
        return set()
    # Per class: the matches of other classes, that a fallback candidate gives way to.
    covers: dict[str, _Cover] = {}
    # The smallest start of a later candidate of the same rule, per fallback candidate: one
    # that skipping a validation would let through (``reached``) forbids the skip.
    later: dict[int, int] = {}
    least: dict[int, int] = {}
    for k in reversed(fallbacks):
        (index, first), _ = items[k]
        later[k] = least.get(index, _NO_CUE)
        least[index] = min(first, later[k])
    skipped = set()
    for k in fallbacks:
        (index, _), last = items[k]
        rule = rules[index]
        if rule.validator is not generic_secret or later[k] < last - 1:
            continue
        cover = covers.get(rule.dlp_class)
        if cover is None:
            cover = covers[rule.dlp_class] = _Cover(
                [(f.start, f.end) for f in formats if f.rule.dlp_class != rule.dlp_class])
        low, high = generic_secret_core(last)
        if cover.overlaps(low, high):
            skipped.add(k)
    return skipped


def _unshadowed(found: list[_Found]) -> list[_Found]:
    """Context-confirmed matches that no format match (a card, an SSN...) overlaps."""
    if all(not f.rule.required for f in found):
        return found
    cover = _Cover([(f.start, f.end) for f in found
                    if not f.rule.required and not f.rule.fallback])
    if not cover.starts:
        return found
    return [f for f in found if not f.rule.required or not cover.overlaps(f.start, f.end)]


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
        last = len(buf) - 1
        for pattern, start, end in hits:
            if pattern < first_cue:
                key = (refs[pattern], start)
                if candidates.get(key, -1) < end:
                    candidates[key] = end
            elif ((start > 0 and end <= last and buf[start - 1] not in ALNUM
                   and buf[end] not in ALNUM) or _cue_bounded(buf, start, end)):
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
        near_cues = _Cues(cues)
        cue_ids = near_cues.ids
        rules = self.engine.rules
        reached = [0] * len(rules)  # how far each rule's confirmed matches reach
        items = list(candidates.items())
        found: list[_Found | None] = [None] * len(items)
        fallbacks: list[int] = []
        single = lay.segments[0] if len(lay.segments) == 1 else None
        min_confidence = self.min_confidence

        def confirm(rule: CompiledRule, start: int, end: int) -> _Found | None:
            index = rule.index
            if start < reached[index]:
                return None  # inside a match of the same rule (a key's body, a longer token)
            near = bool(cue_ids) and not rule.cues.isdisjoint(cue_ids)
            if rule.required and not near:
                return None
            factor = 1.0
            validator = rule.validator
            if validator is not None:
                try:
                    confirmed = validator(buf, start, end)
                except _VALIDATOR_ERRORS:
                    return None
                if confirmed is None:
                    return None
                start, end, factor = confirmed
                reached[index] = end
            if single is not None:  # a text body: one segment
                if start < single.start or end > single.end:
                    return None
                seg, s = 0, single
            else:
                seg = lay.find(start, end)
                if seg < 0:
                    return None
                s = lay.segments[seg]
            confidence = rule.confidence * factor
            distance = _NO_CUE
            if near:
                distance = near_cues.distance(rule, start, end, s.context_start, s.end)
            if distance == _NO_CUE:
                if rule.required:
                    return None
            elif rule.boost is not None:
                confidence = rule.boost * factor
            if confidence < min_confidence:
                return None
            return _Found(rule, start, end, confidence, seg, distance)

        for k, ((index, first), last) in enumerate(items):
            rule = rules[index]
            if rule.fallback:
                fallbacks.append(k)
                continue
            found[k] = confirm(rule, first, last)
        if fallbacks:
            given_way = _given_way(items, fallbacks, _winners(found), rules)
            for k in fallbacks:
                if k not in given_way:
                    (index, first), last = items[k]
                    found[k] = confirm(rules[index], first, last)
        return [f for f in found if f is not None]

    def _carriers(self, lay: Layout, kept: list[_Found], budget: list[int],
                  ) -> tuple[list[tuple[_Found, int, int, str, tuple[int, int]]], str | None]:
        """Decode the encoded runs outside the matches found, and scan their text."""
        covered = _Cover([(f.start, f.end) for f in kept])
        runs, whole = encoded_runs(lay.buf, limit=self.max_carriers * RUNS_PER_CARRIER,
                                   covered=covered.overlaps if kept else None)
        limit = None if whole else "carriers"
        if not runs:
            return [], limit
        parts = [SEP]
        segments: list[Segment] = []
        sources: list[tuple[int, int, int, str]] = []  # outer segment, run start, end, encoding
        pos, total = 1, 0
        for run_start, run_end, encoding in runs:  # none inside (or across) a match
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
        segments = lay.segments
        masked: list[JsonPath] = []
        for result in results:
            seg = segments[result[0].segment]
            if seg.kind == KEY and seg.path is not None:
                masked.append(seg.path)
        ordered = sorted(results, key=_placed) if len(results) > 1 else results
        rounded = self.engine.rounded
        matches = []
        placed = []
        for f, start, end, encoding, inner in ordered:
            seg = segments[f.segment]
            path = seg.path
            if path is not None and masked:
                path = _mask(path, masked)
            rule = f.rule
            span = ((start - seg.start, end - seg.start) if seg.ascii
                    else lay.chars(f.segment, start, end))
            confidence = rounded.get(f.confidence)
            if confidence is None:
                confidence = round(f.confidence, 4)
            matches.append(new_match(rule.dlp_class, confidence, span, path,
                                     rule.id, encoding, inner, seg.kind == KEY, f.segment))
            placed.append((start, end))
        return new_findings(tuple(matches), limit is None, limit, body, lay, tuple(placed))


def _mask(path: JsonPath, keys: list[JsonPath]) -> JsonPath:
    out = list(path)
    for key in keys:
        n = len(key)
        if len(path) >= n and path[:n - 1] == key[:n - 1] and path[n - 1] == key[n - 1]:
            out[n - 1] = MASKED_KEY
    return tuple(out)
