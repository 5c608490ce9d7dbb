"""What a selector field may hold, in the documents operators write (a ``Policy`` rule's
``identity``, a ``Quota``'s ``selector``): ``*`` alone (any), one value, or a list of values.

Pure. Each kind checks its values' own form (``gatewayd.policy``, ``gatewayd.quota``); this
is the rule they share.
"""

from __future__ import annotations

from typing import Any


def check_values(value: Any, most: int) -> Any:
    """``value`` as written, once it is ``*``, a value without a wildcard, or a non-empty
    list of at most ``most`` values without ``*``; ``ValueError`` saying what is wrong."""
    if value == "*":
        return value
    if isinstance(value, str) and "*" in value:
        raise ValueError("only '*' alone is a wildcard; list the values instead")
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list matches nothing; use '*' for any")
        if "*" in value:
            raise ValueError("'*' cannot be part of a list; use '*' alone for any")
        if len(value) > most:
            raise ValueError(f"more than {most} values")
    return value
