"""The store's migrations import ``gatewayd.credentials.schema``; the package must then not
import the store back (nor the L7 engine or identity, which do)."""

from __future__ import annotations

import subprocess
import sys


def test_the_package_does_not_import_the_store() -> None:
    code = (
        "import sys, gatewayd.credentials, gatewayd.credentials.schema\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('gatewayd.store',"
        " 'gatewayd.l7', 'gatewayd.identity', 'gatewayd.policy')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
