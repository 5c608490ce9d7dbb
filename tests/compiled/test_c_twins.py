"""The C twins' sources compile cleanly with every warning an error (the build itself does
not use ``-Werror``, so that a warning a newer compiler adds cannot turn a gateway's scanner
back into Python: this is where warnings are caught)."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from gatewayd.compiled import C_TWINS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("package", "twin"), [
    (package, twin) for package, twins in C_TWINS.items() for twin in twins])
def test_the_source_compiles_without_a_warning(package: str, twin: str) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None, "no C compiler: tools/debian-packages.txt lists gcc"
    source = ROOT / package.replace(".", "/") / f"{twin}.c"
    done = subprocess.run(
        [cc, "-fsyntax-only", "-O2", "-Wall", "-Wextra", "-Werror",
         f"-I{sysconfig.get_paths()['include']}", str(source)],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
