"""Bundle files on disk: reading one within its size bound, writing one atomically.

The IO edge of the bundle modules. ``read_bundle_file`` checks a file's size before it is
read. Writing is staged: ``stage_file`` writes and fsyncs a temporary file beside the
target, ``install_file`` renames it into place, ``discard_file`` drops it, so a caller can
do other work (such as recording the bundle in the store) between the two;
``write_bundle_file`` does both at once. OS errors become ``PolicyError`` naming the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from gatewayd.errors import BundleVerificationError, PolicyError
from gatewayd.policy.bundle import BundleLimits, size_text


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
