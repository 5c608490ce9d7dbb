"""The request pipeline's decisions without IO: who sent it, which host decides, what the
decision does, and the audit record."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest

from gatewayd.config import Config
from gatewayd.identity import Identity, Lease, LeaseTable, Quarantine
from gatewayd.l7.exchange import (
    Asserted,
    Exchange,
    Origin,
    Refusal,
    View,
    action_for,
    decide,
    request_event,
    which_host,
    who_sent,
)
from gatewayd.l7.target import read_target
from gatewayd.policy import Action, Decision, Guard, compile_plan, parse_documents
from gatewayd.verdict.resolved import ResolvedNames

POLICY = """
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: p}
spec:
  priority: 100
  rules:
    - {id: openai, action: inspect, destination: {hosts: [api.openai.com]}}
    - {id: push, action: deny, destination: {hosts: [github.com]},
       l7: {methods: [POST], paths: ["/*/git-receive-pack"]}, reason: no pushing}
    - {id: read, action: allow, destination: {hosts: [github.com]}}
    - {id: lab, action: deny, priority: 900, destination: {cidrs: [10.78.0.0/24]}}
"""
NOW = 1_800_000_000.0
AGENT = Identity("bot", "research", "alpha", "lab")
ANALYST = Identity("analyst", "research", "beta", "lab")
SRC = ipaddress.IPv4Address("10.77.0.11")
OPENAI = ipaddress.IPv4Address("10.78.0.10")


def view(quarantined: dict[str, Quarantine] | None = None) -> View:
    plan = compile_plan(parse_documents({"p.yaml": POLICY}), bundle_version=3,
                        guard=Guard.builtin())
    leases = LeaseTable.build([(Lease(1, "10.77.0.11", "wl0", "bot", NOW - 10, NOW + 3600),
                                AGENT)], generation=1, now=NOW)
    names = ResolvedNames(min_ttl=0, max_ttl=3600, max_addresses=16)
    names.record("bot", "api.openai.com", OPENAI.packed, 300, NOW)
    return View(plan=plan, leases=leases, quarantined=quarantined or {},
                agents={"bot": AGENT, "analyst": ANALYST}, names=names)


def origin(via: str = "transparent", **kw: object) -> Origin:
    base: dict[str, object] = {"via": via, "src_ip": SRC, "src_port": 40000,
                               "dst_ip": OPENAI if via == "transparent" else None,
                               "dst_port": 80 if via == "transparent" else 0, "iface": "wl0"}
    base.update(kw)
    return Origin(**base)  # type: ignore[arg-type]


def test_the_lease_names_the_sender() -> None:
    assert who_sent(origin(), view(), None, NOW) == AGENT


def test_an_assertion_must_agree_with_the_lease() -> None:
    refused = who_sent(origin("proxy"), view(), Asserted("analyst", "basic"), NOW)
    assert isinstance(refused, Refusal) and refused.flag == "assertion-mismatch"
    assert who_sent(origin("proxy"), view(), Asserted("bot", "jwt"), NOW) == AGENT


def test_an_assertion_names_a_sender_without_a_lease() -> None:
    o = origin("proxy", src_ip=ipaddress.IPv4Address("10.77.0.99"))
    assert who_sent(o, view(), Asserted("analyst", "certificate"), NOW) == ANALYST
    unknown = who_sent(o, view(), Asserted("ghost", "basic"), NOW)
    assert isinstance(unknown, Refusal) and unknown.status == 403


def test_nobody_is_refused_407_on_the_proxy_and_403_otherwise() -> None:
    stranger = ipaddress.IPv4Address("10.77.0.99")
    proxy = who_sent(origin("proxy", src_ip=stranger), view(), None, NOW)
    assert isinstance(proxy, Refusal) and proxy.status == 407
    assert (b"proxy-authenticate", b'Basic realm="clawgress"') in proxy.headers
    diverted = who_sent(origin(src_ip=stranger), view(), None, NOW)
    assert isinstance(diverted, Refusal) and diverted.status == 403


def test_a_quarantined_agent_is_refused() -> None:
    held = {"bot": Quarantine("bot", NOW - 5, "tripwire")}
    refused = who_sent(origin(), view(held), None, NOW)
    assert isinstance(refused, Refusal) and refused.flag == "quarantined"
    assert "tripwire" in refused.reason


def test_the_host_decides_only_when_the_agent_resolved_it_there() -> None:
    t = read_target("GET", b"/", b"api.openai.com", via="transparent", default_port=80)
    assert which_host(origin(), t, AGENT, view(), Config(), NOW) == ("api.openai.com", ())
    other = read_target("GET", b"/", b"pastebin.com", via="transparent", default_port=80)
    assert which_host(origin(), other, AGENT, view(), Config(), NOW) == (None,
                                                                         ("host-mismatch",))


def test_an_intercepted_connection_without_a_verified_name_is_decided_by_address() -> None:
    # TLS without an SNI (or with one the agent did not resolve there) was decided by
    # address: a Host naming another server does not make its requests that server's.
    unbound = origin(tls="intercepted", dst_port=443)
    other = read_target("GET", b"/", b"github.com", via="transparent", default_port=443)
    assert which_host(unbound, other, AGENT, view(), Config(), NOW) == (None,
                                                                        ("host-mismatch",))
    flagged = Config.model_validate({"names": {"sni_mismatch": "flag"}})
    assert which_host(unbound, other, AGENT, view(), flagged, NOW) == ("github.com",
                                                                       ("host-mismatch",))


def test_a_bound_connection_serves_its_name_only() -> None:
    bound = origin(bound="api.openai.com", tls="intercepted", sni="api.openai.com")
    other = read_target("GET", b"/", b"github.com", via="transparent", default_port=443)
    refused = which_host(bound, other, AGENT, view(), Config(), NOW)
    assert isinstance(refused, Refusal) and refused.status == 421


def test_method_and_path_decide() -> None:
    v = view()
    o = origin(dst_ip=ipaddress.IPv4Address("10.78.0.14"), dst_port=443)
    push = decide(o, AGENT, "github.com", "POST", "/org/repo.git/git-receive-pack", 443,
                  o.dst_ip, v.plan, NOW)
    assert (push.action, push.rule_id) == (Action.DENY, "push")
    read = decide(o, AGENT, "github.com", "GET", "/org/repo.git/info/refs", 443, o.dst_ip,
                  v.plan, NOW)
    assert (read.action, read.rule_id) == (Action.ALLOW, "read")


@pytest.mark.parametrize(("action", "status", "quarantine"), [
    (Action.ALLOW, None, False), (Action.INSPECT, None, False), (Action.ALERT, None, False),
    (Action.LOG_ONLY, None, False), (Action.TRANSFORM, None, False),
    (Action.DENY, 403, False), (Action.THROTTLE, 429, False), (Action.QUARANTINE, 403, True),
])
def test_what_each_action_does(action: Action, status: int | None, quarantine: bool) -> None:
    act = action_for(Decision(action, "why", "p", "r", 1), retry_after=7)
    assert (act.refusal.status if act.refusal else None) == status
    assert act.quarantine is quarantine
    if action is Action.THROTTLE:
        assert act.refusal is not None
        assert (b"retry-after", b"7") in act.refusal.headers
    if action is Action.ALERT:
        assert act.flags == ("alert",)


def test_the_record_carries_what_the_spec_names() -> None:
    ex = Exchange("req-1", NOW, origin(), method="POST", host="api.openai.com", port=80,
                  path="/v1/chat/completions", identity=AGENT,
                  decision=Decision(Action.INSPECT, "why", "p", "openai", 3), status=200,
                  bytes_out=4096, bytes_in=512)
    fields = request_event(ex, NOW + 0.0125, "gw").as_dict()
    for name in ("request_id", "method", "path", "bytes_out", "bytes_in", "latency_ms",
                 "decision", "policy_id", "rule_id", "enforcement_mode"):
        assert name in fields
    assert (fields["latency_ms"], fields["decision"], fields["kind"]) == (12.5, "inspect",
                                                                         "http.request")
    json.dumps(fields)
    refused = Exchange("req-2", time.time(), origin(), method="GET", status=400,
                       reason="malformed", flags=["malformed"])
    assert request_event(refused, time.time(), "gw").fields["action"] == "deny"


def test_a_report_mode_rule_is_recorded_and_the_request_proceeds() -> None:
    policy = POLICY + (
        "    - {id: would-block, action: deny, enforcement_mode: report, priority: 10,\n"
        "       destination: {hosts: [api.openai.com]}, l7: {paths: [\"/v1/*\"]}}\n")
    plan = compile_plan(parse_documents({"p.yaml": policy}), bundle_version=3,
                        guard=Guard.builtin())
    d = decide(origin(), AGENT, "api.openai.com", "POST", "/v1/chat/completions", 80, OPENAI,
               plan, NOW)
    assert action_for(d, 1).refusal is None  # forwarded
    assert d.shadow is not None and (d.shadow.action, d.shadow.rule_id) == (Action.DENY,
                                                                            "would-block")
    ex = Exchange("r", NOW, origin(), method="POST", identity=AGENT, decision=d, status=200)
    record = request_event(ex, NOW, "gw").fields
    assert record["shadow"]["rule_id"] == "would-block" and record["action"] == "inspect"
