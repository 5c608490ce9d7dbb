"""A bundle's manifest: building it, parsing it strictly, and checking an archive against it.

``manifest.json`` says what a bundle is: its format, version, creation and expiry times,
and every policy document by path with its sha256. ``build_manifest`` writes one for a set
of documents; ``parse_manifest`` reads one, every field required and no other allowed;
``check_integrity`` ties an archive to its manifest: every document listed, present and
with the listed sha256. Sans-IO.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gatewayd.errors import BundleVerificationError
from gatewayd.policy.bundle import (
    FORMAT,
    MANIFEST_NAME,
    Archive,
    canonical_json,
    check_document_name,
    check_fields,
    format_timestamp,
    load_json_object,
    parse_timestamp,
    quote_name,
    sha256_hex,
    size_text,
)

MANIFEST_FIELDS = frozenset({"format", "version", "created_at", "expires_at", "documents"})
DOCUMENT_FIELDS = frozenset({"path", "sha256"})
# Bound on a manifest's size, whatever the configured archive limits.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class DocumentEntry:
    path: str
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a bundle says it is. Times are ISO-8601 UTC strings as written."""

    format: int
    version: int
    created_at: str
    expires_at: str
    documents: tuple[DocumentEntry, ...]

    @property
    def expires_ts(self) -> float:
        return parse_timestamp(self.expires_at)

    @property
    def created_ts(self) -> float:
        return parse_timestamp(self.created_at)

    def expired(self, now: float) -> bool:
        return self.expires_ts <= now

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "documents": [{"path": d.path, "sha256": d.sha256} for d in self.documents],
        }

    def encode(self) -> bytes:
        """The canonical bytes of this manifest (sorted keys, two-space indent, ASCII)."""
        return canonical_json(self.to_json())


def build_manifest(
    documents: Mapping[str, bytes], *, version: int, created_at: float, expires_at: float
) -> Manifest:
    """The manifest of ``documents`` (path → bytes); raises on a bad path, version or time."""
    if isinstance(version, bool) or version <= 0:
        raise BundleVerificationError(f"bundle version must be a positive integer, got {version}")
    if int(expires_at) <= int(created_at):
        raise BundleVerificationError("a bundle must expire after it is created")
    if not documents:
        raise BundleVerificationError("a bundle needs at least one policy document")
    entries = []
    for path in sorted(documents):
        problem = check_document_name(path)
        if problem:
            raise BundleVerificationError(f"document {quote_name(path)}: {problem}")
        entries.append(DocumentEntry(path, sha256_hex(documents[path])))
    return Manifest(
        format=FORMAT,
        version=version,
        created_at=format_timestamp(created_at),
        expires_at=format_timestamp(expires_at),
        documents=tuple(entries),
    )


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data``; every field is required and no other is allowed."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleVerificationError(
            f"{MANIFEST_NAME}: larger than {size_text(MAX_MANIFEST_BYTES)}"
        )
    raw = load_json_object(data, MANIFEST_NAME)
    check_fields(raw, MANIFEST_FIELDS, MANIFEST_NAME)
    fmt = _int_field(raw, "format")
    if fmt != FORMAT:
        raise BundleVerificationError(
            f"{MANIFEST_NAME}: format {fmt} is not supported (this Clawgress reads {FORMAT})"
        )
    version = _int_field(raw, "version")
    if version <= 0:
        raise BundleVerificationError(f"{MANIFEST_NAME}: version must be positive")
    created_at = _time_field(raw, "created_at")
    expires_at = _time_field(raw, "expires_at")
    if parse_timestamp(expires_at) <= parse_timestamp(created_at):
        raise BundleVerificationError(f"{MANIFEST_NAME}: expires_at is not after created_at")
    return Manifest(fmt, version, created_at, expires_at, _documents(raw["documents"]))


def _int_field(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise BundleVerificationError(f"{MANIFEST_NAME}: {key}: expected an integer")
    return value


def _time_field(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str):
        raise BundleVerificationError(f"{MANIFEST_NAME}: {key}: expected an ISO-8601 UTC time")
    try:
        parse_timestamp(value)
    except ValueError as exc:
        raise BundleVerificationError(f"{MANIFEST_NAME}: {key}: {exc}") from None
    return value


def _documents(value: Any) -> tuple[DocumentEntry, ...]:
    where = f"{MANIFEST_NAME}: documents"
    if not isinstance(value, list):
        raise BundleVerificationError(f"{where}: expected a list")
    if not value:
        raise BundleVerificationError(f"{where}: empty (a bundle needs at least one document)")
    entries: list[DocumentEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, dict) or item.keys() != DOCUMENT_FIELDS:
            raise BundleVerificationError(f"{where}[{i}]: expected exactly path and sha256")
        path, digest = item["path"], item["sha256"]
        if not isinstance(path, str):
            raise BundleVerificationError(f"{where}[{i}].path: expected a string")
        problem = check_document_name(path)
        if problem:
            raise BundleVerificationError(f"{where}[{i}].path {quote_name(path)}: {problem}")
        if path in seen:
            raise BundleVerificationError(f"{where}: {quote_name(path)} is listed twice")
        seen.add(path)
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise BundleVerificationError(
                f"{where}[{i}].sha256: expected 64 lower-case hex digits"
            )
        entries.append(DocumentEntry(path, digest))
    return tuple(entries)


def require_manifest(archive: Archive) -> bytes:
    data = archive.manifest_bytes
    if data is None:
        raise BundleVerificationError(f"not a bundle: no {MANIFEST_NAME}")
    return data


def check_integrity(archive: Archive, manifest: Manifest) -> dict[str, bytes]:
    """The listed documents (path → bytes) once each is present, listed and hashes right."""
    listed = {d.path: d.sha256 for d in manifest.documents}
    present = archive.documents
    for name in sorted(present):
        if name not in listed:
            raise BundleVerificationError(f"unlisted file {quote_name(name)}")
    for entry in manifest.documents:
        content = present.get(entry.path)
        if content is None:
            raise BundleVerificationError(f"{quote_name(entry.path)}: listed but missing")
        if sha256_hex(content) != entry.sha256:
            raise BundleVerificationError(f"{quote_name(entry.path)}: sha256 mismatch")
    return {d.path: present[d.path] for d in manifest.documents}
