"""Helpers of the lab's kernel tests: unique prefixes, and checks that a lab left nothing."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gatewayd.lab import Lab, LabPlan
from gatewayd.lab import processes as lab_processes
from gatewayd.lab import topology as lab_topology

MakeLab = Callable[..., Lab]

_serial = itertools.count(1)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the lab tests need root: they create network namespaces, veths and processes"
            " (run `make test` as root)",
            pytrace=False,
        )


def unique_prefix() -> str:
    """A prefix no other lab on this host uses: ``cgt<pid>-<n>``."""
    return f"cgt{os.getpid()}-{next(_serial)}"


def owned_namespaces(plan: LabPlan) -> list[str]:
    return sorted(n for n in lab_topology.list_namespaces() if plan.owns_namespace(n))


def lab_pids(lab: Lab) -> list[int]:
    """Every pid of the lab now: recorded, and found in its namespaces."""
    pids = [int(p["pid"]) for p in lab.status()["processes"]]
    for found in lab_processes.pids_in_namespaces(owned_namespaces(lab.plan)).values():
        pids += found
    return sorted(set(pids))


def assert_gone(plan: LabPlan, state_dir: Path, pids: list[int]) -> None:
    """Nothing of the lab is left: namespaces, /etc/netns entries, processes, state."""
    assert owned_namespaces(plan) == [], "namespaces left behind"
    assert lab_topology.etc_netns_entries(plan) == [], "/etc/netns entries left behind"
    living = [p for p in pids if lab_processes.alive(p)]
    assert living == [], f"processes left: {living}"
    assert not state_dir.exists(), f"state dir left: {sorted(state_dir.iterdir())}"
