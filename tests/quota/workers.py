"""Workers that hammer one budget from separate processes (started with ``spawn``)."""

from __future__ import annotations

import random
import time
from typing import Any

from gatewayd.identity import Identity
from gatewayd.quota import (
    Consumption,
    Ledger,
    QuotaDocument,
    QuotaEngine,
    SqliteLedger,
    compile_quotas,
)
from gatewayd.quota.redis_ledger import RedisLedger

NOW = 1_800_000_000.0
WHO = Identity("agent-1", "research", "atlas", "prod")
# Consecutive refusals after which a worker takes the budget as spent; and a bound on time.
GIVE_UP_AFTER = 30
MAX_SECONDS = 60.0


def budget(limit: int) -> QuotaDocument:
    return QuotaDocument.model_validate({
        "apiVersion": "clawgress.io/v1", "kind": "Quota", "metadata": {"id": "budget"},
        "spec": {"scope": "team", "metric": "output-tokens", "window": "calendar-day",
                 "limit": limit, "mode": "hard-stop"}})


def open_ledger(kind: str, target: str) -> Ledger:
    return SqliteLedger.open(target) if kind == "sqlite" else RedisLedger.from_url(target)


def hammer(kind: str, target: str, limit: int, estimate: int, overrun: int, seed: int,
           ready: Any, start: Any, results: Any) -> None:
    """Reserve ``estimate`` tokens until the budget refuses; each admitted request uses
    between its estimate and ``estimate + overrun``. Puts (admitted, booked, degraded)."""
    ledger = open_ledger(kind, target)
    eng = QuotaEngine(compile_quotas([budget(limit)]), ledger, hold_ttl_s=3600)
    rng = random.Random(seed)
    ready.put(seed)
    start.wait(60)
    admitted = booked = degraded = refusals = 0
    deadline = time.monotonic() + MAX_SECONDS
    estimate_use = Consumption(output_tokens=estimate, model="m")
    while refusals < GIVE_UP_AFTER and time.monotonic() < deadline:
        adm = eng.reserve(WHO, estimate_use, NOW)
        degraded += adm.decision.degraded
        if not adm.admitted:
            refusals += 1
            continue
        refusals = 0
        admitted += 1
        used = estimate + rng.randint(0, overrun)
        time.sleep(0)  # let the other workers in between the hold and the booking
        eng.reconcile(adm, Consumption(output_tokens=used, model="m"), NOW + 1)
        booked += used
    ledger.close()
    results.put((admitted, booked, degraded))
