"""What the name tests share: a lab gateway whose policy speaks of host names.

The gateway is the verdict tests' (``verdict_support.Gateway``: lab, engine, agents,
leases), with ``examples/lab-names/names.yaml`` as its whole policy instead of the lab's
address-based one. a1 is ``researcher`` (api.openai.com over TLS), a2 ``builder`` (code
hosting over TLS), a3 has no lease. Clients here resolve names through the lab resolver
from inside the agent namespace, as an agent would, and TLS clients use Python's ssl with
the lab CA.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "verdict"))

from verdict_support import (  # noqa: E402
    BASELINE,
    RELOAD_S,
    Gateway,
    assert_lab_gone,
    lab_pids,
    require_root_and_tools,
    unique_prefix,
)

from gatewayd.lab import Lab, LabError  # noqa: E402

POLICIES = HERE.parents[1] / "examples" / "lab-names"
NAMES_POLICY = ("names.yaml",)


class NamesGateway(Gateway):
    """A lab gateway whose policy is ``names.yaml`` alone (tests may publish it with
    documents of their own, from ``policies/`` beside this file)."""

    def publish(self, *documents: str) -> float:
        self.version += 1
        source = self.work / f"policy-{self.version}"
        source.mkdir(parents=True)
        for name in documents:
            found = POLICIES / name
            shutil.copy(found if found.exists() else HERE / "policies" / name, source / name)
        bundle = self.work / f"bundle-{self.version}.tgz"
        self.clawgress("policy", "bundle", str(source), "-o", str(bundle),
                       "--version", str(self.version))
        self.clawgress("policy", "sign", str(bundle), "--key", str(self.lab.signing_key))
        self.clawgress("policy", "publish", str(bundle))
        self.policy = tuple(documents)
        return time.time()

    def reset(self) -> None:
        if not self.lab.engine_alive():
            self.lab.start_engine()
        if self.policy != NAMES_POLICY:
            self.publish(*NAMES_POLICY)
            time.sleep(3 * RELOAD_S)
        now = time.time()
        with self.registry() as registry:
            active = {lease.ip: lease for lease in registry.list_leases(now)}
            for ip, agent in BASELINE.items():
                held = active.get(ip)
                if held is None or held.agent_id != agent or held.remaining(now) < 600:
                    registry.grant_lease(ip, agent, now=now)
                    time.sleep(3 * RELOAD_S)


@contextlib.contextmanager
def names_lab(tmp: Path) -> Iterator[NamesGateway]:
    """A fail-closed lab with the engine running and the names policy active; always taken
    down, and checked to be gone."""
    require_root_and_tools()
    lab = Lab(unique_prefix(), tmp / "state", agents=3)
    pids: list[int] = []
    try:
        try:
            lab.up(engine=True)
        except LabError as exc:
            pytest.fail(f"cannot bring up a lab with the verdict engine: {exc}", pytrace=False)
        gateway = NamesGateway(lab, tmp / "work")
        gateway.register_agents()
        gateway.reset()
        yield gateway
    finally:
        with contextlib.suppress(Exception):
            pids = lab_pids(lab)
        lab.down()
    assert_lab_gone(lab, pids)
