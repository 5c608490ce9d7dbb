"""Turn pydantic validation errors into lines an operator can act on.

Each line names where (file, document, field path) and what was expected, never a
traceback. Used for the gateway configuration and for policy documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError


def field_path(loc: Sequence[int | str]) -> str:
    """``("workload", "interfaces", 0, "subnets")`` → ``workload.interfaces[0].subnets``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(exc: ValidationError) -> list[str]:
    """One ``path: message (got X)`` line per error, in pydantic's order."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not _is_union_tag(p)]
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        line = f"{field_path(loc)}: {msg}"
        if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
            got = err["input"]
            if not isinstance(got, dict | list):
                line += f" (got {_short(got)})"
        lines.append(line)
    return lines


def _is_union_tag(part: int | str) -> bool:
    # pydantic inserts the union member's type name (``function-after[...]``, ``str``,
    # ``IPv4Network``) into ``loc`` for union errors; it is noise for an operator.
    return isinstance(part, str) and (
        "[" in part or part in {"str", "int", "IPv4Network", "IPv6Network", "IPv4Address",
                                "IPv6Address", "list[str]", "list[int]"}
    )
