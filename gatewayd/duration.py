"""Durations written the way operators write them: ``90s``, ``15m``, ``1h``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"(?:\d+[smhdw])+")


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises ``ValueError`` naming what was expected.

    A bare integer means seconds. Zero and negative durations are refused: nothing in
    Clawgress has a meaningful zero-length lifetime.
    """
    s = text.strip().lower()
    if s.isdigit():
        seconds = int(s)
    elif _WHOLE.fullmatch(s):
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(s))
    else:
        raise ValueError(
            f"invalid duration {text!r}: expected a number with a unit, such as 90s, 15m, 1h, 7d"
        )
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return seconds


def duration_setting(value: Any, examples: str = "30s, 15m, 1h") -> int:
    """Seconds in a configuration value: a positive integer, or text ``parse_duration``
    reads; ``ValueError`` naming ``examples`` for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as {examples}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected a duration such as {examples}")


def format_duration(seconds: float) -> str:
    """The inverse of ``parse_duration`` for display (``3690`` → ``1h1m30s``)."""
    rest = int(seconds)
    if rest <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
