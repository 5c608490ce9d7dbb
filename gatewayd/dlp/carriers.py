"""Encoded carriers: base64, hex and URL-encoded runs, decoded one level and scanned again.

Wrapping a secret in base64 or percent-encoding is the first thing that hides it from a
pattern. Finding the runs is C-speed byte operations, not regular expressions: the buffer
is translated to a two-letter alphabet (run character or not) and runs of ``MIN_RUN``
characters are found with ``bytes.find``; ``%XX`` escapes are looked for only when there is
a ``%`` at all, the same way. A body without either costs a translation and two searches.
Runs that overlap a match already made are left out where they are found (they are the
match's, not carriers), before any decoding; they still count toward the bound on runs,
and reaching that bound with runs left over is said (the scan is then incomplete: a body
padded with runs cannot push the one that carries a secret past it unseen).
A run that decodes to text (valid UTF-8, almost no control characters) is
a *carrier*; its decoded text is scanned with the same rules, once (what a carrier carries is
not decoded again). A match inside a carrier is reported at the carrier's span in the
segment, with the encoding and the span inside the decoded text; redaction replaces the
whole encoded run.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Final
from urllib.parse import unquote_to_bytes

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
_CONTROL: Final = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"
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


def decode(data: bytes, encoding: str) -> bytes | None:
    """The decoded bytes of a run, or None if it does not decode."""
    try:
        if encoding == "hex":
            return bytes.fromhex(data.decode("ascii"))
        if encoding == "url":
            out = unquote_to_bytes(data)
            return out if out != data else None
        body = data.rstrip(b"=")
        if len(body) % 4 == 1:
            return None
        if b"-" in body or b"_" in body:
            if b"+" in body or b"/" in body:
                return None
            body = body.replace(b"-", b"+").replace(b"_", b"/")
        return binascii.a2b_base64(body + b"=" * (-len(body) % 4))
    except (ValueError, binascii.Error):
        return None


def as_text(decoded: bytes) -> bool:
    """Decoded bytes that are text: UTF-8, with at most 2% control characters."""
    if len(decoded) < 8:
        return False
    # Controls first: most runs that are not carriers (random ids, hashes) decode to bytes
    # with many, and counting them costs less than a failed UTF-8 decoding.
    controls = len(decoded) - len(decoded.translate(None, _CONTROL))
    if controls * 50 > len(decoded):
        return False
    if decoded.isascii():
        return True
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
