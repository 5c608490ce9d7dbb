"""Audit event stamps: ids and timestamps."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from gatewayd.audit.events import AuditEvent, new_event_id, timestamp


def test_timestamps_are_what_datetime_writes_rounding_included() -> None:
    rng = random.Random(7)
    edges = [0.0, 0.5e-6, 1.5e-6, 0.9999995, 0.9999999, 0.4999995, 0.2302475]
    stamps = [rng.uniform(0, 4e9) for _ in range(20000)]
    stamps += [rng.randint(0, 4_000_000_000) + e for e in edges for _ in range(200)]
    stamps += [-0.25, -1.9999995, 1_800_000_000.0]
    for ts in stamps:
        assert timestamp(ts) == datetime.fromtimestamp(ts, UTC).isoformat(
            timespec="microseconds"), ts


def test_an_event_carries_its_stamp_and_a_unique_id() -> None:
    record = AuditEvent("x", 1_800_000_000.123456, {"a": 1}).as_dict()
    assert record["ts"] == "2027-01-15T08:00:00.123456+00:00" and record["a"] == 1
    ids = {new_event_id(1.0) for _ in range(1000)}
    assert len(ids) == 1000
