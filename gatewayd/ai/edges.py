"""Values found in the edges of a JSON document too large to keep whole.

A provider's JSON puts the model near its start and the usage at its end (OpenAI,
Anthropic, Gemini and Bedrock all write ``usage`` after the generated content). When an
answer or a streamed message is over its bound, only its first and last bytes are kept
(``framing.Clip``), and ``find_value`` looks for a key there.

A key is found only where it is structural: in JSON, a ``"`` inside a string is always
escaped, so ``"usage":`` preceded by an even number of backslashes can only be an object
key. It may still belong to a nested object, which is why the first occurrence is taken in
a document's head and the last in its tail. The value is decoded from at most
``VALUE_BYTES`` after the colon (usage objects are small).
"""

from __future__ import annotations

import json

VALUE_BYTES = 4096
MAX_TRIES = 8
_DECODER = json.JSONDecoder()
_SPACE = b" \t\r\n"


def find_value(text: bytes, key: str, *, last: bool) -> object | None:
    """The value of the first (or ``last``) structural ``key`` in ``text``, if any."""
    needle = b'"' + key.encode() + b'"'
    pos = text.rfind(needle) if last else text.find(needle)
    for _ in range(MAX_TRIES):
        if pos < 0:
            return None
        value = _value_at(text, pos, needle)
        if value is not None:
            return value
        pos = text.rfind(needle, 0, pos) if last else text.find(needle, pos + 1)
    return None


def _value_at(text: bytes, pos: int, needle: bytes) -> object | None:
    slashes = 0
    while pos - slashes > 0 and text[pos - slashes - 1] == 0x5C:
        slashes += 1
    if slashes % 2:
        return None
    i = pos + len(needle)
    while i < len(text) and text[i] in _SPACE:
        i += 1
    if i >= len(text) or text[i] != 0x3A:  # ':'
        return None
    piece = text[i + 1:i + 1 + VALUE_BYTES].decode("utf-8", "replace").lstrip()
    try:
        value: object = _DECODER.raw_decode(piece)[0]
    except (ValueError, RecursionError):
        return None
    return value


def find_values(head: bytes, tail: bytes, head_keys: tuple[str, ...],
                tail_keys: tuple[str, ...]) -> dict[str, object]:
    """The ``head_keys`` found first in ``head`` and the ``tail_keys`` found last in
    ``tail`` (each looked for in the other edge when missing from its own)."""
    found: dict[str, object] = {}
    for key in head_keys:
        value = find_value(head, key, last=False)
        found[key] = value if value is not None else find_value(tail, key, last=False)
    for key in tail_keys:
        value = find_value(tail, key, last=True)
        found[key] = value if value is not None else find_value(head, key, last=True)
    return {k: v for k, v in found.items() if v is not None}
