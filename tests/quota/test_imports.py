"""The configuration, the store's migrations and the policy loader will import this
package: it must not import them back, nor the Redis client until Redis is used."""

from __future__ import annotations

import subprocess
import sys

import gatewayd

FORBIDDEN = ("gatewayd.config", "gatewayd.store", "gatewayd.identity", "gatewayd.policy",
             "gatewayd.cli", "gatewayd.l7", "redis")


def test_importing_the_package_pulls_in_nothing_that_imports_it() -> None:
    code = ("import sys, gatewayd.quota\n"
            "print('\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=gatewayd.__path__[0] + "/..").stdout.split()
    loaded = [m for m in out if m.split(".")[0] in ("gatewayd", "redis")]
    assert "gatewayd.quota.engine" in loaded
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []
