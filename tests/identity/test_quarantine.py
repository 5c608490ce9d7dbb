from __future__ import annotations

import pytest

from gatewayd.errors import NotFound, StoreError
from gatewayd.identity import Registry
from gatewayd.store import Store

NOW = 1_800_000_000.0


@pytest.fixture
def registry(store: Store) -> Registry:
    reg = Registry(store)
    reg.add_agent("bot", team_id="t", project_id="p", environment="e", now=NOW)
    return reg


def test_quarantine_and_release(registry: Registry) -> None:
    gen = registry.generation()
    held = registry.quarantine_agent("bot", reason="suspicious uploads", now=NOW)
    assert (held.agent_id, held.since, held.reason) == ("bot", NOW, "suspicious uploads")
    assert registry.generation() == gen + 1
    assert registry.quarantines() == {"bot": held}
    # Quarantining again keeps the first record.
    assert registry.quarantine_agent("bot", reason="again", now=NOW + 5) == held
    assert registry.release_agent("bot", now=NOW + 10) == held
    assert registry.quarantines() == {}
    with pytest.raises(NotFound, match="not quarantined"):
        registry.release_agent("bot", now=NOW)


def test_quarantine_refusals_leave_store_unchanged(registry: Registry) -> None:
    gen = registry.generation()
    with pytest.raises(NotFound):
        registry.quarantine_agent("ghost", reason="x", now=NOW)
    with pytest.raises(StoreError, match="invalid reason"):
        registry.quarantine_agent("bot", reason="", now=NOW)
    assert registry.generation() == gen
    assert registry.quarantines() == {}


def test_removing_an_agent_removes_its_quarantine(registry: Registry) -> None:
    registry.quarantine_agent("bot", reason="x", now=NOW)
    registry.remove_agent("bot", now=NOW)
    assert registry.quarantines() == {}
