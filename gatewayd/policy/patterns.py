"""Glob patterns for L7 conditions (paths, models, tools).

``*`` matches any run of characters (``/`` included), ``?`` exactly one; every other
character is literal — there are no character classes. Patterns are compiled once, when
the bundle is compiled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def glob_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out)


class GlobSet:
    """Matches a string against several globs with one anchored regex."""

    __slots__ = ("_exact", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        exact = [p for p in self.patterns if "*" not in p and "?" not in p]
        wild = [p for p in self.patterns if p not in exact]
        self._exact = frozenset(exact)
        self._regex = (
            re.compile("|".join(f"(?:{glob_regex(p)})" for p in wild), re.DOTALL)
            if wild
            else None
        )

    def match(self, value: str) -> bool:
        if value in self._exact:
            return True
        return self._regex is not None and self._regex.fullmatch(value) is not None

    def __bool__(self) -> bool:
        return bool(self.patterns)


def class_matches(wanted: str, actual: str) -> bool:
    """DLP classes are dotted: ``secrets`` covers ``secrets.aws.access_key``."""
    return actual == wanted or actual.startswith(wanted + ".")
