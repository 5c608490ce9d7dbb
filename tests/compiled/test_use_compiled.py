"""Which modules run: the compiled ones only while they were built from the sources as they
are, for this interpreter (``gatewayd.compiled``). A fake package stands in for a build:
these tests are about the choice, not about mypyc."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gatewayd import compiled
from gatewayd.compiled import (
    GROUP,
    NATIVE_DIR,
    PURE_ENV,
    RECORD,
    build_record,
    extension_suffix,
    use_compiled,
)

PACKAGE = "fakepkg"
MODULES = ("alpha", "beta")


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package whose two modules were 'compiled' (files with the extension suffix) from
    their sources as they are."""
    monkeypatch.setitem(compiled.COMPILED, PACKAGE, MODULES)
    monkeypatch.delenv(PURE_ENV, raising=False)
    for m in MODULES:
        (tmp_path / f"{m}.py").write_text(f"NAME = {m!r}\n")
    native = tmp_path / NATIVE_DIR
    native.mkdir()
    for name in (*MODULES, f"{GROUP}__mypyc"):
        (native / f"{name}{extension_suffix()}").write_bytes(b"")
    record = build_record(tmp_path, "0")
    (native / RECORD).write_text(json.dumps(record))
    return tmp_path


def test_compiled_modules_go_first_when_they_match(package: Path) -> None:
    path = [str(package)]
    assert use_compiled(PACKAGE, path) == "compiled"
    assert path == [str(package / NATIVE_DIR), str(package)]
    assert compiled.STATUS[PACKAGE] == "compiled"


def test_an_edited_source_means_python(package: Path) -> None:
    (package / "beta.py").write_text("NAME = 'edited'\n")
    path = [str(package)]
    assert use_compiled(PACKAGE, path) == "python (changed since compiled: beta)"
    assert path == [str(package)]


def test_a_module_they_were_compiled_against_counts_too(package: Path) -> None:
    """A module of the package that is not compiled but that compiled ones import (its
    types, its constants) was part of the build: changed, the Python modules run."""
    (package / "gamma.py").write_text("LIMIT = 1\n")
    path = [str(package)]
    assert use_compiled(PACKAGE, path) == "python (changed since compiled: gamma)"
    assert path == [str(package)]


def test_another_interpreter_means_python(package: Path) -> None:
    record = json.loads((package / NATIVE_DIR / RECORD).read_text())
    record["extension_suffix"] = ".cpython-399-x86_64-linux-gnu.so"
    (package / NATIVE_DIR / RECORD).write_text(json.dumps(record))
    path = [str(package)]
    assert use_compiled(PACKAGE, path) == "python (compiled for another interpreter)"
    assert path == [str(package)]


def test_a_missing_module_or_record_means_python(package: Path) -> None:
    (package / NATIVE_DIR / f"{GROUP}__mypyc{extension_suffix()}").unlink()
    path = [str(package)]
    assert use_compiled(PACKAGE, path) == "python (a compiled module is missing)"
    (package / NATIVE_DIR / RECORD).unlink()
    assert use_compiled(PACKAGE, path) == "python (not compiled: see tools/native.py)"
    (package / NATIVE_DIR / RECORD).write_text("{not json")
    assert use_compiled(PACKAGE, path).startswith("python (unreadable build record")
    assert path == [str(package)]


def test_the_environment_can_ask_for_python(package: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PURE_ENV, "1")
    path = [str(package)]
    assert use_compiled(PACKAGE, path) == f"python ({PURE_ENV} is set)"
    assert path == [str(package)]
    monkeypatch.setenv(PURE_ENV, "0")
    assert use_compiled(PACKAGE, path) == "compiled"


@pytest.mark.parametrize(("runs", "level", "message"), [
    ("compiled", logging.INFO, "fake path: compiled"),
    (f"python ({PURE_ENV} is set)", logging.INFO, f"fake path: python ({PURE_ENV} is set)"),
    ("python (changed since compiled: beta)", logging.WARNING,
     "fake path: python (changed since compiled: beta); `python -m tools.native` compiles it"),
])
def test_how_a_package_runs_is_logged(runs: str, level: int, message: str,
                                      caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled, or Python as asked: info. Python for another reason: a warning (correct,
    and slower)."""
    monkeypatch.setitem(compiled.STATUS, PACKAGE, runs)
    caplog.set_level(logging.INFO, logger="test.compiled")
    compiled.report(logging.getLogger("test.compiled"), "fake path", PACKAGE)
    assert caplog.record_tuples == [("test.compiled", level, message)]
