"""What the L7 tests share: a lab gateway whose policy has request conditions, and clients.

The gateway is the verdict tests' (``verdict_support.Gateway``: lab, engine, agents,
leases) with ``policies/l7.yaml`` as its whole policy. a1 is ``researcher`` (team research:
api.openai.com inspected), a2 ``builder`` (team build), a3 has no lease. Agents trust the
lab CA and the gateway CA (the lab's ``trust.pem``); the explicit proxy is on the
gateway's workload address, port 3128.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "verdict"))

from verdict_net import CurlResult, curl  # noqa: E402
from verdict_support import Gateway, gateway_lab  # noqa: E402

OPENAI_V4 = "10.78.0.10"  # api.openai.com's lab address
PROXY = {4: "http://10.77.0.1:3128", 6: "http://[fd77::1]:3128"}


class L7Gateway(Gateway):
    included: ClassVar[tuple[Path, ...]] = ()
    policy_dirs: ClassVar[tuple[Path, ...]] = (HERE / "policies",)
    base_policy: ClassVar[tuple[str, ...]] = ("l7.yaml",)

    def release(self, agent: str) -> None:
        """Lift a quarantine (if any)."""
        self.run_clawgress("agent", "release", agent)

    def restart_with_l7(self, **settings: Any) -> None:
        """Restart the engine with ``settings`` in the lab's ``l7`` section (the rest of
        the lab's configuration as it is)."""
        path = self.lab.config_path
        config = yaml.safe_load(path.read_text())
        config.setdefault("l7", {}).update(settings)
        path.write_text(yaml.safe_dump(config))
        self.stop_engine()
        self.lab.start_engine()

    def curl(self, agent: str, url: str, *args: str, timeout: float = 10.0) -> CurlResult:
        return curl(self.lab, agent, url, *args, timeout=timeout)

    @contextlib.contextmanager
    def diverted(self, port: int) -> Iterator[socket.socket]:
        """A raw socket from a1 to api.openai.com's IPv4 address on ``port``, a flow the
        L7 engine gets: a1 resolves (and uses) the name first, so the address is decided
        by it, which policy inspects."""
        scheme = "https" if port == 443 else "http"
        assert self.curl("a1", f"{scheme}://api.openai.com/", "-4").status == 200
        with self.ns("a1").socket() as sock:
            sock.settimeout(5)
            sock.connect((OPENAI_V4, port))
            yield sock


def json_body(result: CurlResult) -> dict[str, Any]:
    try:
        value = json.loads(result.body)
    except ValueError:
        raise AssertionError(f"not JSON: {result.body[:300]!r} ({result.stderr})") from None
    assert isinstance(value, dict)
    return value


def l7_lab(tmp: Path) -> contextlib.AbstractContextManager[Gateway]:
    """A fail-closed lab with the engine (and its L7 listeners) running and the L7 policy
    active; always taken down, and checked to be gone."""
    return gateway_lab(tmp, kind=L7Gateway)
