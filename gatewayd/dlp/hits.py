"""Pattern hits: one Hyperscan block-mode database, its scratch space, and a bounded scan.

``Database(expressions, flags)`` compiles the patterns (pattern ``i`` reports id ``i``);
``scan(buf, lo, hi, limit)`` scans ``buf[lo:hi]`` and returns every hit ``(id, start,
end)``, its offsets in ``buf``, in the order Hyperscan reports them (by end), at most
``limit`` of them, and whether the scan ran to the end. A database refused by Hyperscan
raises ``PatternError`` with its reason. One database is used by one thread at a time: the
scratch space is its own.

This module drives Hyperscan through the ``hyperscan`` package, whose binding calls a
Python function per hit (taking the GIL back and building its arguments: most of what a
hit costs). It has a C twin, ``hits.c``, that links the Hyperscan library itself and
collects the hits in C: ``tools/native.py`` builds it next to the compiled modules
(``gatewayd/compiled.py``) where the library's headers are installed, and it is used in
place of this module only while it was built from the sources as they are. Both give the
same hits for the same patterns (``tests/dlp/test_hits.py``); this module is the
reference, and what runs when nothing was built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import hyperscan

Hit = tuple[int, int, int]  # (pattern id, start, end)

CASELESS: Final = hyperscan.HS_FLAG_CASELESS
SOM_LEFTMOST: Final = hyperscan.HS_FLAG_SOM_LEFTMOST


class PatternError(Exception):
    """Hyperscan refused the patterns; the message is its reason."""


class Database:
    __slots__ = ("_db", "_scratch")

    def __init__(self, expressions: Sequence[bytes], flags: Sequence[int]) -> None:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            db.compile(expressions=list(expressions), ids=list(range(len(expressions))),
                       elements=len(expressions), flags=list(flags))
        except hyperscan.error as err:
            raise PatternError(str(err)) from None
        self._db = db
        self._scratch = hyperscan.Scratch(db)

    def scan(self, buf: bytes, lo: int, hi: int, limit: int) -> tuple[list[Hit], bool]:
        hits: list[Hit] = []
        if limit <= 0:
            return hits, False

        def on_match(pattern: int, start: int, end: int, flags: int, context: object) -> bool:
            hits.append((pattern, start + lo, end + lo))
            return len(hits) >= limit

        data = buf if lo == 0 and hi == len(buf) else memoryview(buf)[lo:hi]
        try:
            # Positional arguments: the binding parses them faster than keywords. (Its stub
            # types ``data`` as ``str | bytes``; it takes any buffer, a memoryview too.)
            self._db.scan(data, on_match, 0, None, self._scratch)  # type: ignore[type-var]
        except hyperscan.ScanTerminated:
            return hits, False
        return hits, True
