from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gatewayd.audit import AuditEvent, AuditLog
from gatewayd.audit.log import MAX_PENDING
from gatewayd.errors import ClawgressError

NOW = 1_800_000_000.25


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_are_written_on_flush_as_sorted_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.jsonl"
    with AuditLog(path) as log:
        log.append(AuditEvent("flow.verdict", NOW, {"b": 1, "a": [1, 2]}, "id-1"))
        assert path.read_text() == ""
        log.flush()
        assert log.written == 1
        text = path.read_text()
        assert text.endswith("\n")
        assert list(json.loads(text)) == sorted(json.loads(text))
    (event,) = lines(path)
    assert event == {"event_id": "id-1", "kind": "flow.verdict",
                     "ts": "2027-01-15T08:00:00.250000+00:00", "a": [1, 2], "b": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_close_writes_what_is_pending_and_appends_never_truncate(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with AuditLog(path) as log:
        log.append(AuditEvent("one", NOW))
    with AuditLog(path) as log:
        log.append(AuditEvent("two", NOW, {"odd": object()}))
    kinds = [e["kind"] for e in lines(path)]
    assert kinds == ["one", "two"]
    assert str(lines(path)[1]["odd"]).startswith("<object object")


def test_many_pending_events_are_written_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = AuditLog(path)
    for i in range(MAX_PENDING):
        log.append(AuditEvent("e", NOW, {"i": i}))
    assert len(lines(path)) == MAX_PENDING
    log.close()


def test_event_ids_are_unique_and_sortable() -> None:
    ids = [AuditEvent.now("e").as_dict()["event_id"] for _ in range(100)]
    assert len(set(ids)) == 100


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ClawgressError, match="cannot open"):
        AuditLog(blocker / "audit.log")
