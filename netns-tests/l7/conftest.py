"""Fixtures for the L7 tests: one lab per module with the L7 policy, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from l7_support import L7Gateway, l7_lab


@pytest.fixture(scope="module")
def l7_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[L7Gateway]:
    with l7_lab(tmp_path_factory.mktemp("l7")) as gateway:
        yield gateway


@pytest.fixture
def gateway(l7_gateway: L7Gateway) -> L7Gateway:
    l7_gateway.reset()
    return l7_gateway
