"""Shared pieces of the quota tests: a fixed clock, quota builders, a Redis server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gatewayd.identity import Identity
from gatewayd.quota import PriceTable, QuotaDocument, QuotaPlan, compile_quotas
from tests.quota.redis_server import RedisServer

# The clock of the tests: 2027-01-15T08:00:00Z.
NOW = 1_800_000_000.0
AGENT = Identity("agent-1", "research", "atlas", "prod")
OTHER = Identity("agent-2", "research", "atlas", "dev")
PRICES = PriceTable.model_validate([
    {"model": "gpt-4o-mini*", "input_per_million": "0.15", "output_per_million": "0.60"},
    {"model": "gpt-4o*", "input_per_million": "2.50", "output_per_million": "10.00"},
])


def quota(qid: str, **spec: Any) -> QuotaDocument:
    """A ``Quota`` document; ``spec`` overrides a team, requests, rolling-minute default."""
    body = {"scope": "team", "metric": "requests", "window": "rolling-minute", "limit": 10,
            "mode": "hard-stop", **spec}
    return QuotaDocument.model_validate({"apiVersion": "clawgress.io/v1", "kind": "Quota",
                                         "metadata": {"id": qid}, "spec": body})


def plan_of(*docs: QuotaDocument) -> QuotaPlan:
    return compile_quotas(docs)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for a module's tests; ``redis_url`` empties it before each test."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, which the test may stop and start again."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
