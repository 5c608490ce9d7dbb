from __future__ import annotations

import json

from gatewayd.policy import explain

from .conftest import compile_yaml, policy, req

TEXT = policy(
    "    - {id: shadow, priority: 1, action: deny, enforcement_mode: report,"
    " destination: {hosts: [a.com]}}\n"
    "    - {id: udp-only, action: allow, destination: {hosts: [a.com], protocol: udp}}\n"
    "    - {id: win, action: allow, destination: {hosts: [a.com], ports: [443]}}\n"
    "    - {id: lower, action: allow, destination: {hosts: ['*.com']}}\n"
    "    - {id: elsewhere, action: allow, destination: {hosts: [b.com]}}\n"
    "    - {id: team-only, action: allow, identity: {team: ops}}\n"
)


def test_explain_walks_candidates_in_rank_order() -> None:
    result = explain(compile_yaml(TEXT), req("a.com"), 0.0)
    assert result.decision.rule_id == "win"
    got = [(c.rule_id, c.outcome) for c in result.considered]
    assert got == [
        ("shadow", "shadow"),
        ("win", "decided"),
        ("udp-only", "ranked-below"),
        ("lower", "ranked-below"),
    ]
    reasons = {c.rule_id: c.why for c in result.considered}
    assert "report mode" in reasons["shadow"]
    assert result.not_candidate_count == 2
    assert result.not_candidates == ()


def test_explain_reports_skipped_rules_with_why() -> None:
    result = explain(compile_yaml(TEXT), req("a.com", port=80), 0.0)
    got = [(c.rule_id, c.outcome, c.why) for c in result.considered]
    assert got[0][:2] == ("shadow", "shadow")
    assert got[1] == ("udp-only", "skipped", "protocol is tcp, rule wants udp")
    assert got[2][:2] == ("lower", "decided")


def test_explain_all_says_why_others_cannot_match() -> None:
    result = explain(compile_yaml(TEXT), req("a.com"), 0.0, all_rules=True)
    why = dict(result.not_candidates)
    assert why == {
        "p/elsewhere": "destination or port does not match",
        "p/team-only": "identity selector does not match",
    }


def test_explain_as_dict_is_json_ready() -> None:
    result = explain(compile_yaml(TEXT), req(ip="169.254.169.254"), 0.0)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["guarded"] == "metadata"
    assert data["decision"]["action"] == "deny"
