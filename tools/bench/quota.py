"""Quota stage latency: check + reserve + commit on SQLite and on Redis, 1 and 3 quotas.

One *cycle* is what a request costs the gateway in the quota stage: ``reserve`` (check and
hold the estimate on every applying quota, atomically) before the request goes upstream,
and ``reconcile`` (book the actual usage, drop the holds) after. With the default
``quota.settle_delay_ms`` the booking rides on the next request's reserve (one transaction,
one Redis round trip per cycle); ``immediate`` figures book at once (two). Each round
times, in turn (A B C D E F G H I A B ...):

A-D. SQLite (WAL, a store file): 1 quota, 3 quotas (team requests per rolling minute,
     agent tokens per day, project cost per month); default and immediate booking;
E-H. Redis: the same four;
I.   a Redis ``PING`` through the same client library: one round trip with nothing in it,
     the reference a cycle (one Lua script, one round trip) is compared with.

Redis is a ``redis-server`` started for the run on a free loopback port (Debian package
``redis-server``). It reports medians of the rounds' p50/p99 with their spread, ratios
within rounds, and the round trips one reserve and one cycle take (counted on the client's
connection). ``quota_figures`` returns the figures for other benchmarks (``tools/bench/ai.py``).
Run: ``python -m tools.bench.quota`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis.connection import Connection

from gatewayd.identity import Identity
from gatewayd.quota import (
    Consumption,
    Ledger,
    PriceTable,
    QuotaDocument,
    QuotaEngine,
    QuotaPlan,
    QuotaSettings,
    SqliteLedger,
    compile_quotas,
)
from gatewayd.quota.redis_ledger import RedisLedger
from tools.bench.report import Figure, Report, median, percentile

WHO = Identity("agent-1", "research", "atlas", "prod")
PRICES = PriceTable.model_validate(
    [{"model": "gpt-4o*", "input_per_million": "2.50", "output_per_million": "10.00"}])
ESTIMATE = Consumption(input_tokens=1200, output_tokens=400, model="gpt-4o", bytes_out=4096)
ACTUAL = Consumption(input_tokens=1200, output_tokens=310, model="gpt-4o", bytes_out=4096)
START = 1_800_000_000.0


def _quota(qid: str, **spec: Any) -> QuotaDocument:
    return QuotaDocument.model_validate({"apiVersion": "clawgress.io/v1", "kind": "Quota",
                                         "metadata": {"id": qid}, "spec": spec})


def plans() -> dict[int, QuotaPlan]:
    """The quotas that apply to the benchmark's agent: 1, or 3 of different shapes; the
    limits are never reached, so every request takes the full path."""
    team = _quota("team-requests", scope="team", metric="requests", window="rolling-minute",
                  limit=10**12)
    tokens = _quota("agent-tokens", scope="agent", metric="total-tokens",
                    window="calendar-day", limit=10**14)
    cost = _quota("project-cost", scope="project", metric="cost-usd",
                  window="calendar-month", limit="1000000")
    return {1: compile_quotas([tokens]), 3: compile_quotas([team, tokens, cost])}


class _Counting(Connection):
    """Counts replies read: one per round trip."""

    replies = 0

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        _Counting.replies += 1
        return super().read_response(*args, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A ``redis-server`` on a free loopback port for the run; its URL."""
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server is missing: install the Debian package redis-server"
                         " (tools/debian-packages.txt)")
    port = _free_port()
    proc = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.02)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Clock:
    """The ``now`` the engine is given: a millisecond per call, so windows roll over."""

    def __init__(self) -> None:
        self.now = START

    def tick(self) -> float:
        self.now += 0.001
        return self.now


def time_cycles(engine: QuotaEngine, clock: Clock, n: int) -> tuple[list[float], list[float]]:
    """Per-cycle and per-reserve latencies in microseconds."""
    ns = time.perf_counter_ns
    cycles, reserves = [], []
    for _ in range(n):
        now = clock.tick()
        t0 = ns()
        adm = engine.reserve(WHO, ESTIMATE, now)
        t1 = ns()
        engine.reconcile(adm, ACTUAL, now)
        t2 = ns()
        assert adm.admitted
        reserves.append((t1 - t0) / 1000)
        cycles.append((t2 - t0) / 1000)
    return cycles, reserves


def time_pings(ledger: RedisLedger, n: int) -> list[float]:
    ns = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = ns()
        ledger.ping()
        out.append((ns() - t0) / 1000)
    return out


DEFAULTS = QuotaSettings()


def _engine(plan: QuotaPlan, ledger: Ledger, *, immediate: bool = False) -> QuotaEngine:
    """An engine as ``open_engine`` makes it with the default settings."""
    delay = 0.0 if immediate else DEFAULTS.settle_delay_ms / 1000
    return QuotaEngine(plan, ledger, prices=PRICES, hold_ttl_s=DEFAULTS.reservation_ttl,
                       settle_delay_s=delay)


def round_trips(url: str, plan: QuotaPlan) -> tuple[float, float]:
    """Round trips of one reserve and of one cycle (default settings), counted on the
    client's connection."""
    pool = redis.ConnectionPool.from_url(url, connection_class=_Counting)
    ledger = RedisLedger(redis.Redis(connection_pool=pool), key_prefix="bench:rt")
    engine = _engine(plan, ledger)
    clock = Clock()
    time_cycles(engine, clock, 5)  # loads the scripts
    n = 200
    _Counting.replies = 0
    for _ in range(n):
        engine.reserve(WHO, ESTIMATE, clock.tick())
    per_reserve = _Counting.replies / n
    _Counting.replies = 0
    time_cycles(engine, clock, n)
    per_cycle = _Counting.replies / n
    ledger.close()
    return per_reserve, per_cycle


def quota_figures(quick: bool = False) -> tuple[dict[str, Figure], list[str]]:
    """Measure; the figures by name and the notes (see the module docstring)."""
    rounds = 3 if quick else 7
    n = 1000 if quick else 5000
    report = Report("quota")
    with tempfile.TemporaryDirectory(prefix="clawgress-bench-quota-") as tmp, \
            redis_server(Path(tmp)) as url:
        folder = Path(tmp)
        by_plan = plans()
        ledgers: list[Ledger] = []
        runs: dict[str, Callable[[], tuple[list[float], list[float]]]] = {}
        for backend in ("sqlite", "redis"):
            for k, plan in by_plan.items():
                for mode in ("default", "immediate"):
                    name = f"{backend}_{k}_{mode}"
                    ledger: Ledger = (
                        SqliteLedger.open(folder / f"{name}.db") if backend == "sqlite"
                        else RedisLedger.from_url(url, key_prefix=name, timeout_s=2.0))
                    ledgers.append(ledger)
                    engine = _engine(plan, ledger, immediate=mode == "immediate")
                    clock = Clock()

                    def run(engine: QuotaEngine = engine, clock: Clock = clock) -> tuple[
                            list[float], list[float]]:
                        return time_cycles(engine, clock, n)

                    runs[name] = run
                    run()  # warm-up: caches, prepared statements, scripts loaded
        ping_ledger = RedisLedger.from_url(url, key_prefix="bench:ping", timeout_s=2.0)
        time_pings(ping_ledger, n)
        series: dict[str, list[float]] = {}

        def keep(name: str, value: float) -> None:
            series.setdefault(name, []).append(value)

        for _ in range(rounds):
            for name, timed in runs.items():
                cycles, reserves = timed()
                keep(f"{name}_cycle_p50", percentile(cycles, 50))
                keep(f"{name}_cycle_p99", percentile(cycles, 99))
                keep(f"{name}_reserve_p50", percentile(reserves, 50))
            pings = time_pings(ping_ledger, n)
            ping50 = percentile(pings, 50)
            keep("ping_p50", ping50)
            for k in by_plan:
                for mode in ("default", "immediate"):
                    name = f"redis_{k}_{mode}"
                    keep(f"{name}_cycle_ratio", series[f"{name}_cycle_p50"][-1] / ping50)
        trips = {k: round_trips(url, plan) for k, plan in by_plan.items()}
        for done in (*ledgers, ping_ledger):
            done.close()

    def add(name: str, key: str, unit: str = "us", goal: str | None = None) -> None:
        values = series[key]
        report.add(name, median(values), unit, goal, (min(values), max(values)))

    for k in by_plan:
        q = f"{k}_quota" if k == 1 else f"{k}_quotas"
        add(f"sqlite_cycle_p50_us_{q}", f"sqlite_{k}_default_cycle_p50", goal="<= 50")
        add(f"sqlite_cycle_p99_us_{q}", f"sqlite_{k}_default_cycle_p99")
        add(f"sqlite_cycle_immediate_p50_us_{q}", f"sqlite_{k}_immediate_cycle_p50")
        add(f"redis_cycle_p50_us_{q}", f"redis_{k}_default_cycle_p50")
        add(f"redis_cycle_p99_us_{q}", f"redis_{k}_default_cycle_p99")
        add(f"redis_cycle_immediate_p50_us_{q}", f"redis_{k}_immediate_cycle_p50")
        add(f"redis_cycle_p50_ratio_vs_ping_{q}", f"redis_{k}_default_cycle_ratio", "x")
        add(f"redis_cycle_immediate_p50_ratio_vs_ping_{q}",
            f"redis_{k}_immediate_cycle_ratio", "x")
        per_reserve, per_cycle = trips[k]
        report.add(f"redis_round_trips_per_reserve_{q}", per_reserve, "n", "<= 1")
        report.add(f"redis_round_trips_per_cycle_{q}", per_cycle, "n", "<= 1")
    add("redis_ping_p50_us", "ping_p50")
    report.notes.append(
        f"{rounds} interleaved rounds (SQLite, Redis: 1 and 3 quotas, default and immediate"
        f" booking; Redis PING) of {n} cycles each; a cycle is reserve + reconcile, timed per"
        " call with perf_counter_ns; SQLite in WAL mode with synchronous=NORMAL;"
        " redis-server on loopback")
    return report.figures, report.notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="few rounds and cycles (smoke run)")
    args = ap.parse_args(argv)
    figures, notes = quota_figures(quick=args.quick)
    report = Report("quota", figures, notes)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
