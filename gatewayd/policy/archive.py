"""A bundle's tar.gz: packing it deterministically, and reading it within bounds.

``build_bundle`` packs documents and their manifest; ``write_archive`` gives the same bytes
for the same members. ``read_archive`` takes an archive's bytes and refuses, before
reading past them, anything beyond the bounds in ``BundleLimits``: compressed size,
decompressed size (counted while streaming, so a compression bomb is stopped without
being expanded), member count. Members must be regular files with clean relative names,
each once. What the members say is ``manifest``'s business. Sans-IO.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Mapping

from gatewayd.errors import BundleVerificationError
from gatewayd.policy.bundle import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Archive,
    BundleLimits,
    check_member_name,
    quote_name,
    size_text,
)
from gatewayd.policy.manifest import Manifest, build_manifest

# How much decompressed data is pulled from the gzip stream at a time.
READ_CHUNK = 64 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error, UnicodeError, ValueError)
# Plain regular files only: not GNU sparse or contiguous files, whose contents are not
# simply the bytes that follow their header.
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)


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
                    raise BundleVerificationError(f"member {quote_name(name)}: {problem}")
                if member.isdir():
                    continue
                if member.type not in _REGULAR:
                    raise BundleVerificationError(
                        f"member {quote_name(name)}: {_kind(member)}, not a regular file"
                    )
                if name in seen:
                    raise BundleVerificationError(f"member {quote_name(name)} appears twice")
                seen.add(name)
                if len(seen) - len(seen & {MANIFEST_NAME, SIGNATURE_NAME}) > limits.max_documents:
                    raise BundleVerificationError(
                        f"more than {limits.max_documents} documents (policy.max_documents)"
                    )
                if member.size > reader.remaining():
                    raise BundleVerificationError(
                        f"archive expands past {size_text(limits.max_unpacked_bytes)}"
                        f" (member {quote_name(name)} of {member.size} bytes does not fit)"
                    )
                extracted = tar.extractfile(member)
                assert extracted is not None
                content = extracted.read()
                if len(content) != member.size:
                    raise BundleVerificationError(
                        f"corrupt or truncated archive: {quote_name(name)} is cut short"
                    )
                files[name] = content
        # Past the archive's last record only zero padding may follow; reading to the end
        # also makes gzip check its trailer (CRC and length).
        while chunk := reader.read(READ_CHUNK):
            if chunk.count(0) != len(chunk):
                raise BundleVerificationError("corrupt archive: data after the end of the archive")
    return Archive(files)


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link to {quote_name(member.linkname)}"
    if member.islnk():
        return f"hard link to {quote_name(member.linkname)}"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    if member.issparse():
        return "sparse file"
    return f"member of type {member.type!r}"
