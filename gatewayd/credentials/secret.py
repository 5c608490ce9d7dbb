"""``Secret``: a provider key held in memory, which never turns into text by accident.

A provider key passes through ``repr`` and ``str`` in more places than anyone writes on
purpose: a log line's arguments, an exception's message, a traceback that shows locals, a
dataclass's ``repr``, a test's failure report. ``Secret`` answers all of them with the
key's length and nothing else; the text comes out only through ``reveal``, which is
called where the key is sealed and where it is put in the header that carries it
upstream. It cannot be pickled either, so it never lands in a cache or a worker's queue.
"""

from __future__ import annotations

from typing import NoReturn


class Secret:
    """The text of a provider key; ``reveal`` is the only way to read it."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def reveal(self) -> str:
        return self._text

    def __len__(self) -> int:
        return len(self._text)

    def __repr__(self) -> str:
        return f"Secret(<{len(self._text)} characters>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not pickled")
