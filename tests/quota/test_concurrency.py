"""Several workers on one hard budget: threads and processes, SQLite and Redis.

Each worker reserves an estimate, then books what it used. Because check and hold are one
atomic step, the admitted estimates never add up to more than the limit: the budget is
overshot only by what requests used beyond their estimates (one estimate at most here,
where an overrun is bounded by the estimate).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from pathlib import Path

import pytest

from gatewayd.quota import compile_quotas, usage_rows
from tests.quota import workers
from tests.quota.redis_server import RedisServer

LIMIT = 7000
ESTIMATE = 7


def run_processes(kind: str, target: str, n: int, overrun: int) -> list[tuple[int, int, int]]:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=workers.hammer,
                         args=(kind, target, LIMIT, ESTIMATE, overrun, i, ready, start, results))
             for i in range(n)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    start.set()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return out


def run_threads(kind: str, target: str, n: int, overrun: int) -> list[tuple[int, int, int]]:
    ready: queue.Queue[int] = queue.Queue()
    start = threading.Event()
    results: queue.Queue[tuple[int, int, int]] = queue.Queue()
    threads = [threading.Thread(target=workers.hammer, args=(kind, target, LIMIT, ESTIMATE,
                                                             overrun, i, ready, start, results))
               for i in range(n)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.get(timeout=60)
    start.set()
    for t in threads:
        t.join(timeout=120)
    return [results.get_nowait() for _ in threads]


def booked_in_ledger(kind: str, target: str) -> int:
    ledger = workers.open_ledger(kind, target)
    try:
        row, = usage_rows(compile_quotas([workers.budget(LIMIT)]), ledger, workers.NOW + 2,
                          who=workers.WHO)
    finally:
        ledger.close()
    assert row.held == 0
    return row.used


def check(kind: str, target: str, results: list[tuple[int, int, int]], overrun: int) -> None:
    admitted = sum(r[0] for r in results)
    booked = sum(r[1] for r in results)
    assert sum(r[2] for r in results) == 0, "no worker ever fell back to counting locally"
    assert booked_in_ledger(kind, target) == booked
    assert admitted * ESTIMATE <= LIMIT  # the holds never exceeded the budget
    if overrun == 0:
        assert admitted == LIMIT // ESTIMATE and booked <= LIMIT
    else:
        # overshoot only by overruns, and an admitted request found room for its estimate
        assert booked <= LIMIT + ESTIMATE + admitted * overrun
    assert all(r[0] > 0 for r in results), "every worker got a share"


@pytest.mark.parametrize("overrun", [0, 3])
def test_sqlite_threads_share_one_budget(tmp_path: Path, overrun: int) -> None:
    target = str(tmp_path / "quota.db")
    check("sqlite", target, run_threads("sqlite", target, 4, overrun), overrun)


def test_sqlite_processes_share_one_budget(tmp_path: Path) -> None:
    target = str(tmp_path / "quota.db")
    check("sqlite", target, run_processes("sqlite", target, 2, 0), 0)


def test_redis_processes_share_one_budget(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url == redis_server.url
    check("redis", redis_url, run_processes("redis", redis_url, 2, 0), 0)


def test_redis_threads_share_one_budget(redis_url: str) -> None:
    check("redis", redis_url, run_threads("redis", redis_url, 4, 3), 3)
