"""Typed access to parsed JSON.

A body is whatever its sender wrote; parsed, it is ``Any``. These functions give a value
only when it has the expected type (``as_count``: a non-negative integer, not a bool), so
a reader never indexes into something that is not there.
"""

from __future__ import annotations

from typing import Any

import orjson

JsonObject = dict[str, Any]


def as_object(value: object) -> JsonObject | None:
    return value if isinstance(value, dict) else None


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_count(value: object) -> int | None:
    """A non-negative integer (JSON numbers such as ``12.0`` are not counts)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def as_index(value: object) -> int | None:
    """An index a stream gives a choice, call or block (to key pieces by; hashable)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def field(obj: JsonObject, camel: str, snake: str) -> Any:
    """A field of a Google API object: its JSON may spell names in camel or snake case."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def dumps(value: object) -> str:
    """``value`` as JSON text (to count a schema or an argument object as tokens)."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return ""
