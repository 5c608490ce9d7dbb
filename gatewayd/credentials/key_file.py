"""The data key's file: created on first use, private, read with care. The IO edge of
sealing.

The file holds the 32 bytes of the key and nothing else, mode 0600. ``open_data_key``
reads it, or, when it does not exist yet and ``create`` is set, makes one: a new random
key is written to a temporary file beside it (``O_EXCL``, 0600 from the start, synced)
and linked into place, which fails if another process made the file meanwhile; that
process's key is then the one read, so two first uses at once agree on one key. A missing
parent folder is created 0700; an existing one is left as it is.

A file other users can read, a symbolic link, or a file of the wrong size is refused:
the key is what keeps every provider key in the store. Errors name the path, never the
key. Back the file up apart from the database: without it, the stored keys are lost.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from gatewayd.credentials.sealing import DATA_KEY_BYTES, DataKey
from gatewayd.errors import ClawgressError
from gatewayd.files import sync_dir

DATA_KEY_MODE = 0o600
DATA_KEY_FILE = "credentials.key"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def open_data_key(path: Path, *, create: bool = True) -> DataKey:
    """The data key in ``path``; with ``create``, a new one is made there if the file does
    not exist."""
    material = _read(path)
    if material is None:
        if not create:
            raise ClawgressError(f"{path}: no data key there (it is made when the first"
                                 " credential is added)")
        _create(path)
        material = _read(path)
        if material is None:
            raise ClawgressError(f"{path}: the data key vanished as it was made")
    return DataKey(material)


def _read(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ClawgressError(f"{path}: cannot read the data key: {exc.strerror or exc}"
                             ) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ClawgressError(f"{path}: not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise ClawgressError(f"{path}: the data key is readable by other users (mode"
                                 f" {mode:04o}); make it 0600 (chmod 600)")
        try:
            data = f.read(DATA_KEY_BYTES + 1)
        except OSError as exc:
            raise ClawgressError(f"{path}: cannot read the data key:"
                                 f" {exc.strerror or exc}") from None
    if len(data) != DATA_KEY_BYTES:
        raise ClawgressError(f"{path}: not a data key (expected {DATA_KEY_BYTES} bytes)")
    return data


def _create(path: Path) -> None:
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ClawgressError(f"{path.parent}: cannot create: {exc.strerror or exc}") from None
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(staged, _CREATE, DATA_KEY_MODE)
        try:
            os.fchmod(fd, DATA_KEY_MODE)
            data = memoryview(secrets.token_bytes(DATA_KEY_BYTES))
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(staged, path, follow_symlinks=False)
        sync_dir(path.parent)
    except OSError as exc:
        raise ClawgressError(f"{path}: cannot write the data key: {exc.strerror or exc}"
                             ) from None
    finally:
        with contextlib.suppress(OSError):
            staged.unlink()

