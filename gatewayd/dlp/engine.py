"""The pattern engine: every rule's patterns in one Hyperscan database, scanned in one pass.

Why Hyperscan. A DLP scan runs on every inspected request body, over text an agent controls,
so it must be linear-time whatever the patterns and the input, and it must not cost a pass
per pattern. Two engines give linear time from Python: Hyperscan (the ``hyperscan`` package)
and RE2 (``google-re2``). ``tools/bench/dlp.py`` measures both on the same text with these
rules: Hyperscan's one pass reports every match with its start and end (about 200 MB/s for
the whole rule set on LLM request text); RE2's ``Set`` only says *which* patterns matched,
after which each of them is searched again to locate its matches, through a slower binding —
an RE2 scan costs as much as a whole Clawgress scan at 4 KiB (matching, validation and all)
and 2 to 3 times more at 64 KiB. RE2's DFA also falls back to a much slower mode when a
large pattern set thrashes its cache, which is what adversarial input provokes. Hyperscan's
price is a stricter dialect: no back-references or look-around, and with start-of-match
reporting (``HS_FLAG_SOM_LEFTMOST``, which spans need) no large bounded repeats; the shipped
rules match a distinctive prefix and let the validator extend the span. (Its compiler is also
sensitive to how a pattern is written: ``rules.yaml`` notes the cases measured.)

The databases and their scans are ``hits``': through the ``hyperscan`` package, or, where
``tools/native.py`` built it, through its C twin, which links the library (Vectorscan,
the Hyperscan the package bundles) and collects the hits without a Python call per hit.

The scan is in two stages. The primary database holds the patterns of rules that stand on
their own (or are only boosted by context) and the cue words of every rule that needs
context. (Whether decoding is worth trying — a long base64/hex run, a ``%XX`` escape — is
two C-speed byte searches in ``carriers``, cheaper there than as patterns here.) Rules
whose candidates are common shapes (six to ten digits, a date) and that mean something only
next to a cue — passport, MRN, date of birth, NPI — each get a small database of their own,
scanned only in windows around their own cues: a body without the word "passport" never
pays for the nine-digit numbers in it.

A scan reports at most ``limit`` raw hits; past that, it stops and says so (the scanner
turns that into an incomplete result that the caller's failure policy decides on). The
databases and their scratch space belong to one ``Engine``: use one per thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gatewayd.dlp.hits import CASELESS, SOM_LEFTMOST, Database, Hit, PatternError
from gatewayd.dlp.rules import RuleError, SourcedRule
from gatewayd.dlp.validators import VALIDATORS, Validator

RULE: Final = 0
CUE: Final = 1

WINDOW_MARGIN: Final = 128  # room for a secondary candidate beyond its rule's reach from the cue


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    id: str
    dlp_class: str
    confidence: float
    validator: Validator | None
    cues: frozenset[int]  # ids of this rule's cue phrases
    required: bool  # a cue must be near, or the candidate is dropped
    boost: float | None  # the confidence when a cue is near (cues not required)
    before: int
    after: int
    fallback: bool  # dropped where it overlaps a specific rule's match


def cue_pattern(cue: str) -> bytes:
    """A cue phrase as a pattern: literal words, with a space, ``_``, ``-`` or nothing between
    them (``date of birth``, ``date_of_birth``, ``dateOfBirth``)."""
    words = []
    for word in cue.split():
        words.append("".join(c if c.isalnum() or ord(c) > 127 else "\\" + c for c in word))
    return r"[ _-]?".join(words).encode()


def _reason(err: Exception) -> str:
    text = str(err).strip() or err.__class__.__name__
    return text.rstrip(".")


def compile_database(expressions: Sequence[bytes], flags: Sequence[int],
                     names: Sequence[str]) -> Database:
    """One block-mode database; a refusal names the pattern (``names[i]``) and the reason."""
    try:
        return Database(expressions, flags)
    except PatternError as err:
        for expression, flag, name in zip(expressions, flags, names, strict=True):
            try:
                Database([expression], [flag])
            except PatternError as single_err:
                raise RuleError(f"{name}: refused by the pattern engine: "
                                f"{_reason(single_err)}") from None
        raise RuleError(f"the rules together were refused by the pattern engine: "
                        f"{_reason(err)}") from None


class Engine:
    """The compiled rules: the primary database and one per rule that needs a cue."""

    def __init__(self, rules: Sequence[SourcedRule]) -> None:
        cue_ids: dict[str, int] = {}
        compiled: list[CompiledRule] = []
        primary: list[tuple[bytes, int, str, int, int]] = []  # expr, flags, name, kind, ref
        secondary: list[tuple[bytes, int, str, int, int]] = []
        for index, sourced in enumerate(rules):
            rule = sourced.rule
            cues: set[int] = set()
            ctx = rule.context
            if ctx is not None:
                for cue in ctx.cues:
                    cues.add(cue_ids.setdefault(cue.lower(), len(cue_ids)))
            required = ctx is not None and ctx.required
            compiled.append(CompiledRule(
                index=index, id=rule.id, dlp_class=rule.dlp_class, confidence=rule.confidence,
                validator=VALIDATORS[rule.validator] if rule.validator else None,
                cues=frozenset(cues), required=required,
                boost=None if ctx is None or ctx.required else ctx.confidence,
                before=ctx.before if ctx else 0, after=ctx.after if ctx else 0,
                fallback=rule.tier == "fallback"))
            target = secondary if required else primary
            for n, pattern in enumerate(rule.patterns, 1):
                name = f"{sourced.source}: rule {rule.id!r} pattern {n}"
                target.append((pattern.encode(), SOM_LEFTMOST, name, RULE, index))
        for cue, ref in cue_ids.items():
            primary.append((cue_pattern(cue),
                            CASELESS | SOM_LEFTMOST,
                            f"cue {cue!r}", CUE, ref))
        self.rules = tuple(compiled)
        # Each rule's confidence and boost as reported (to four places), rounded once: most
        # matches are reported at one of them, and round() formats the float to decide.
        self.rounded = {c: round(c, 4) for r in compiled
                        for c in (r.confidence, r.boost) if c is not None}
        self.cue_count = len(cue_ids)
        self.secondary_cues = frozenset().union(*(r.cues for r in compiled if r.required))
        self._primary = compile_database([p[0] for p in primary], [p[1] for p in primary],
                                         [p[2] for p in primary])
        self.primary_kind = tuple(p[3] for p in primary)
        self.primary_ref = tuple(p[4] for p in primary)
        # Rule patterns come first: a primary pattern id below this is a rule's.
        self.first_cue = sum(1 for p in primary if p[3] == RULE)
        # One small database per rule that needs a cue: only the rules whose cues appeared
        # are run, and only near those cues.
        self._contextual: dict[int, Database] = {}
        for index in sorted({p[4] for p in secondary}):
            mine = [p for p in secondary if p[4] == index]
            self._contextual[index] = compile_database(
                [p[0] for p in mine], [p[1] for p in mine], [p[2] for p in mine])
        # Per cue: the rules it opens a window for, with the window's reach before the cue's
        # start and after its end.
        cue_rules: dict[int, list[tuple[int, int, int]]] = {}
        for index in self._contextual:
            needy = compiled[index]
            for i in needy.cues:
                cue_rules.setdefault(i, []).append(
                    (index, needy.after + WINDOW_MARGIN, needy.before + WINDOW_MARGIN))
        self._cue_rules = {i: tuple(rules) for i, rules in cue_rules.items()}

    def scan_primary(self, buf: bytes, limit: int) -> tuple[list[Hit], bool]:
        """Raw hits of the primary database, and whether the scan ran to the end."""
        return self._primary.scan(buf, 0, len(buf), limit)

    def scan_secondary(self, buf: bytes, cues: Sequence[Hit],
                       limit: int) -> tuple[list[Hit], bool]:
        """Hits ``(rule, start, end)`` of the rules that need a cue, near their ``cues``.

        For each rule, only windows around its own cues are scanned: from ``after`` bytes
        before a cue to ``before`` bytes after it, plus ``WINDOW_MARGIN`` for the candidate
        itself. A candidate that touches a window's edge (where the buffer goes on) is
        dropped: it may be cut.
        """
        hits: list[Hit] = []
        size = len(buf)
        by_rule: dict[int, list[list[int]]] = {}
        cue_rules = self._cue_rules
        for cue, start, end in cues:  # in buffer order
            for index, back, ahead in cue_rules.get(cue, ()):
                lo = start - back if start > back else 0
                hi = end + ahead if end + ahead < size else size
                windows = by_rule.get(index)
                if windows is None:
                    by_rule[index] = [[lo, hi]]
                else:
                    last = windows[-1]
                    if lo <= last[1]:
                        last[1] = max(last[1], hi)
                    else:
                        windows.append([lo, hi])
        contextual = self._contextual
        for index, windows in by_rule.items():
            db = contextual[index]
            for lo, hi in windows:
                found, complete = db.scan(buf, lo, hi, limit - len(hits))
                for _, start, end in found:
                    if (start > lo or not lo) and (end < hi or hi == size):
                        hits.append((index, start, end))
                if not complete:
                    return hits, False
        return hits, True
