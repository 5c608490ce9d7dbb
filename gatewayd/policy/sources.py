"""Reading policy documents from files and folders (the IO edge of ``documents``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gatewayd.errors import PolicyError

POLICY_SUFFIXES = (".yaml", ".yml")
MAX_POLICY_FILE_BYTES = 8 * 1024 * 1024


def read_policy_files(paths: Iterable[str | Path]) -> dict[str, bytes]:
    """``{name: bytes}`` for each file given and each ``*.yaml``/``*.yml`` under each folder.

    Names are the paths as given (files) or relative to the folder (folder contents), so
    error messages point at what the operator typed.
    """
    files: dict[str, bytes] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in POLICY_SUFFIXES
                           and p.is_file())
            if not found:
                raise PolicyError(f"{path}: no *.yaml or *.yml files in this folder")
            for p in found:
                files[str(p)] = _read(p)
        elif path.exists():
            files[str(path)] = _read(path)
        else:
            raise PolicyError(f"{path}: no such file or folder")
    return files


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_FILE_BYTES:
            raise PolicyError(f"{path}: larger than {MAX_POLICY_FILE_BYTES // (1024 * 1024)} MiB")
        return path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from None
