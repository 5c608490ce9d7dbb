"""Placeholders: what an agent holds in place of a provider key. Pure.

A placeholder reads ``cg-ph-<id>-<secret>``: ``id`` is 16 lower-case hex digits (8 random
bytes; it names the placeholder in the store, in listings, in refusals and in audit
records, and is not secret), ``secret`` is 32 random bytes in URL-safe base64 without
padding (43 characters); 66 characters in all, which every SDK takes where it takes a
key. The prefix makes one recognizable in a header, in a log an agent writes, in a
secret scanner's rules. The store keeps ``sha256:<hex>`` of the whole text, never the
text: it is shown once, when it is issued. One SHA-256 per check is enough for 256 random
bits (``gatewayd.l7.api_keys`` says why for agents' API keys; the same holds here).

The form is checked without regular expressions: this runs on every request that carries
an auth header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from gatewayd.credentials.model import PLACEHOLDER_PREFIX, Placeholder, check_label

ID_BYTES = 8
SECRET_BYTES = 32
HASH_SCHEME = "sha256"
_ID_DIGITS = 2 * ID_BYTES
_SECRET_CHARS = 43
PLACEHOLDER_LENGTH = len(PLACEHOLDER_PREFIX) + _ID_DIGITS + 1 + _SECRET_CHARS
_HEX = frozenset("0123456789abcdef")
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class IssuedPlaceholder:
    """A placeholder just issued: its stored form, and its text, to hand out once (left
    out of ``repr``)."""

    record: Placeholder
    token: str = field(repr=False)

    @property
    def placeholder_id(self) -> str:
        return self.record.placeholder_id


def new_placeholder(
    credential_id: str,
    agent_id: str,
    *,
    now: float,
    label: str = "",
    token_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> IssuedPlaceholder:
    """A new placeholder of ``agent_id`` for ``credential_id``, issued at ``now``.

    ``token_bytes`` is the source of randomness (tests pass a fixed one); ``ValueError``
    if ``label`` is invalid.
    """
    check_label(label)
    placeholder_id = token_bytes(ID_BYTES).hex()
    secret = base64.urlsafe_b64encode(token_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")
    token = f"{PLACEHOLDER_PREFIX}{placeholder_id}-{secret}"
    record = Placeholder(placeholder_id, credential_id, agent_id, hash_placeholder(token),
                         now, None, label)
    return IssuedPlaceholder(record, token)


def is_placeholder_like(token: str) -> bool:
    """Whether ``token`` is meant as a placeholder (it has the prefix), well formed or not."""
    return token.startswith(PLACEHOLDER_PREFIX)


def placeholder_id_of(token: str) -> str | None:
    """The id of ``token`` if it has the whole form of a placeholder, else ``None``."""
    if len(token) != PLACEHOLDER_LENGTH or not token.startswith(PLACEHOLDER_PREFIX):
        return None
    start = len(PLACEHOLDER_PREFIX)
    placeholder_id = token[start:start + _ID_DIGITS]
    if token[start + _ID_DIGITS] != "-":
        return None
    secret = token[start + _ID_DIGITS + 1:]
    if not _HEX.issuperset(placeholder_id) or not _B64URL.issuperset(secret):
        return None
    return placeholder_id


def hash_placeholder(token: str) -> str:
    """The stored form of ``token``: ``sha256:<hex>``."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{HASH_SCHEME}:{digest}"


def verify_placeholder(token: str, stored_hash: str) -> bool:
    """Whether ``token`` is the placeholder ``stored_hash`` was made from, in constant time."""
    expected = hash_placeholder(token).encode("ascii")
    return hmac.compare_digest(expected, stored_hash.encode("utf-8", "surrogatepass"))
