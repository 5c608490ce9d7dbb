"""Evaluation semantics of the compiled plan, one behaviour per test."""

from __future__ import annotations

import ipaddress

from gatewayd.identity import Identity
from gatewayd.policy import Action, EnforcementMode, Guard, Plan
from gatewayd.policy.decision import Request

from .conftest import OTHER, RESEARCH, compile_yaml, policy, req


def decide(plan: Plan, request: Request, now: float = 0.0) -> tuple[str, str | None]:
    d = plan.evaluate(request, now)
    return str(d.action), d.rule_id


def test_exact_host_allow_and_default_deny() -> None:
    plan = compile_yaml(policy("    - {id: ok, action: allow, destination: {hosts: [a.com]}}\n"))
    assert decide(plan, req("a.com")) == ("allow", "ok")
    d = plan.evaluate(req("b.com"))
    assert (d.action, d.rule_id, d.reason) == (Action.DENY, None, "no rule matched; default deny")
    assert d.bundle_version == 7


def test_unknown_identity_always_denied() -> None:
    plan = compile_yaml(policy("    - {id: all, action: allow}\n"))
    d = plan.evaluate(req("a.com", identity=None))
    assert d.action is Action.DENY and "unknown-identity" in d.flags


def test_deny_all_plan() -> None:
    plan = Plan.deny_all("no valid policy bundle: none published")
    d = plan.evaluate(req("a.com"))
    assert d.action is Action.DENY and d.reason == "no valid policy bundle: none published"
    assert "no-policy" in d.flags


def test_host_names_compare_normalized() -> None:
    plan = compile_yaml(policy("    - {id: ok, action: allow, destination: {hosts: [A.com.]}}\n"))
    assert decide(plan, req("A.COM.")) == ("allow", "ok")


def test_wildcard_matches_subdomains_not_apex() -> None:
    plan = compile_yaml(
        policy("    - {id: w, action: allow, destination: {hosts: ['*.ex.com']}}\n")
    )
    assert decide(plan, req("a.ex.com"))[0] == "allow"
    assert decide(plan, req("a.b.ex.com"))[0] == "allow"
    assert decide(plan, req("ex.com"))[0] == "deny"
    assert decide(plan, req("aex.com"))[0] == "deny"
    assert decide(plan, req("ex.com.evil.org"))[0] == "deny"


def test_cidrs_v4_v6_and_mapped() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: v4, action: allow, destination: {cidrs: [203.0.113.0/24]}}\n"
            "    - {id: v6, action: allow, destination: {cidrs: ['2001:db8::/32']}}\n"
        )
    )
    assert decide(plan, req(ip="203.0.113.9")) == ("allow", "v4")
    assert decide(plan, req(ip="203.0.114.9"))[0] == "deny"
    assert decide(plan, req(ip="2001:db8::1")) == ("allow", "v6")
    assert decide(plan, req(ip="::ffff:203.0.113.9")) == ("allow", "v4")
    assert decide(plan, req(ip="2001:db9::1"))[0] == "deny"


def test_hosts_and_cidrs_are_alternatives() -> None:
    plan = compile_yaml(
        policy("    - {id: r, action: allow, destination: {hosts: [a.com], cidrs: [10.0.0.0/8]}}\n")
    )
    assert decide(plan, req("a.com", ip="192.0.2.1"))[0] == "allow"
    assert decide(plan, req("b.com", ip="10.1.2.3"))[0] == "allow"
    assert decide(plan, req("b.com", ip="192.0.2.1"))[0] == "deny"


def test_ports_exact_range_and_missing() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: r, action: allow,"
            " destination: {hosts: [a.com], ports: [443, '8000-8100']}}\n"
        )
    )
    assert decide(plan, req("a.com", port=443))[0] == "allow"
    assert decide(plan, req("a.com", port=8050))[0] == "allow"
    assert decide(plan, req("a.com", port=8101))[0] == "deny"
    assert decide(plan, req("a.com", port=None))[0] == "deny"


def test_protocol() -> None:
    plan = compile_yaml(
        policy("    - {id: r, action: allow, destination: {cidrs: [10.0.0.0/8], protocol: udp}}\n")
    )
    assert decide(plan, req(ip="10.0.0.1", protocol="udp"))[0] == "allow"
    assert decide(plan, req(ip="10.0.0.1", protocol="tcp"))[0] == "deny"


def test_identity_selectors() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: r, action: allow, identity: {team: [research, ml], environment: prod}}\n"
        )
    )
    assert decide(plan, req("a.com"))[0] == "allow"
    assert decide(plan, req("a.com", identity=OTHER))[0] == "deny"
    ml_dev = Identity("x", "ml", "p", "dev")
    assert decide(plan, req("a.com", identity=ml_dev))[0] == "deny"
    ml_prod = Identity("x", "ml", "p", "prod")
    assert decide(plan, req("a.com", identity=ml_prod))[0] == "allow"


def test_priority_beats_specificity() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: broad-deny, priority: 10, action: deny}\n"
            "    - {id: exact-allow, priority: 20, action: allow, destination: {hosts: [a.com]}}\n"
        )
    )
    assert decide(plan, req("a.com")) == ("deny", "broad-deny")


def test_specificity_order_of_destinations() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: any, action: deny}\n"
            "    - {id: cidr16, action: allow, destination: {cidrs: [10.1.0.0/16]}}\n"
            "    - {id: cidr24, action: deny, destination: {cidrs: [10.1.2.0/24]}}\n"
            "    - {id: suffix2, action: allow, destination: {hosts: ['*.ex.com']}}\n"
            "    - {id: suffix3, action: deny, destination: {hosts: ['*.b.ex.com']}}\n"
            "    - {id: route, action: allow, destination: {cidrs: [10.1.2.3/32]}}\n"
            "    - {id: exact, action: deny, destination: {hosts: [a.b.ex.com]}}\n"
        )
    )
    assert decide(plan, req("a.b.ex.com", ip="10.1.2.3"))[1] == "exact"
    assert decide(plan, req("z.b.ex.com", ip="10.1.2.3"))[1] == "route"
    assert decide(plan, req("z.b.ex.com", ip="10.1.2.4"))[1] == "suffix3"
    assert decide(plan, req("z.c.ex.com", ip="10.1.2.4"))[1] == "suffix2"
    assert decide(plan, req("other.org", ip="10.1.2.4"))[1] == "cidr24"
    assert decide(plan, req("other.org", ip="10.1.9.4"))[1] == "cidr16"
    assert decide(plan, req("other.org", ip="192.0.2.1"))[1] == "any"


def test_specificity_ports_then_identity_then_protocol() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: range-wide, action: allow,"
            " destination: {hosts: [a.com], ports: ['1-1000']}}\n"
            "    - {id: range-narrow, action: deny,"
            " destination: {hosts: [a.com], ports: ['400-500']}}\n"
            "    - {id: one, action: allow, destination: {hosts: [a.com], ports: [443]}}\n"
            "    - {id: agent, action: deny, identity: {agent: agent-1},"
            " destination: {hosts: [a.com], ports: [443]}}\n"
        )
    )
    assert decide(plan, req("a.com", port=443)) == ("deny", "agent")
    assert decide(plan, req("a.com", port=443, identity=OTHER)) == ("allow", "one")
    assert decide(plan, req("a.com", port=450, identity=OTHER)) == ("deny", "range-narrow")
    assert decide(plan, req("a.com", port=900, identity=OTHER)) == ("allow", "range-wide")
    proto = compile_yaml(
        policy(
            "    - {id: anyp, action: deny, destination: {hosts: [a.com]}}\n"
            "    - {id: tcp, action: allow, destination: {hosts: [a.com], protocol: tcp}}\n"
        )
    )
    assert decide(proto, req("a.com")) == ("allow", "tcp")


def test_team_outranks_environment() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: env, action: deny, identity: {environment: prod}}\n"
            "    - {id: team, action: allow, identity: {team: research}}\n"
        )
    )
    assert decide(plan, req("a.com")) == ("allow", "team")


def test_deny_overrides_on_equal_rank() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: a-allow, action: allow, destination: {hosts: [a.com]}}\n"
            "    - {id: z-deny, action: deny, destination: {hosts: [a.com]}}\n"
            "    - {id: m-alert, action: alert, destination: {hosts: [a.com]}}\n"
        )
    )
    assert decide(plan, req("a.com")) == ("deny", "z-deny")


def test_ids_break_remaining_ties_independently_of_file_order() -> None:
    rules_ab = (
        "    - {id: b, action: allow, destination: {hosts: [a.com]}}\n"
        "    - {id: a, action: allow, destination: {hosts: [a.com]}}\n"
    )
    rules_ba = (
        "    - {id: a, action: allow, destination: {hosts: [a.com]}}\n"
        "    - {id: b, action: allow, destination: {hosts: [a.com]}}\n"
    )
    assert decide(compile_yaml(policy(rules_ab)), req("a.com")) == ("allow", "a")
    assert decide(compile_yaml(policy(rules_ba)), req("a.com")) == ("allow", "a")


def test_shadow_rule_recorded_not_enforced() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: new-deny, priority: 1, action: deny, enforcement_mode: report,"
            " destination: {hosts: [a.com]}}\n"
            "    - {id: allow, action: allow, destination: {hosts: [a.com]}}\n"
        )
    )
    d = plan.evaluate(req("a.com"))
    assert (d.action, d.rule_id, d.enforcement_mode) == (
        Action.ALLOW,
        "allow",
        EnforcementMode.ENFORCE,
    )
    assert d.shadow is not None
    assert (d.shadow.action, d.shadow.rule_id, d.shadow.enforcement_mode) == (
        Action.DENY,
        "new-deny",
        EnforcementMode.REPORT,
    )


def test_shadow_below_the_deciding_rule_is_not_reported() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: new-deny, priority: 5000, action: deny, enforcement_mode: report}\n"
            "    - {id: allow, action: allow, destination: {hosts: [a.com]}}\n"
        )
    )
    assert plan.evaluate(req("a.com")).shadow is None
    # With nothing enforced matching, the shadow rides on the default deny.
    d = plan.evaluate(req("b.com"))
    assert d.rule_id is None and d.shadow is not None and d.shadow.rule_id == "new-deny"


def test_report_policy_makes_every_rule_report() -> None:
    text = policy(
        "    - {id: r, action: allow, enforcement_mode: enforce}\n",
        extra="  enforcement_mode: report\n",
    )
    d = compile_yaml(text).evaluate(req("a.com"))
    assert d.action is Action.DENY and d.shadow is not None and d.shadow.action is Action.ALLOW


def test_l7_rule_at_l4_means_inspect() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: no-push, action: deny, destination: {hosts: [git.com]},"
            " l7: {methods: [POST], paths: ['/*/git-receive-pack']}}\n"
            "    - {id: git, action: allow, destination: {hosts: [git.com]}}\n"
        )
    )
    d = plan.evaluate(req("git.com"))
    assert (d.action, d.rule_id) == (Action.INSPECT, "no-push")
    assert "needs-l7" in d.flags and "methods, paths" in d.reason
    push = req("git.com", layer="l7", method="POST", path="/org/repo.git/git-receive-pack")
    assert decide(plan, push) == ("deny", "no-push")
    pull = req("git.com", layer="l7", method="GET", path="/org/repo.git/info/refs?service=x")
    assert decide(plan, pull) == ("allow", "git")


def test_report_rule_with_l7_conditions_skipped_at_l4() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: shadow-l7, action: deny, enforcement_mode: report, l7: {methods: [POST]}}\n"
            "    - {id: ok, action: allow, destination: {hosts: [a.com]}}\n"
        )
    )
    d = plan.evaluate(req("a.com"))
    assert (d.action, d.rule_id, d.shadow) == (Action.ALLOW, "ok", None)


def test_l7_conditions() -> None:
    plan = compile_yaml(
        policy(
            "    - id: ai\n      action: allow\n      l7:\n        providers: [openai]\n"
            "        models: ['gpt-4o*']\n        tools: ['web.*']\n        dlp_classes: [pii]\n"
            "        token_estimate: {min: 10, max: 100}\n"
        )
    )
    base = {
        "layer": "l7",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "tools": ("web.search",),
        "dlp_classes": ("pii.email",),
        "token_estimate": 50,
    }
    assert decide(plan, req("a.com", **base))[0] == "allow"
    for change in (
        {"provider": "anthropic"},
        {"model": "gpt-3.5"},
        {"tools": ("shell.exec",)},
        {"tools": ()},
        {"dlp_classes": ("secrets.aws",)},
        {"token_estimate": 101},
        {"token_estimate": 9},
        {"token_estimate": None},
        {"model": None},
    ):
        assert decide(plan, req("a.com", **{**base, **change}))[0] == "deny", change


def test_reads_body_only_for_rules_on_what_a_body_says() -> None:
    head_only = [
        "    - {id: a, action: allow}\n",
        "    - {id: a, action: deny, l7: {methods: [POST], paths: ['/x']}}\n",
        "    - {id: a, action: deny, when: 'request.path == \"/x\"'}\n",
    ]
    for rules in head_only:
        assert not compile_yaml(policy(rules)).reads_body, rules
    body = [
        "    - {id: a, action: deny, l7: {providers: [openai]}}\n",
        "    - {id: a, action: deny, l7: {models: ['gpt-*']}}\n",
        "    - {id: a, action: deny, l7: {tools: ['shell.*']}}\n",
        "    - {id: a, action: deny, l7: {dlp_classes: [secrets]}}\n",
        "    - {id: a, action: deny, l7: {token_estimate: {max: 10}}}\n",
        "    - {id: a, action: allow, when: 'has(request.model) && request.model == \"x\"'}\n",
        "    - {id: a, action: deny, enforcement_mode: report, l7: {dlp_classes: [pii]}}\n",
    ]
    for rules in body:
        assert compile_yaml(policy(rules)).reads_body, rules


def test_when_condition_true_false() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: night, action: deny, when: 'time.hour < 6'}\n"
            "    - {id: ok, action: allow, priority: 2000}\n"
        )
    )
    assert decide(plan, req("a.com"), now=3 * 3600) == ("deny", "night")
    assert decide(plan, req("a.com"), now=12 * 3600) == ("allow", "ok")


def test_when_condition_error_fails_closed() -> None:
    plan = compile_yaml(
        policy("    - {id: needs-ip, action: allow, when: 'destination.ip.startsWith(\"10.\")'}\n")
    )
    d = plan.evaluate(req("a.com"))
    assert d.action is Action.DENY and d.rule_id == "needs-ip"
    assert "condition-error" in d.flags and "failing closed" in d.reason
    assert "destination.ip" in d.reason


def test_when_reading_l7_fields_at_l4_means_inspect() -> None:
    plan = compile_yaml(
        policy("    - {id: small, action: allow, when: 'request.token_estimate < 1000'}\n")
    )
    assert decide(plan, req("a.com")) == ("inspect", "small")
    assert decide(plan, req("a.com", layer="l7", token_estimate=10)) == ("allow", "small")
    assert decide(plan, req("a.com", layer="l7", token_estimate=1e4 and 10_000))[0] == "deny"


def test_guard_metadata_needs_explicit_rule() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: all, action: allow}\n"
            "    - {id: link-local, action: allow, destination: {cidrs: [169.254.0.0/16]}}\n"
            "    - {id: wild, action: allow, destination: {hosts: ['*.example.com']}}\n"
        )
    )
    d = plan.evaluate(req("x.example.com", ip="169.254.169.254"))
    assert d.action is Action.DENY and "guard class (metadata)" in d.reason
    assert "guarded:metadata" in d.flags
    # A broader guarded range named explicitly still does not name the metadata service.
    assert decide(plan, req(ip="169.254.1.1"))[1] == "link-local"
    named = compile_yaml(
        policy("    - {id: meta, action: allow, destination: {cidrs: [169.254.169.254/32]}}\n")
    )
    assert decide(named, req(ip="169.254.169.254")) == ("allow", "meta")


def test_guard_by_name_and_loopback() -> None:
    plan = compile_yaml(policy("    - {id: all, action: allow}\n"))
    for host, ip in (
        ("localhost", None),
        ("db.localhost", None),
        ("metadata.google.internal", None),
        (None, "127.0.0.1"),
        (None, "::1"),
        (None, "fe80::1"),
        (None, "fd00:ec2::254"),
        (None, "::ffff:127.0.0.1"),
        (None, "0.0.0.0"),
    ):
        assert decide(plan, req(host, ip=ip))[0] == "deny", (host, ip)
    named = compile_yaml(
        policy(
            "    - {id: gmeta, action: allow, destination: {hosts: [metadata.google.internal]}}\n"
        )
    )
    assert decide(named, req("metadata.google.internal", ip="169.254.169.254"))[0] == "allow"


def test_guard_name_does_not_cover_rebinding() -> None:
    plan = compile_yaml(
        policy("    - {id: api, action: allow, destination: {hosts: [api.example.com]}}\n")
    )
    assert decide(plan, req("api.example.com", ip="93.184.216.34"))[0] == "allow"
    assert decide(plan, req("api.example.com", ip="169.254.169.254"))[0] == "deny"
    assert decide(plan, req("api.example.com", ip="127.0.0.1"))[0] == "deny"


def test_guard_gateway_addresses_and_configured_extras() -> None:
    guard = Guard.builtin(
        gateway_addresses=[ipaddress.ip_address("10.20.0.1")],
        extra_networks=[ipaddress.ip_network("10.0.0.0/30")],
        extra_hosts=["vault.internal"],
    )
    plan = compile_yaml(policy("    - {id: all, action: allow}\n"), guard=guard)
    assert "guarded:gateway" in plan.evaluate(req(ip="10.20.0.1")).flags
    assert decide(plan, req(ip="10.0.0.2"))[0] == "deny"
    assert decide(plan, req("vault.internal"))[0] == "deny"
    assert decide(plan, req(ip="10.20.0.2"))[0] == "allow"


def test_deny_rules_apply_to_guarded_destinations() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: meta, action: allow, destination: {cidrs: [169.254.169.254/32]}}\n"
            "    - {id: block, action: deny, priority: 1, identity: {team: research}}\n"
        )
    )
    assert decide(plan, req(ip="169.254.169.254")) == ("deny", "block")
    assert decide(plan, req(ip="169.254.169.254", identity=OTHER)) == ("allow", "meta")


def test_rule_matching_by_host_and_cidr_is_judged_on_the_way_that_names_the_guard() -> None:
    plan = compile_yaml(
        policy(
            "    - {id: both, action: allow, destination: {hosts: [svc.internal],"
            " cidrs: [169.254.169.254/32]}}\n"
        )
    )
    assert decide(plan, req("svc.internal", ip="169.254.169.254")) == ("allow", "both")


def test_same_input_same_decision() -> None:
    text = policy(
        "    - {id: a, action: allow, destination: {hosts: ['*.ex.com']}}\n"
        "    - {id: b, action: deny, destination: {cidrs: [10.0.0.0/8]}}\n"
    )
    first = compile_yaml(text).evaluate(req("a.ex.com", ip="10.0.0.1"))
    for _ in range(5):
        assert compile_yaml(text).evaluate(req("a.ex.com", ip="10.0.0.1")) == first


def test_request_helpers() -> None:
    r = Request(identity=RESEARCH, host="A.Com.", dest_ip=ipaddress.ip_address("::ffff:1.2.3.4"))
    assert r.host == "a.com" and str(r.dest_ip) == "1.2.3.4"
    act = r.activation(86400 * 3 + 3600 * 5)
    assert act["time"]["hour"] == 5 and act["time"]["weekday"] == 0  # 1970-01-04: a Sunday
    assert "tools" not in act["request"] and act["destination"]["ip"] == "1.2.3.4"


def test_memo_never_changes_a_decision() -> None:
    text = policy(
        "    - {id: night, action: deny, priority: 1, destination: {hosts: [t.com]},"
        " when: 'time.hour < 6'}\n"
        "    - {id: t, action: allow, destination: {hosts: [t.com]}}\n"
        "    - {id: all, action: allow}\n"
        "    - {id: meta, action: allow, destination: {cidrs: [169.254.169.254/32]}}\n"
    )
    memo = compile_yaml(text)
    cold = compile_yaml(text)
    cold.memo_size = 0
    stream = [req("t.com"), req("a.com"), req(ip="169.254.169.254"), req("x.com", ip="127.0.0.1")]
    for now in (3 * 3600, 12 * 3600, 3 * 3600):
        for r in stream * 3:
            assert memo.evaluate(r, now) == cold.evaluate(r, now)
    assert decide(memo, req("t.com"), now=3 * 3600) == ("deny", "night")
    assert decide(memo, req("t.com"), now=12 * 3600) == ("allow", "t")


def test_memo_keeps_guarded_decisions_of_plain_rules_and_tells_the_families_apart() -> None:
    text = policy(
        "    - {id: lo6, action: allow, destination: {cidrs: ['::1/128']}}\n"
        "    - {id: meta, action: allow, destination: {cidrs: [169.254.169.254/32]}}\n"
        "    - {id: web, action: allow, destination: {hosts: [a.com]}}\n"
        "    - {id: udp, action: deny, destination: {hosts: [b.com], protocol: udp}}\n"
        "    - {id: tcp, action: allow, destination: {hosts: [b.com], protocol: tcp}}\n"
        "    - {id: post, action: deny, destination: {hosts: [a.com]},"
        " l7: {methods: [POST]}}\n"
    )
    memo = compile_yaml(text)
    cold = compile_yaml(text)
    cold.memo_size = 0
    stream = [req(ip="::1"), req(ip="0.0.0.1"), req(ip="169.254.169.254"),
              req("a.com", ip="127.0.0.1"), req("a.com", ip="10.0.0.1", method="GET"),
              req("a.com", ip="10.0.0.1", method="POST", layer="l7"),
              req("b.com", ip="10.0.0.2", protocol="udp"), req("b.com", ip="10.0.0.2")]
    for r in stream * 3:
        assert memo.evaluate(r) == cold.evaluate(r)
    # The guarded walks of rules that check only the key are remembered (the protocol is
    # part of it); the one with an L7 rule is not.
    assert len(memo._memo) == 5
    assert decide(memo, req("b.com", ip="10.0.0.2", protocol="udp")) == ("deny", "udp")
    assert decide(memo, req("b.com", ip="10.0.0.2", protocol="tcp")) == ("allow", "tcp")
    assert decide(memo, req(ip="::1")) == ("allow", "lo6")
    assert decide(memo, req(ip="0.0.0.1"))[0] == "deny"


def test_memo_is_bounded() -> None:
    plan = compile_yaml(policy("    - {id: all, action: allow}\n"))
    plan.memo_size = 10
    for port in range(1, 50):
        assert plan.evaluate(req("a.com", port=port)).action is Action.ALLOW
        assert len(plan._memo) <= 10


def test_a_rule_that_names_the_guard_but_fails_a_condition_is_not_held_back_by_it() -> None:
    plan = compile_yaml(policy(
        "    - {id: r, action: allow, destination: {hosts: [a.com], cidrs: [127.0.0.0/8],"
        " protocol: tcp}}\n"))
    d = plan.evaluate(req("a.com", ip="127.0.0.1", protocol="udp"))
    assert d.reason == "no rule matched; default deny"
    assert d.flags == ("guarded:loopback",)
