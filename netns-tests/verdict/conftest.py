"""Fixtures for the verdict engine's kernel tests: one lab per test module, reset per test.

``lab_gateway`` is a fail-closed lab with the engine running, shared by a module (a lab
takes a few seconds to build); ``gateway`` hands it to a test after ``Gateway.reset``
(engine running, base policy, baseline leases). The lab is taken down at the end of the
module and checked to be gone (namespaces, processes, ``/etc/netns``, state); the root
conftest checks the host's ruleset around every test. Not root → every test FAILS.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from verdict_support import Gateway, gateway_lab


@pytest.fixture(scope="module")
def lab_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_lab(tmp_path_factory.mktemp("verdict")) as gateway:
        yield gateway


@pytest.fixture
def gateway(lab_gateway: Gateway) -> Gateway:
    lab_gateway.reset()
    return lab_gateway
