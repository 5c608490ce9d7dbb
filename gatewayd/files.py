"""Private files the gateway keeps on disk (the CA's key and certificate, the DLP hash
key, the credentials' data key): bounded reads, and writes that are atomic and private.

An IO edge. A write is staged: ``stage_file`` creates a temporary file beside
the target with ``O_EXCL`` and mode 0600, writes and fsyncs it, then sets its final mode;
``install_file`` renames it into place (or, when the target must not be replaced, links it
there, which fails if the target exists) and fsyncs the folder; ``discard_file`` drops it.
A failure at any step leaves the target as it was and no temporary file behind. OS errors
become ``ClawgressError`` naming the path and never quoting what was being written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from gatewayd.errors import ClawgressError

# A PEM key or certificate is a few KiB, a raw key less; anything larger is not one.
MAX_FILE_BYTES = 64 * 1024
PRIVATE_DIR_MODE = 0o700
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and its parents) if missing, and make it 0700."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        st = directory.stat()
        if not stat.S_ISDIR(st.st_mode):
            raise ClawgressError(f"{directory}: not a folder")
        if stat.S_IMODE(st.st_mode) != PRIVATE_DIR_MODE:
            directory.chmod(PRIVATE_DIR_MODE)
    except OSError as exc:
        raise ClawgressError(f"{directory}: cannot create: {exc.strerror or exc}") from None


def read_file(path: Path) -> bytes | None:
    """The bytes of ``path`` (at most ``MAX_FILE_BYTES``), or ``None`` if it does not exist.

    Symbolic links are not followed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ClawgressError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ClawgressError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ClawgressError(f"{path}: larger than {MAX_FILE_BYTES} bytes; "
                             "not a key or certificate")
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def stage_file(path: Path, data: bytes, *, mode: int) -> Path:
    """Write ``data`` to a new temporary file beside ``path``; returns its name.

    The file is created exclusively with mode 0600 (never readable by others, whatever the
    umask, even while incomplete) and set to ``mode`` once written and synced.
    """
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(staged, _CREATE, 0o600)
    except OSError as exc:
        raise ClawgressError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        try:
            os.fchmod(fd, 0o600)
            _write_all(fd, data)
            os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except OSError as exc:
        discard_file(staged)
        raise ClawgressError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return staged


def install_file(staged: Path, path: Path, *, replace: bool) -> None:
    """Put ``staged`` in place as ``path``: atomically replacing it, or, with ``replace``
    false, only if ``path`` does not exist. ``staged`` is gone afterwards either way."""
    try:
        if replace:
            os.replace(staged, path)
        else:
            os.link(staged, path, follow_symlinks=False)
            discard_file(staged)
        sync_dir(path.parent)
    except FileExistsError:
        discard_file(staged)
        raise ClawgressError(f"{path} already exists; not overwriting it") from None
    except OSError as exc:
        discard_file(staged)
        raise ClawgressError(f"{path}: cannot write: {exc.strerror or exc}") from None


def discard_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def remove_file(path: Path) -> None:
    """Remove ``path`` if it exists."""
    try:
        discard_file(path)
    except OSError as exc:
        raise ClawgressError(f"{path}: cannot remove: {exc.strerror or exc}") from None


def write_file(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new one."""
    install_file(stage_file(path, data, mode=mode), path, replace=True)


def sync_dir(directory: Path) -> None:
    """fsync ``directory`` so renames in it survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
