"""Quotas and budgets: how much agents may use, counted across requests and gateways.

An operator writes ``Quota`` documents (``documents``): a scope (agent, team, project,
environment or credential), a selector, a metric (requests, tokens, cost in USD from the
configured price table, bytes out, new connections), a window (rolling minute/hour/day,
calendar day/month in UTC), a limit and a mode (``hard-stop``, ``soft-stop``,
``throttle``, ``alert-only``). ``compile_quotas`` makes a ``QuotaPlan`` of them.

The arithmetic is sans-IO: window slots and their expiry (``windows``), token buckets
(``bucket``), costs (``prices``, ``consumption``), and each quota's outcome and the
strictest of several (``decision``). The IO shell is the *ledger*, one small interface
(``ledger.Ledger``) with three implementations: ``SqliteLedger`` (the embedded default, in
the store's file), ``redis_ledger.RedisLedger`` (shared by gateway replicas, one Lua
round trip per check) and ``MemoryLedger`` (the local fallback while a backend is down).

``QuotaEngine`` is the request pipeline's quota stage: ``reserve`` checks and holds a
request's estimate on every quota that applies, atomically, before it goes upstream;
``reconcile`` books the actual usage after. It applies the configured failure policy
(``soft-fail`` / ``hard-fail``) when the backend is down. ``status`` holds what the
``clawgress quota`` commands do; the commands themselves are in ``gatewayd.cli.quota``.
``docs/quota.md`` is the operator's guide.
"""

from gatewayd.quota.backends import open_engine, open_ledger
from gatewayd.quota.bucket import Bucket
from gatewayd.quota.consumption import Consumption
from gatewayd.quota.decision import Effect, Outcome, QuotaDecision, combine
from gatewayd.quota.documents import (
    KIND,
    EnforcementMode,
    Metric,
    Mode,
    QuotaDocument,
    Scope,
    parse_quota_document,
    parse_quota_file,
)
from gatewayd.quota.engine import Admission, BackendEvent, QuotaEngine
from gatewayd.quota.ledger import Ledger, LedgerUnavailable
from gatewayd.quota.memory_ledger import MemoryLedger
from gatewayd.quota.plan import Applied, Quota, QuotaPlan, compile_quotas
from gatewayd.quota.prices import ModelPrice, PriceTable
from gatewayd.quota.settings import QuotaSettings, RedisSettings
from gatewayd.quota.sqlite_ledger import SqliteLedger, create_tables
from gatewayd.quota.status import ResetSelection, UsageRow, reset_counters, usage_rows
from gatewayd.quota.windows import Window

__all__ = [
    "KIND",
    "Admission",
    "Applied",
    "BackendEvent",
    "Bucket",
    "Consumption",
    "Effect",
    "EnforcementMode",
    "Ledger",
    "LedgerUnavailable",
    "MemoryLedger",
    "Metric",
    "Mode",
    "ModelPrice",
    "Outcome",
    "PriceTable",
    "Quota",
    "QuotaDecision",
    "QuotaDocument",
    "QuotaEngine",
    "QuotaPlan",
    "QuotaSettings",
    "RedisSettings",
    "ResetSelection",
    "Scope",
    "SqliteLedger",
    "UsageRow",
    "Window",
    "combine",
    "compile_quotas",
    "create_tables",
    "open_engine",
    "open_ledger",
    "parse_quota_document",
    "parse_quota_file",
    "reset_counters",
    "usage_rows",
]
