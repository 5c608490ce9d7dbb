"""Fixtures for the lab's kernel tests: labs with their own prefix, always taken down.

Every lab here gets a prefix no other test run uses and a state dir in the test's
temporary folder; after ``down`` the fixtures check that no namespace, process,
``/etc/netns`` entry or state file of it is left. Not root → every test FAILS, saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_support import MakeLab, assert_gone, lab_pids, require_root, unique_prefix

from gatewayd.lab import Lab


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[MakeLab]:
    """``make_lab(**kwargs)``: a ``Lab`` (not up yet) with a fresh prefix and state dir;
    every lab made is taken down after the test, and checked to be gone."""
    require_root()
    made: list[Lab] = []

    def make(prefix: str | None = None, state_dir: Path | None = None, **kwargs: Any) -> Lab:
        lab = Lab(prefix or unique_prefix(), state_dir or tmp_path / f"state-{len(made)}",
                  **kwargs)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        pids = lab_pids(lab)
        lab.down()
        assert_gone(lab.plan, lab.state_dir, pids)


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab for a whole module: up without the engine (no Clawgress rules)."""
    require_root()
    state = tmp_path_factory.mktemp("lab") / "state"
    lab = Lab(unique_prefix(), state, agents=2, dns_ttl=42)
    with lab:
        lab.up(engine=False)
        yield lab
        pids = lab_pids(lab)
    assert_gone(lab.plan, state, pids)
