"""Fixtures for the kernel tests: namespaces and the lab, and a guard on the host's ruleset.

These tests need root and ``ip netns``; where they are missing every test FAILS with the
reason (CI runs as root, so a skip would hide a broken setup). Nothing here is skipped.

Every test leaves the host's own ruleset exactly as it found it (checked after each test,
with ``nft -s list ruleset``), and every namespace it made is gone afterwards.

Test modules under ``netns-tests/`` are imported by file name (the folders are not
packages, so they cannot clash with ``tests/``): keep file names unique across components.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from nsutil import Lab, Namespace, lab, namespaces, requirements_problem

MakeNamespaces = Callable[..., dict[str, Namespace]]


def _host_ruleset() -> str:
    done = subprocess.run(
        ["nft", "-s", "list", "ruleset"], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


@pytest.fixture(scope="session")
def netns_ready() -> None:
    """Fails (never skips) when namespaces cannot be made on this host."""
    problem = requirements_problem()
    if problem:
        pytest.fail(f"netns tests cannot run: {problem}", pytrace=False)


@pytest.fixture(autouse=True)
def host_untouched(netns_ready: None) -> Iterator[None]:
    """Fails the test that changed the host's ruleset (or left something in it)."""
    before = _host_ruleset()
    yield
    after = _host_ruleset()
    if after != before:
        pytest.fail(
            "the host's ruleset changed during this test; it must only touch its namespaces:\n"
            f"before:\n{before}\nafter:\n{after}",
            pytrace=False,
        )


@pytest.fixture
def make_namespaces() -> Iterator[MakeNamespaces]:
    """``make_namespaces("a", "b")``: fresh namespaces by role, removed after the test."""
    with ExitStack() as stack:

        def make(*roles: str) -> dict[str, Namespace]:
            return stack.enter_context(namespaces(*roles))

        yield make


@pytest.fixture
def netns(make_namespaces: MakeNamespaces) -> Namespace:
    """One fresh namespace."""
    return make_namespaces("t")["t"]


@pytest.fixture
def gateway_lab() -> Iterator[Lab]:
    """agent / gateway / upstream namespaces, routed through the gateway (see nsutil)."""
    with lab() as built:
        yield built
