"""The two sides of a module with a C twin (``gatewayd.compiled.C_TWINS``): the one the
package imports (the C twin, where ``make setup`` built it) and the Python reference, loaded
from its source file under a name of its own."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from gatewayd import compiled

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "gatewayd" / "dlp"


def reference(module: str) -> ModuleType:
    """``gatewayd/dlp/{module}.py`` as Python, whatever the package imports."""
    spec = importlib.util.spec_from_file_location(f"reference_{module}",
                                                  PACKAGE_DIR / f"{module}.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def assert_is_the_c_twin(imported: ModuleType) -> None:
    """``make setup`` builds the C twin; a failed or stale build shows here."""
    where = getattr(imported, "__file__", "") or ""
    assert where.endswith(compiled.extension_suffix()), (
        f"{imported.__name__} runs as Python ({compiled.STATUS.get('gatewayd.dlp')}):"
        " run `python -m tools.native` (make setup)")
