"""The ``quota:`` section of the gateway configuration.

Where counters live (the embedded SQLite store, or Redis shared by several gateway
replicas), what a gateway does while that backend is down, how long a reservation holds
budget for a request that never completes, and the price table cost budgets use::

    quota:
      backend: redis                  # or sqlite (default): the store's file
      redis: {url: "redis://10.0.0.5:6379/0", key_prefix: "clawgress:quota", timeout_ms: 250}
      on_backend_failure: soft-fail   # allow, count locally, alert; hard-fail: refuse (503)
      reservation_ttl: 10m
      prices:
        - {model: "gpt-4o-mini*", input_per_million: 0.15, output_per_million: 0.60}
        - {model: "gpt-4o*", input_per_million: 2.50, output_per_million: 10.00}
        - {model: "*", input_per_million: 15, output_per_million: 75}

Pure pydantic; ``docs/quota.md`` says what each key does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatewayd.duration import duration_setting
from gatewayd.quota.prices import PriceTable

FailurePolicy = Literal["soft-fail", "hard-fail"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedisSettings(_Section):
    # redis://[user:password@]host:port/db, rediss:// for TLS, unix:///path.sock.
    url: str = Field(default="redis://127.0.0.1:6379/0", pattern=r"^(rediss?|unix)://")
    # Every key starts with {key_prefix}: one hash slot, so a cluster keeps them together.
    key_prefix: str = Field(default="clawgress:quota", pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    # Connect and reply timeout: past it the backend counts as down for this request.
    timeout_ms: int = Field(default=250, ge=10, le=10_000)


class QuotaSettings(_Section):
    backend: Literal["sqlite", "redis"] = "sqlite"
    # The SQLite file of the counters; null: the store's (store.path).
    sqlite_path: Path | None = None
    # How long a gateway worker waits for another's write on the SQLite file before the
    # backend counts as down.
    sqlite_busy_timeout_ms: int = Field(default=2000, ge=10, le=60_000)
    redis: RedisSettings = RedisSettings()
    # Backend down: soft-fail lets requests through, counts them in the gateway's memory
    # (booked to the backend once it is back) and alerts; hard-fail refuses them (503).
    on_backend_failure: FailurePolicy = "soft-fail"
    # While down, the backend is tried again at most this often.
    probe_interval_ms: int = Field(default=1000, ge=10, le=600_000)
    # Usage counted while the backend was down, waiting to be booked there; beyond this
    # the oldest is dropped (and counted, and alerted).
    max_backlog: int = Field(default=100_000, ge=1, le=10_000_000)
    # How long the usage of a finished request may wait to be booked: it then rides on the
    # next request's check (one transaction, one Redis round trip per request instead of
    # two). Meanwhile the request still holds its estimate. 0: book at once.
    settle_delay_ms: int = Field(default=50, ge=0, le=10_000)
    # The completion size an AI call's estimate assumes when the request names no
    # max_tokens (its output tokens, and their cost, are reserved on that basis).
    output_estimate_tokens: int = Field(default=1024, ge=1, le=10_000_000)
    # A reservation a request never settles (the gateway died, the stream hung) stops
    # holding budget after this long.
    reservation_ttl: int = 600
    prices: PriceTable = PriceTable()

    @field_validator("reservation_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> int:
        return duration_setting(value, "10m")

    def sqlite_file(self, store_path: Path) -> Path:
        return self.sqlite_path or store_path
