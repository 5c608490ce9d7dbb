"""Policy bundles: the format, its notations, and the bounds on one archive.

A bundle is a gzip-compressed tar archive of regular files::

    manifest.json      what the bundle is (``manifest.Manifest``), canonical JSON
    signature.json     optional here; an Ed25519 signature over manifest.json's exact bytes
    <path>.yaml        the policy documents the manifest lists, by relative POSIX path

This module holds what the other bundle modules share: the member names and what makes a
name clean, the notations a bundle is written in (UTC times, canonical and strict JSON,
sizes), ``BundleLimits``, and ``Archive``, the members once read. The rest is split by
role: ``manifest`` (building, parsing and checking the manifest), ``archive`` (writing the
tar.gz and reading it within bounds), ``signing`` (signatures, and ``verify_bundle``), and
``bundle_files`` (the file IO). Sans-IO.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gatewayd.config import PolicySection
from gatewayd.errors import BundleVerificationError

FORMAT = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "signature.json"
DOCUMENT_SUFFIXES = (".yaml", ".yml")
MAX_PATH_CHARS = 1024

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass(frozen=True)
class BundleLimits:
    """Bounds on one bundle archive; each exceeded bound is a refusal naming it."""

    max_bundle_bytes: int = 16 * 1024 * 1024
    max_unpacked_bytes: int = 64 * 1024 * 1024
    max_documents: int = 1000

    @classmethod
    def from_config(cls, policy: PolicySection) -> BundleLimits:
        return cls(policy.max_bundle_bytes, policy.max_unpacked_bytes, policy.max_documents)


@dataclass(frozen=True)
class Archive:
    """The members of a bundle archive, read within bounds; nothing checked beyond shape."""

    files: Mapping[str, bytes]

    @property
    def manifest_bytes(self) -> bytes | None:
        return self.files.get(MANIFEST_NAME)

    @property
    def signature_bytes(self) -> bytes | None:
        return self.files.get(SIGNATURE_NAME)

    @property
    def documents(self) -> dict[str, bytes]:
        """Every member other than the manifest and the signature."""
        return {k: v for k, v in self.files.items() if k not in (MANIFEST_NAME, SIGNATURE_NAME)}


def check_member_name(name: str) -> str | None:
    """Why ``name`` is not a clean relative POSIX path, or ``None`` if it is."""
    if not name:
        return "empty name"
    if len(name) > MAX_PATH_CHARS:
        return f"name longer than {MAX_PATH_CHARS} characters"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not UTF-8"
    if name.startswith("/"):
        return "absolute path"
    if "\\" in name:
        return "backslash in name"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "control character in name"
    parts = name.split("/")
    if ".." in parts:
        return "'..' in path"
    if any(p in ("", ".") for p in parts) or posixpath.normpath(name) != name:
        return "path is not in normal form"
    return None


def check_document_name(name: str) -> str | None:
    """Why ``name`` cannot be a policy document's path, or ``None`` if it can."""
    problem = check_member_name(name)
    if problem:
        return problem
    if name in (MANIFEST_NAME, SIGNATURE_NAME) or not name.endswith(DOCUMENT_SUFFIXES):
        return "not a *.yaml or *.yml name"
    return None


def quote_name(name: str) -> str:
    """A member name as error messages show it: bare when printable, else ``repr``."""
    return name if name.isprintable() and " " not in name else repr(name)


def size_text(n: int) -> str:
    """``67108864`` → ``64 MiB``; bounds read better in binary units."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def format_timestamp(ts: float) -> str:
    """Seconds since the epoch → ``2026-03-01T12:00:00Z`` (whole seconds, UTC)."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> float:
    """``2026-03-01T12:00:00Z`` → seconds since the epoch; ``ValueError`` for anything else."""
    if not _TIMESTAMP.match(text):
        raise ValueError(f"{text!r} is not an ISO-8601 UTC time such as 2026-03-01T12:00:00Z")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a JSON member (sorted keys, two-space indent, ASCII)."""
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("ascii")


def load_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Strict JSON: UTF-8, one object, no duplicate keys, no NaN; else a refusal."""
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleVerificationError(f"{what}: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BundleVerificationError(f"{what}: expected a JSON object")
    return value


def check_fields(raw: Mapping[str, Any], fields: Set[str], what: str) -> None:
    """Refuse a JSON object that lacks one of ``fields`` or has any other."""
    missing = sorted(fields - raw.keys())
    if missing:
        raise BundleVerificationError(f"{what}: missing field {', '.join(missing)}")
    extra = sorted(raw.keys() - fields)
    if extra:
        raise BundleVerificationError(f"{what}: unknown field {', '.join(extra)}")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
