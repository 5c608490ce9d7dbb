from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gatewayd import files
from gatewayd.errors import ClawgressError


def test_staged_file_is_private_until_complete(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = files._write_all

    def spy(fd: int, data: bytes) -> None:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real(fd, data)

    monkeypatch.setattr(files, "_write_all", spy)
    old = os.umask(0)
    try:
        staged = files.stage_file(tmp_path / "x.crt", b"public", mode=0o644)
    finally:
        os.umask(old)
    assert seen == [0o600]
    assert stat.S_IMODE(staged.stat().st_mode) == 0o644
    assert staged.parent == tmp_path
    assert staged.name.startswith(".x.crt.")
    files.install_file(staged, tmp_path / "x.crt", replace=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.crt"]


def test_install_without_replace_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "ca.key"
    target.write_bytes(b"original")
    staged = files.stage_file(target, b"new", mode=0o600)
    with pytest.raises(ClawgressError, match="already exists"):
        files.install_file(staged, target, replace=False)
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key"]


def test_write_file_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out.pem"
    target.write_bytes(b"old")
    files.write_file(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(ClawgressError, match="cannot write"):
        files.write_file(tmp_path / "missing" / "out.pem", b"x", mode=0o644)


def test_private_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(ClawgressError, match="f: cannot create"):
        files.ensure_private_dir(tmp_path / "f")
