"""Drift: the live ruleset is compared with the baseline taken after apply."""

from __future__ import annotations

import re

import pytest
from netfilter_support import golden_config
from nsutil import Namespace

from gatewayd.netfilter.apply import apply
from gatewayd.netfilter.drift import Baseline, check_drift, take_baseline
from gatewayd.netfilter.render import Ruleset, render_ruleset

pytestmark = pytest.mark.netns


@pytest.fixture
def applied(netns: Namespace) -> tuple[Ruleset, Baseline]:
    rs = render_ruleset(golden_config("mixed-v4-v6"), "xtables")
    with netns.entered():
        apply(rs)
        baseline = take_baseline(rs)
        assert check_drift(baseline) is None
    return rs, baseline


def restored(netns: Namespace, rs: Ruleset, baseline: Baseline) -> bool:
    with netns.entered():
        apply(rs)
        return check_drift(baseline) is None


def last_handle(netns: Namespace, chain: str, comment: str) -> str:
    """The handle of the last rule in ``chain`` with ``comment``."""
    listing = netns.nft("-a", "list", "chain", "inet", "clawgress", chain).stdout
    return re.findall(rf'comment "{comment}" # handle (\d+)', listing)[-1]


def test_table_deleted(netns: Namespace, applied: tuple[Ruleset, Baseline]) -> None:
    rs, baseline = applied
    netns.nft("delete", "table", "inet", "clawgress")
    with netns.entered():
        drift = check_drift(baseline)
    assert drift is not None
    assert drift.table_missing
    assert drift.describe() == "table inet clawgress is missing"
    assert restored(netns, rs, baseline)


def test_rule_deleted(netns: Namespace, applied: tuple[Ruleset, Baseline]) -> None:
    rs, baseline = applied
    handle = last_handle(netns, "commit", "fail-closed")
    netns.nft("delete", "rule", "inet", "clawgress", "commit", "handle", handle)
    with netns.entered():
        drift = check_drift(baseline)
    assert drift is not None
    assert not drift.table_missing
    assert drift.describe() == 'chain commit: rule 8 ("fail-closed") removed'
    assert drift.missing_xtables == ()
    assert restored(netns, rs, baseline)


def test_rule_added_and_set_changed(netns: Namespace, applied: tuple[Ruleset, Baseline]) -> None:
    rs, baseline = applied
    netns.nft("insert", "rule", "inet", "clawgress", "classify", "accept")
    netns.nft("add", "element", "inet", "clawgress", "workload_ifaces", '{ "eth9" }')
    with netns.entered():
        drift = check_drift(baseline)
    assert drift is not None
    assert drift.changes == (
        "set workload_ifaces: elements changed",
        "chain classify: 1 rule(s) added at position 1",
    )
    assert restored(netns, rs, baseline)


def test_xtables_rule_deleted(netns: Namespace, applied: tuple[Ruleset, Baseline]) -> None:
    rs, baseline = applied
    gone = rs.xtables[2]
    netns.run(*gone.argv("-D"))
    with netns.entered():
        drift = check_drift(baseline)
    assert drift is not None
    assert (drift.table_missing, drift.changes, drift.missing_xtables) == (False, (), (gone,))
    assert drift.describe() == "ip6tables-nft rule in mangle PREROUTING is missing (queue 0)"
    assert restored(netns, rs, baseline)


def test_flood_set_elements_are_not_drift(
    netns: Namespace, applied: tuple[Ruleset, Baseline]
) -> None:
    _, baseline = applied
    netns.nft("add", "element", "inet", "clawgress", "flood4", "{ 10.10.0.9 timeout 30s }")
    netns.nft("add", "element", "inet", "clawgress", "flood6", "{ fd00:10::9 timeout 30s }")
    with netns.entered():
        assert check_drift(baseline) is None


def test_table_flushed(netns: Namespace, applied: tuple[Ruleset, Baseline]) -> None:
    rs, baseline = applied
    netns.nft("flush", "table", "inet", "clawgress")
    with netns.entered():
        drift = check_drift(baseline)
    assert drift is not None
    assert not drift.table_missing
    emptied = {c.split(":")[0] for c in drift.changes}
    assert emptied == {
        f"chain {name}"
        for name, rules in baseline.snapshot.rules.items()
        if rules
    }
    assert all(c.endswith(" removed") for c in drift.changes)
    assert len(drift.changes) == sum(len(r) for r in baseline.snapshot.rules.values())
    assert restored(netns, rs, baseline)
