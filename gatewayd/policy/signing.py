"""Ed25519 keys, bundle signatures, and the full verification of a bundle.

A signature block (``signature.json`` in the archive) is exactly::

    {"algorithm": "ed25519", "key_id": "<16 hex>", "signed": "manifest.json",
     "signature": "<base64 of 64 bytes>"}

over the exact bytes of ``manifest.json``; the manifest lists every document's sha256,
so one signature covers the whole bundle. A key's id is the first 16 hex characters of
the sha256 of its raw 32-byte public key.

``verify_bundle`` is the one entry point that decides whether a bundle may be used:
archive bounds and shape, signature (when required), manifest, listing and hashes,
expiry. It takes bytes, keys and ``now``; reading key files is ``read_trusted_keys``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gatewayd.errors import BundleVerificationError, PolicyError
from gatewayd.policy.archive import read_archive, replace_signature
from gatewayd.policy.bundle import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Archive,
    BundleLimits,
    canonical_json,
    check_fields,
    load_json_object,
    sha256_hex,
)
from gatewayd.policy.manifest import Manifest, check_integrity, parse_manifest, require_manifest

ALGORITHM = "ed25519"
SIGNATURE_FIELDS = frozenset({"algorithm", "key_id", "signed", "signature"})
MAX_KEY_FILE_BYTES = 64 * 1024
MAX_SIGNATURE_BYTES = 4096

_KEY_ID = re.compile(r"^[0-9a-f]{16}$")

TrustedKeys = Mapping[str, Ed25519PublicKey]


# --- keys -----------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)[:16]


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes, source: str) -> Ed25519PrivateKey:
    """An unencrypted PKCS8 Ed25519 private key; the error never quotes the key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise PolicyError(f"{source}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PolicyError(f"{source}: not an Ed25519 key")
    return key


def load_public_key(pem: bytes, source: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BundleVerificationError(f"{source}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleVerificationError(f"{source}: not an Ed25519 public key")
    return key


def trusted_keys(keys: Sequence[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """Keys by id."""
    return {key_id(k): k for k in keys}


def read_key_file(path: Path) -> bytes:
    """A key file's bytes (bounded); unreadable files are refused by name."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise BundleVerificationError(f"key {path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise BundleVerificationError(f"key {path}: too large to be a key")
    return data


def read_trusted_keys(paths: Sequence[Path]) -> dict[str, Ed25519PublicKey]:
    """The public keys in ``paths`` (``policy.trusted_keys``), by key id.

    A private key file given by mistake is refused rather than used.
    """
    return trusted_keys([load_public_key(read_key_file(p), f"key {p}") for p in paths])


# --- signature blocks -----------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureBlock:
    algorithm: str
    key_id: str
    signed: str
    signature: bytes

    def encode(self) -> bytes:
        body = {
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signed": self.signed,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }
        return canonical_json(body)


def sign_manifest(manifest_bytes: bytes, key: Ed25519PrivateKey) -> SignatureBlock:
    return SignatureBlock(ALGORITHM, key_id(key.public_key()), MANIFEST_NAME,
                          key.sign(manifest_bytes))


def parse_signature_block(data: bytes) -> SignatureBlock:
    """The block in ``data``; every field is required, no other is allowed."""
    where = SIGNATURE_NAME
    if len(data) > MAX_SIGNATURE_BYTES:
        raise BundleVerificationError(f"{where}: too large to be a signature block")
    raw = load_json_object(data, where)
    check_fields(raw, SIGNATURE_FIELDS, where)
    for field in sorted(SIGNATURE_FIELDS):
        if not isinstance(raw[field], str):
            raise BundleVerificationError(f"{where}: {field}: expected a string")
    if raw["algorithm"] != ALGORITHM:
        raise BundleVerificationError(
            f"{where}: algorithm {raw['algorithm']!r} is not supported (only {ALGORITHM})"
        )
    if raw["signed"] != MANIFEST_NAME:
        raise BundleVerificationError(
            f"{where}: signed: must be {MANIFEST_NAME}, not {raw['signed']!r}"
        )
    if not _KEY_ID.match(raw["key_id"]):
        raise BundleVerificationError(f"{where}: key_id: expected 16 lower-case hex digits")
    try:
        signature = base64.b64decode(raw["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise BundleVerificationError(f"{where}: signature: not base64") from None
    if len(signature) != 64:
        raise BundleVerificationError(f"{where}: signature: not an Ed25519 signature")
    return SignatureBlock(raw["algorithm"], raw["key_id"], raw["signed"], signature)


def check_signature(archive: Archive, manifest_bytes: bytes, keys: TrustedKeys) -> str:
    """The id of the trusted key that signed ``manifest_bytes``, or a refusal."""
    if not keys:
        raise BundleVerificationError(
            "no trusted keys configured (policy.trusted_keys): cannot verify a signed bundle;"
            " add the publisher's public key, or set policy.require_signature: false"
        )
    data = archive.signature_bytes
    if data is None:
        raise BundleVerificationError(f"bundle is not signed (no {SIGNATURE_NAME})")
    block = parse_signature_block(data)
    key = keys.get(block.key_id)
    if key is None:
        raise BundleVerificationError(f"signed by key {block.key_id}, which is not a trusted key")
    try:
        key.verify(block.signature, manifest_bytes)
    except InvalidSignature:
        raise BundleVerificationError(
            f"signature does not verify with key {block.key_id}"
        ) from None
    return block.key_id


# --- whole bundles --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that passed every check; ``key_id`` is ``None`` when signatures are off."""

    manifest: Manifest
    documents: dict[str, bytes]
    key_id: str | None
    sha256: str

    @property
    def version(self) -> int:
        return self.manifest.version

    def expired(self, now: float) -> bool:
        return self.manifest.expired(now)


def verify_bundle(
    data: bytes,
    *,
    keys: TrustedKeys,
    limits: BundleLimits,
    now: float,
    require_signature: bool = True,
    allow_expired: bool = False,
) -> VerifiedBundle:
    """Every check a bundle must pass before it is used; raises ``BundleVerificationError``.

    Order: archive bounds and shape, signature over the manifest bytes (when required),
    manifest fields, listing and hashes of the documents, expiry (unless
    ``allow_expired``, for callers that apply their own expiry policy).
    """
    archive = read_archive(data, limits)
    manifest_bytes = require_manifest(archive)
    signer = check_signature(archive, manifest_bytes, keys) if require_signature else None
    manifest = parse_manifest(manifest_bytes)
    documents = check_integrity(archive, manifest)
    if not allow_expired and manifest.expired(now):
        raise BundleVerificationError(f"bundle expired at {manifest.expires_at}")
    return VerifiedBundle(manifest, documents, signer, sha256_hex(data))


def sign_bundle(
    data: bytes, key: Ed25519PrivateKey, *, limits: BundleLimits, now: float
) -> bytes:
    """``data`` with a signature by ``key`` (replacing any other).

    Only an intact, unexpired bundle is signed: its integrity is checked first.
    """
    archive = read_archive(data, limits)
    manifest_bytes = require_manifest(archive)
    manifest = parse_manifest(manifest_bytes)
    check_integrity(archive, manifest)
    if manifest.expired(now):
        raise BundleVerificationError(f"bundle expired at {manifest.expires_at}")
    block = sign_manifest(manifest_bytes, key)
    return replace_signature(archive, block.encode(), manifest)
