"""The L7 request path runs compiled (what ``make setup`` builds and the engine runs), and
its Python source, the fallback, passes the same tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gatewayd import compiled
from gatewayd.l7 import http1

ROOT = Path(__file__).resolve().parents[2]


def test_the_request_path_runs_compiled() -> None:
    """A failed or stale build shows here, not as a slower engine."""
    assert compiled.STATUS["gatewayd.l7"] == "compiled", (
        f"the L7 modules run as Python: {compiled.STATUS['gatewayd.l7']};"
        " run `python -m tools.native` (make setup)")
    assert Path(http1.__file__).parent.name == compiled.NATIVE_DIR


def test_the_python_modules_pass_the_l7_tests_too() -> None:
    """The unit tests of ``tests/l7`` (this file aside), again with the Python modules."""
    env = {**os.environ, compiled.PURE_ENV: "1"}
    runs = subprocess.run(
        [sys.executable, "-c", "import gatewayd.l7, gatewayd.compiled as c;"
         " print(c.STATUS['gatewayd.l7'])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert runs.stdout.strip() == f"python ({compiled.PURE_ENV} is set)"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/l7",
         f"--ignore={Path(__file__).relative_to(ROOT)}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
