"""Fixtures for the name tests: one lab per module with the names policy, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from names_support import NamesGateway, names_lab


@pytest.fixture(scope="module")
def names_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamesGateway]:
    with names_lab(tmp_path_factory.mktemp("names")) as gateway:
        yield gateway


@pytest.fixture
def gateway(names_gateway: NamesGateway) -> NamesGateway:
    names_gateway.reset()
    return names_gateway
