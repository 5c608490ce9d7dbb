"""API keys of agents: how they are made, stored and checked. Pure.

A key reads ``cgk_<key_id>_<secret>``: ``key_id`` is 16 lowercase hex digits (8 random
bytes; it names the key in the store, in listings and in audit records, and is not
secret), ``secret`` is 32 random bytes in URL-safe base64 without padding (43
characters). Neither part contains ``:``, so a key can follow an agent id in a Basic
``user:password`` pair whatever the id holds. The store keeps ``sha256:<hex>`` of the
whole key, never the key: it is shown once, when it is made.

One SHA-256 per check, not a slow password hash (scrypt, Argon2): those make guessing a
low-entropy password from a stolen hash expensive, but a key carries 256 random bits, so
guessing it from its hash is already out of reach and a fast hash loses nothing. That is
how GitHub-style tokens are stored, and it keeps a check on every proxy request to
microseconds.

The stored form, ``ApiKey``, is the registry's row (``gatewayd.identity.registry``), which
keeps keys with ``Registry.add_api_key`` and hands them to the engine with
``Registry.api_keys_by_id``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from gatewayd.identity.registry import ApiKey, check_label

KEY_PREFIX = "cgk"
KEY_ID_BYTES = 8
SECRET_BYTES = 32
HASH_SCHEME = "sha256"

# The whole key, and its two parts as groups; fullmatch, so no trailing newline slips by.
_KEY = re.compile(r"cgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: its stored form, and its text, to hand out once.

    The text is left out of ``repr`` so a stray log line cannot carry it.
    """

    record: ApiKey
    token: str = field(repr=False)

    @property
    def key_id(self) -> str:
        return self.record.key_id


def new_api_key(
    agent_id: str,
    *,
    now: float,
    label: str = "",
    token_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> IssuedKey:
    """A new key of ``agent_id``, made at ``now``; ``ValueError`` if ``label`` is invalid.

    ``token_bytes`` is the source of randomness (tests pass a fixed one).
    """
    check_label(label)
    key_id = token_bytes(KEY_ID_BYTES).hex()
    secret = base64.urlsafe_b64encode(token_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")
    token = f"{KEY_PREFIX}_{key_id}_{secret}"
    record = ApiKey(key_id, agent_id, hash_api_key(token), now, None, label)
    return IssuedKey(record, token)


def key_id_of(token: str) -> str | None:
    """The key id of ``token`` if it has the form of a key, else ``None``."""
    match = _KEY.fullmatch(token)
    return match.group(1) if match else None


def hash_api_key(token: str) -> str:
    """The stored form of ``token``: ``sha256:<hex>`` (see the module docstring for why)."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{HASH_SCHEME}:{digest}"


def verify_api_key(token: str, stored_hash: str) -> bool:
    """Whether ``token`` is the key ``stored_hash`` was made from, in constant time."""
    expected = hash_api_key(token).encode("ascii")
    return hmac.compare_digest(expected, stored_hash.encode("utf-8", "surrogatepass"))

