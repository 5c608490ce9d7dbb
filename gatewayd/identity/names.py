"""The formats of the names an identity is made of.

Agent, team and project ids and environments share one pattern: 1 to 128 characters of
ASCII letters, digits and ``. _ : -``, starting with a letter or digit — safe in logs, in
policy selectors and on a command line. A workload fingerprint (an image digest, a binary
hash) is free-form printable ASCII without spaces, at most 256 characters, possibly empty.
"""

from __future__ import annotations

import re

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_FINGERPRINT = 256
MAX_REASON = 256

# fullmatch, not ``$``: ``$`` also matches before a trailing newline.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_FINGERPRINT = re.compile(r"[\x21-\x7e]*")
_REASON = re.compile(r"[\x20-\x7e]+")


def check_name(what: str, value: str) -> str:
    """``value`` if it is a valid ``what`` (``"agent id"``...); ``ValueError`` otherwise."""
    if _NAME.fullmatch(value) is None:
        raise ValueError(
            f"invalid {what} {value!r}: expected 1 to 128 letters, digits, '.', '_', ':' or"
            " '-', starting with a letter or digit"
        )
    return value


def check_fingerprint(value: str) -> str:
    if len(value) > MAX_FINGERPRINT or _FINGERPRINT.fullmatch(value) is None:
        raise ValueError(
            f"invalid workload fingerprint {value[:40]!r}: expected up to {MAX_FINGERPRINT}"
            " printable ASCII characters without spaces"
        )
    return value


def check_reason(value: str) -> str:
    """A revocation reason: 1 to 256 printable ASCII characters (spaces allowed)."""
    if len(value) > MAX_REASON or _REASON.fullmatch(value) is None:
        raise ValueError(
            f"invalid reason {value[:40]!r}: expected 1 to {MAX_REASON} printable ASCII characters"
        )
    return value
