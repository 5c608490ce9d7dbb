from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gatewayd.netfilter.drift import Drift, Snapshot, compare
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.render import XtablesRule

# `nft -j list table inet clawgress` of the one-v4 xtables render, as the kernel lists it.
LISTING = Path(__file__).parent / "golden" / "one-v4.xtables.listing.json"


@pytest.fixture
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(LISTING.read_text(encoding="utf-8"))
    return loaded


def items(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [i[kind] for i in doc["nftables"] if kind in i]


def rule_indexes(doc: dict[str, Any], chain: str) -> list[int]:
    return [
        n for n, i in enumerate(doc["nftables"]) if "rule" in i and i["rule"]["chain"] == chain
    ]


def test_snapshot_holds_every_chain_set_and_rule(doc: dict[str, Any]) -> None:
    snap = Snapshot.from_nft_json(doc)
    assert set(snap.sets) == {"workload_ifaces", "fail_closed_ifaces", "flood4", "flood6"}
    assert list(snap.chains) == [
        "antispoof", "classify", "enqueue", "commit", "deny_gate", "reply_reset",
        "forward_filter", "input_filter", "reset_guard",
    ]  # fmt: skip
    assert sum(len(r) for r in snap.rules.values()) == len(items(doc, "rule"))
    assert snap.rules["reply_reset"] == ()


def test_handles_and_counter_values_do_not_matter(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(doc)
    for item in other["nftables"]:
        for obj in item.values():
            if isinstance(obj, dict) and "handle" in obj:
                obj["handle"] += 1000
            for expr in obj.get("expr", []) if isinstance(obj, dict) else []:
                if "counter" in expr:
                    expr["counter"] = {"packets": 123, "bytes": 45678}
    assert Snapshot.from_nft_json(other) == Snapshot.from_nft_json(doc)


def test_elements_of_dynamic_sets_do_not_matter(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(doc)
    for s in items(other, "set"):
        if s["name"] == "flood4":
            s["elem"] = [{"elem": {"val": "10.10.0.5", "expires": 59}}]
    assert Snapshot.from_nft_json(other) == Snapshot.from_nft_json(doc)
    assert compare(Snapshot.from_nft_json(doc), Snapshot.from_nft_json(other)) == []


def test_elements_of_configured_sets_do_matter(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(doc)
    for s in items(other, "set"):
        if s["name"] == "workload_ifaces":
            s["elem"] = ["eth1", "eth9"]
    assert compare(Snapshot.from_nft_json(doc), Snapshot.from_nft_json(other)) == [
        "set workload_ifaces: elements changed"
    ]


def test_missing_table(doc: dict[str, Any]) -> None:
    assert compare(Snapshot.from_nft_json(doc), None) == ["table inet clawgress is missing"]


def test_removed_rule_is_named_with_its_position_and_comment(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(doc)
    commit = rule_indexes(other, "commit")
    assert other["nftables"][commit[5]]["rule"]["comment"] == "fail-closed"
    del other["nftables"][commit[5]]
    assert compare(Snapshot.from_nft_json(doc), Snapshot.from_nft_json(other)) == [
        'chain commit: rule 6 ("fail-closed") removed'
    ]


def test_added_and_changed_rules(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(doc)
    classify = rule_indexes(other, "classify")
    extra = copy.deepcopy(other["nftables"][classify[0]])
    extra["rule"]["expr"] = [{"accept": None}]
    other["nftables"].insert(classify[0], extra)
    guard = rule_indexes(other, "reset_guard")[0]
    other["nftables"][guard]["rule"]["expr"][-1] = {"accept": None}
    assert compare(Snapshot.from_nft_json(doc), Snapshot.from_nft_json(other)) == [
        "chain classify: 1 rule(s) added at position 1",
        "chain reset_guard: rule 1 changed",
    ]


def test_chain_removed_added_and_redefined(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(doc)
    other["nftables"] = [
        i
        for i in other["nftables"]
        if not ("chain" in i and i["chain"]["name"] == "reset_guard")
        and not ("rule" in i and i["rule"]["chain"] == "reset_guard")
    ]
    for c in items(other, "chain"):
        if c["name"] == "classify":
            c["policy"] = "drop"
    other["nftables"].append(
        {"chain": {"family": "inet", "table": "clawgress", "name": "sneaky", "handle": 99}}
    )
    assert compare(Snapshot.from_nft_json(doc), Snapshot.from_nft_json(other)) == [
        "chain classify: definition changed",
        "chain reset_guard is missing",
        "chain sneaky was added",
    ]


def test_snapshot_json_round_trip(doc: dict[str, Any]) -> None:
    snap = Snapshot.from_nft_json(doc)
    assert Snapshot.from_json(snap.to_json()) == snap


def test_listing_without_nftables_list_is_an_error() -> None:
    with pytest.raises(NetfilterError, match="nftables list"):
        Snapshot.from_nft_json({"something": 1})


def test_drift_describes_itself_on_one_line() -> None:
    rule = XtablesRule(
        "ipv6", "mangle", "PREROUTING", ("-j", "NFQUEUE", "--queue-num", "3", "--queue-bypass")
    )
    drift = Drift(False, ("chain commit: rule 6 removed", "set x: elements changed"), (rule,))
    assert drift.describe() == (
        "chain commit: rule 6 removed; set x: elements changed;"
        " ip6tables-nft rule in mangle PREROUTING is missing (queue 3)"
    )
    gone = Drift(True, ("table inet clawgress is missing",), ())
    assert gone.describe() == "table inet clawgress is missing"
