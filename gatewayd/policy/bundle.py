"""Policy bundles: the archive format, its manifest, and reading it within bounds.

A bundle is a gzip-compressed tar archive of regular files::

    manifest.json      what the bundle is (see ``Manifest``), canonical JSON
    signature.json     optional here; an Ed25519 signature over manifest.json's exact bytes
    <path>.yaml        the policy documents the manifest lists, by relative POSIX path

``read_archive`` takes the archive's bytes and refuses, before reading past them, anything
beyond the bounds in ``BundleLimits``: compressed size, decompressed size (counted while
streaming, so a compression bomb is stopped without being expanded), member count. Members
must be regular files with clean relative names, each once. ``check_integrity`` then ties
the archive to its manifest: every document listed, present and with the listed sha256.
Signatures are ``gatewayd.policy.signing``'s business.

Sans-IO apart from ``read_bundle_file`` and ``write_bundle_file`` at the end.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gatewayd.config import PolicySection
from gatewayd.errors import BundleVerificationError, PolicyError

FORMAT = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "signature.json"
DOCUMENT_SUFFIXES = (".yaml", ".yml")
MANIFEST_FIELDS = frozenset({"format", "version", "created_at", "expires_at", "documents"})
DOCUMENT_FIELDS = frozenset({"path", "sha256"})
# Bounds on the parts of a manifest, whatever the configured archive limits.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_PATH_CHARS = 1024
# How much decompressed data is pulled from the gzip stream at a time.
READ_CHUNK = 64 * 1024

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GZIP_MAGIC = b"\x1f\x8b"


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
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode("ascii")


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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


def _quote(name: str) -> str:
    return name if name.isprintable() and " " not in name else repr(name)


# --- building -------------------------------------------------------------------------------


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
        problem = check_member_name(path)
        if problem:
            raise BundleVerificationError(f"document {_quote(path)}: {problem}")
        if path in (MANIFEST_NAME, SIGNATURE_NAME) or not path.endswith(DOCUMENT_SUFFIXES):
            raise BundleVerificationError(f"document {_quote(path)}: not a *.yaml or *.yml name")
        entries.append(DocumentEntry(path, sha256_hex(documents[path])))
    return Manifest(
        format=FORMAT,
        version=version,
        created_at=format_timestamp(created_at),
        expires_at=format_timestamp(expires_at),
        documents=tuple(entries),
    )


def write_archive(files: Mapping[str, bytes], *, mtime: int) -> bytes:
    """A deterministic gzip'd tar of ``files``: manifest, signature, then the rest sorted.

    Owner 0:0 without names, mode 0644, the given mtime, gzip header time 0: the same
    members always give the same bytes.
    """
    order = [n for n in (MANIFEST_NAME, SIGNATURE_NAME) if n in files]
    order += sorted(n for n in files if n not in (MANIFEST_NAME, SIGNATURE_NAME))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in order:
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_bundle(
    documents: Mapping[str, bytes], *, version: int, created_at: float, expires_at: float
) -> bytes:
    """An unsigned bundle of ``documents``; deterministic for the same inputs and times."""
    manifest = build_manifest(
        documents, version=version, created_at=created_at, expires_at=expires_at
    )
    files = {MANIFEST_NAME: manifest.encode(), **documents}
    return write_archive(files, mtime=int(created_at))


def replace_signature(archive: Archive, signature: bytes, manifest: Manifest) -> bytes:
    """The same bundle with ``signature`` as its signature.json (any previous one dropped)."""
    files = dict(archive.files)
    files[SIGNATURE_NAME] = signature
    return write_archive(files, mtime=int(manifest.created_ts))


# --- reading --------------------------------------------------------------------------------


class _BoundedReader:
    """A read-only stream of decompressed data that refuses to yield more than ``limit`` bytes.

    It has the shape of a file for ``tarfile`` in stream mode (``r|``), which only reads.
    """

    def __init__(self, source: gzip.GzipFile, limit: int) -> None:
        self._source = source
        self._limit = limit
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        want = READ_CHUNK if size < 0 else min(size, READ_CHUNK)
        data = self._source.read(want)
        self.count += len(data)
        if self.count > self._limit:
            raise BundleVerificationError(f"archive expands past {size_text(self._limit)}")
        return data

    def remaining(self) -> int:
        return self._limit - self.count

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("bundle archives are read as a stream")

    def write(self, b: bytes, /) -> int:
        raise io.UnsupportedOperation("bundle archives are read as a stream")

    def close(self) -> None:
        pass


_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error, UnicodeError, ValueError)


def read_archive(data: bytes, limits: BundleLimits) -> Archive:
    """The members of bundle ``data``, or ``BundleVerificationError`` saying why not.

    Checks, in order of cost: compressed size, gzip magic, then per member while
    streaming: type (regular files; directories are skipped, anything else refused),
    name, duplicates, count, declared size against what is left of the decompressed
    budget; the decompressed byte count is enforced on every read.
    """
    if len(data) > limits.max_bundle_bytes:
        raise BundleVerificationError(
            f"bundle is {len(data)} bytes, more than the {size_text(limits.max_bundle_bytes)}"
            " limit (policy.max_bundle_bytes)"
        )
    if not data.startswith(_GZIP_MAGIC):
        raise BundleVerificationError("not a bundle: not gzip-compressed")
    try:
        return _read_members(data, limits)
    except BundleVerificationError:
        raise
    except _CORRUPT as exc:
        detail = str(exc) or type(exc).__name__
        raise BundleVerificationError(f"corrupt or truncated archive: {detail}") from None


def _read_members(data: bytes, limits: BundleLimits) -> Archive:
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as gz:
        reader = _BoundedReader(gz, limits.max_unpacked_bytes)
        with tarfile.open(
            fileobj=reader, mode="r|", encoding="utf-8", errors="surrogateescape"
        ) as tar:
            for member in tar:
                name = member.name
                problem = check_member_name(name.rstrip("/") if member.isdir() else name)
                if problem:
                    raise BundleVerificationError(f"member {_quote(name)}: {problem}")
                if member.isdir():
                    continue
                if member.type not in _REGULAR:
                    raise BundleVerificationError(
                        f"member {_quote(name)}: {_kind(member)}, not a regular file"
                    )
                if name in seen:
                    raise BundleVerificationError(f"member {_quote(name)} appears twice")
                seen.add(name)
                if len(seen) - len(seen & {MANIFEST_NAME, SIGNATURE_NAME}) > limits.max_documents:
                    raise BundleVerificationError(
                        f"more than {limits.max_documents} documents (policy.max_documents)"
                    )
                if member.size > reader.remaining():
                    raise BundleVerificationError(
                        f"archive expands past {size_text(limits.max_unpacked_bytes)}"
                        f" (member {_quote(name)} of {member.size} bytes does not fit)"
                    )
                extracted = tar.extractfile(member)
                assert extracted is not None
                content = extracted.read()
                if len(content) != member.size:
                    raise BundleVerificationError(
                        f"corrupt or truncated archive: {_quote(name)} is cut short"
                    )
                files[name] = content
        # Past the archive's last record only zero padding may follow; reading to the end
        # also makes gzip check its trailer (CRC and length).
        while chunk := reader.read(READ_CHUNK):
            if chunk.count(0) != len(chunk):
                raise BundleVerificationError("corrupt archive: data after the end of the archive")
    return Archive(files)


# Plain regular files only: not GNU sparse or contiguous files, whose contents are not
# simply the bytes that follow their header.
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link to {_quote(member.linkname)}"
    if member.islnk():
        return f"hard link to {_quote(member.linkname)}"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    if member.issparse():
        return "sparse file"
    return f"member of type {member.type!r}"


# --- manifest -------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


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


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data``; every field is required and no other is allowed."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleVerificationError(
            f"{MANIFEST_NAME}: larger than {size_text(MAX_MANIFEST_BYTES)}"
        )
    raw = load_json_object(data, MANIFEST_NAME)
    missing = sorted(MANIFEST_FIELDS - raw.keys())
    if missing:
        raise BundleVerificationError(f"{MANIFEST_NAME}: missing field {', '.join(missing)}")
    extra = sorted(raw.keys() - MANIFEST_FIELDS)
    if extra:
        raise BundleVerificationError(f"{MANIFEST_NAME}: unknown field {', '.join(extra)}")
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
        problem = check_member_name(path)
        if problem:
            raise BundleVerificationError(f"{where}[{i}].path {_quote(path)}: {problem}")
        if path in (MANIFEST_NAME, SIGNATURE_NAME) or not path.endswith(DOCUMENT_SUFFIXES):
            raise BundleVerificationError(
                f"{where}[{i}].path {_quote(path)}: not a *.yaml or *.yml name"
            )
        if path in seen:
            raise BundleVerificationError(f"{where}: {_quote(path)} is listed twice")
        seen.add(path)
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise BundleVerificationError(
                f"{where}[{i}].sha256: expected 64 lower-case hex digits"
            )
        entries.append(DocumentEntry(path, digest))
    return tuple(entries)


def check_integrity(archive: Archive, manifest: Manifest) -> dict[str, bytes]:
    """The listed documents (path → bytes) once each is present, listed and hashes right."""
    listed = {d.path: d.sha256 for d in manifest.documents}
    present = archive.documents
    for name in sorted(present):
        if name not in listed:
            raise BundleVerificationError(f"unlisted file {_quote(name)}")
    for entry in manifest.documents:
        content = present.get(entry.path)
        if content is None:
            raise BundleVerificationError(f"{_quote(entry.path)}: listed but missing")
        if sha256_hex(content) != entry.sha256:
            raise BundleVerificationError(f"{_quote(entry.path)}: sha256 mismatch")
    return {d.path: present[d.path] for d in manifest.documents}


def require_manifest(archive: Archive) -> bytes:
    data = archive.manifest_bytes
    if data is None:
        raise BundleVerificationError(f"not a bundle: no {MANIFEST_NAME}")
    return data


# --- files (IO) -----------------------------------------------------------------------------


def read_bundle_file(path: Path, limits: BundleLimits) -> bytes:
    """A bundle file's bytes; its size is checked before it is read."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limits.max_bundle_bytes:
                raise BundleVerificationError(
                    f"{path}: {size} bytes, more than the {size_text(limits.max_bundle_bytes)}"
                    " limit (policy.max_bundle_bytes)"
                )
            data = f.read(limits.max_bundle_bytes + 1)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limits.max_bundle_bytes:
        raise BundleVerificationError(
            f"{path}: more than the {size_text(limits.max_bundle_bytes)} limit"
            " (policy.max_bundle_bytes)"
        )
    return data


def stage_file(path: Path, data: bytes, *, mode: int) -> Path:
    """Write ``data`` to a new temporary file beside ``path``, fsync it, and give its name.

    Missing parent folders are created (0750). The file is created 0600 and set to
    ``mode`` once complete. ``install_file`` puts it in place; ``discard_file`` drops it.
    """
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise PolicyError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return Path(tmp)


def install_file(staged: Path, path: Path) -> None:
    """Rename ``staged`` over ``path`` (atomic) and fsync the folder so the rename lasts."""
    try:
        os.replace(staged, path)
        dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except OSError as exc:
        _unlink_quietly(str(staged))
        raise PolicyError(f"{path}: cannot write: {exc.strerror or exc}") from None


def discard_file(staged: Path) -> None:
    _unlink_quietly(str(staged))


def write_bundle_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new one."""
    install_file(stage_file(path, data, mode=mode), path)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
