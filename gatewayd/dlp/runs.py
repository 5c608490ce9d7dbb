"""Encoded runs: where a buffer may carry base64, hex or URL-encoded text.

``encoded_runs`` is the search half of ``carriers``: it finds the runs, ``carriers``
decodes them. It is pure byte work, the same for every body, and at 4 KiB about a sixth of
a whole scan as Python, so it has a C twin, ``runs.c``, that ``tools/native.py`` builds
next to the compiled modules (``gatewayd/compiled.py``) and that is used, in place of this
module, only while it was built from the sources as they are. The two give the same
result for every input (``tests/dlp/test_runs.py`` holds them to it); this module is the
reference, and what runs when nothing was built.

Runs of ``MIN_RUN`` or more base64 characters (``+/`` and ``-_`` alphabets both) are
found, a trailing ``=`` or ``==`` kept; plain lower-case words are not runs; a run of hex
digits of even length is ``hex`` if it could be hex of ASCII text, else skipped. A ``%XX``
escape makes a ``url`` run of the URL characters around it. Runs that overlap a match
already made (``covered``) are left out, but count toward ``limit``: reaching it with a
run or an escape left over is said (the scan is then incomplete: a body padded with runs
cannot push the one that carries a secret past it unseen).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

MIN_RUN: Final = 16  # shorter runs decode to fewer than 12 bytes: nothing worth hiding fits


def _table(chars: bytes) -> bytes:
    return bytes(0x61 if i in chars else 0x20 for i in range(256))


_ALNUM: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_RUN_TABLE: Final = _table(_ALNUM + b"+/_-")
_URL_TABLE: Final = _table(_ALNUM + b"._~!$&'()*+,;=:@/?%-")
_HEX_BYTES: Final = b"0123456789abcdefABCDEF"
_ESCAPE_TABLE: Final = bytes(0x25 if i == 0x25 else 0x68 if i in _HEX_BYTES else 0x20
                      for i in range(256))  # "%hh" where there is a %XX escape
_IDENTIFIER: Final = b"abcdefghijklmnopqrstuvwxyz_-"
_RUN_NEEDLE: Final = b"a" * MIN_RUN


Run = tuple[int, int, str]  # start and end in the scanned buffer, "base64" / "hex" / "url"


def encoded_runs(buf: bytes, *, limit: int,
                 covered: Callable[[int, int], bool] | None = None) -> tuple[list[Run], bool]:
    """Candidate runs in ``buf``, in order, at most ``limit``; with ``covered``, less the
    runs it says overlap a match already made (they still count toward ``limit``). And
    whether every run was looked at: False when ``limit`` was reached with more of the
    buffer holding a run or an escape (a body padded with runs must not push one that
    carries a secret out of sight)."""
    found: list[Run] = []
    count = 0
    size = len(buf)
    t = buf.translate(_RUN_TABLE)
    pos = 0
    while True:
        i = t.find(_RUN_NEEDLE, pos)
        if i < 0:
            break
        if count >= limit:
            return found, False
        start = t.rfind(b" ", 0, i) + 1
        end = t.find(b" ", i + MIN_RUN)
        if end < 0:
            end = size
        elif buf[end] == 0x3D:  # "=" padding, at most two
            end += 2 if buf[end + 1:end + 2] == b"=" else 1
        pos = end
        data = buf[start:end]
        if not data.translate(None, _IDENTIFIER):
            continue  # a plain lower_case word
        if not (end - start) % 2 and not data.translate(None, _HEX_BYTES):
            if data[0::2].translate(None, b"234567"):
                continue  # not hex of ASCII text
            encoding = "hex"
        else:
            encoding = "base64"
        count += 1
        if covered is None or not covered(start, end):
            found.append((start, end, encoding))
    escapes = _escapes(buf)
    if escapes is not None:
        t = buf.translate(_URL_TABLE)
        pos = 0
        while True:
            i = escapes.find(b"%hh", pos)
            if i < 0:
                break
            if count >= limit:
                return found, False
            start = t.rfind(b" ", 0, i) + 1
            end = t.find(b" ", i)
            end = size if end < 0 else end
            count += 1
            if covered is None or not covered(start, end):
                found.append((start, end, "url"))
            pos = end
    return found, True


def _escapes(buf: bytes) -> bytes | None:
    """``buf`` translated to show its ``%XX`` escapes (as ``%hh``), or None if it holds none.
    The first ``%`` are looked at in place (one for every 256 bytes, about what translating
    them costs), so prose with a few percentages is not translated; a body full of ``%`` is,
    once."""
    i = buf.find(b"%")
    for _ in range(max(8, len(buf) >> 8)):
        if i < 0:
            return None
        pair = buf[i + 1:i + 3]
        if len(pair) == 2 and not pair.translate(None, _HEX_BYTES):
            return buf.translate(_ESCAPE_TABLE)
        i = buf.find(b"%", i + 1)
    if i < 0:
        return None
    escapes = buf.translate(_ESCAPE_TABLE)
    return escapes if escapes.find(b"%hh", i) >= 0 else None
