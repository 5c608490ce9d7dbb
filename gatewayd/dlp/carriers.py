"""Encoded carriers: base64, hex and URL-encoded runs, decoded one level and scanned again.

Wrapping a secret in base64 or percent-encoding is the first thing that hides it from a
pattern. ``runs.encoded_runs`` finds the runs (outside the matches already made); here
they are decoded. A run that decodes to text (valid UTF-8, almost no control characters) is
a *carrier*; its decoded text is scanned with the same rules, once (what a carrier carries is
not decoded again). A match inside a carrier is reported at the carrier's span in the
segment, with the encoding and the span inside the decoded text; redaction replaces the
whole encoded run.
"""

from __future__ import annotations

import binascii
from typing import Final
from urllib.parse import unquote_to_bytes

_CONTROL: Final = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"


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
        # (bytes.find, not ``in``: see ``validators.generic_secret``.)
        if body.find(b"-") >= 0 or body.find(b"_") >= 0:
            if body.find(b"+") >= 0 or body.find(b"/") >= 0:
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
