"""Opening the configured ledger, and an engine on it.

The only place that chooses a backend: ``quota.backend`` in the configuration. The Redis
client library is imported only when Redis is configured.
"""

from __future__ import annotations

from pathlib import Path

from gatewayd.quota.engine import QuotaEngine
from gatewayd.quota.ledger import Ledger
from gatewayd.quota.plan import QuotaPlan
from gatewayd.quota.settings import QuotaSettings
from gatewayd.quota.sqlite_ledger import SqliteLedger


def open_ledger(settings: QuotaSettings, store_path: Path) -> Ledger:
    """The configured backend; ``store_path`` is the store's file (``store.path``).

    Raises ``LedgerUnavailable`` when it cannot be opened (Redis is only connected to on
    first use, so a Redis that is down shows on the first request instead).
    """
    if settings.backend == "redis":
        from gatewayd.quota.redis_ledger import RedisLedger  # noqa: PLC0415 - optional until used

        r = settings.redis
        return RedisLedger.from_url(r.url, key_prefix=r.key_prefix, timeout_s=r.timeout_ms / 1000)
    return SqliteLedger.open(settings.sqlite_file(store_path),
                             busy_timeout_s=settings.sqlite_busy_timeout_ms / 1000)


def open_engine(plan: QuotaPlan, settings: QuotaSettings, store_path: Path) -> QuotaEngine:
    """A ``QuotaEngine`` on the configured backend with the configured policy."""
    return QuotaEngine(
        plan,
        open_ledger(settings, store_path),
        prices=settings.prices,
        hold_ttl_s=float(settings.reservation_ttl),
        on_failure=settings.on_backend_failure,
        probe_interval_s=settings.probe_interval_ms / 1000,
        max_backlog=settings.max_backlog,
        settle_delay_s=settings.settle_delay_ms / 1000,
    )
