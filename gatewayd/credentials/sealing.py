"""Sealing provider keys: AES-256-GCM under the gateway's data key. Pure.

A sealed key is ``0x01 || nonce (12 random bytes) || ciphertext || tag (16 bytes)``. The
associated data names the credential, so a sealed key copied onto another credential's
row does not open there. The store keeps only sealed keys; the data key lives in a file
of its own (``gatewayd.credentials.key_file``), so a copy of the database alone (a
backup, a support bundle) gives nobody a provider key.

A data key is named by ``key_id``: 16 hex digits of an HMAC of the key under a fixed
label, which says nothing about the key. Rows record it, so a key that does not open says
which data key sealed it, and a rotation can tell which rows to seal again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gatewayd.credentials.errors import SealError
from gatewayd.credentials.secret import Secret

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEAL_VERSION = 1
_KEY_ID_LABEL = b"clawgress credentials data key id"
_AAD_PREFIX = b"clawgress credential\x00"


class DataKey:
    """The AES-256-GCM key provider keys are sealed under."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, material: bytes) -> None:
        if len(material) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes, not {len(material)}")
        self._aead = AESGCM(material)
        self.key_id = hmac.new(material, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r})"

    def seal(self, key: Secret, credential_id: str, *,
             random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
        """``key`` sealed for ``credential_id``; ``random_bytes`` gives the nonce."""
        nonce = random_bytes(NONCE_BYTES)
        box = self._aead.encrypt(nonce, key.reveal().encode("ascii"), _aad(credential_id))
        return bytes([SEAL_VERSION]) + nonce + box

    def unseal(self, sealed: bytes, credential_id: str) -> Secret:
        """The key ``sealed`` holds for ``credential_id``; ``SealError`` if it does not open
        with this data key (another key sealed it, or it was altered)."""
        if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES or sealed[0] != SEAL_VERSION:
            raise SealError(f"credential {credential_id}: its sealed key is damaged")
        nonce, box = sealed[1:1 + NONCE_BYTES], sealed[1 + NONCE_BYTES:]
        try:
            text = self._aead.decrypt(nonce, box, _aad(credential_id))
        except InvalidTag:
            raise SealError(f"credential {credential_id}: its key does not open with data key"
                            f" {self.key_id} (sealed under another data key, or altered)"
                            ) from None
        return Secret(text.decode("ascii"))


def _aad(credential_id: str) -> bytes:
    return _AAD_PREFIX + credential_id.encode("utf-8")
