"""Property tests: the compiled plan agrees with the naive reference evaluator, always,
and evaluating is deterministic."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.identity import Identity
from gatewayd.policy import Guard, Request, compile_plan, reference
from gatewayd.policy.documents import PolicyDocument, SourcedDocument

HOSTS = [
    "a.com",
    "b.a.com",
    "c.b.a.com",
    "x.org",
    "metadata.google.internal",
    "localhost",
    "d.localhost",
    "svc.internal",
]
WILDCARDS = ["*.a.com", "*.b.a.com", "*.org", "*.localhost"]
CIDRS = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.3/32",
    "169.254.0.0/16",
    "169.254.169.254/32",
    "127.0.0.0/8",
    "2001:db8::/32",
    "2001:db8::1/128",
    "fe80::/10",
    "10.20.0.1/32",
]
ADDRESSES = [
    "10.1.2.3",
    "10.1.9.9",
    "10.200.0.1",
    "169.254.169.254",
    "169.254.1.1",
    "127.0.0.1",
    "2001:db8::1",
    "2001:db8::2",
    "fe80::1",
    "8.8.8.8",
    "10.20.0.1",
    "::ffff:10.1.2.3",
]
AGENTS, TEAMS, PROJECTS, ENVS = ["a1", "a2", "a3"], ["t1", "t2"], ["p1", "p2"], ["prod", "dev"]
WHENS = [
    None,
    "time.hour < 12",
    "destination.port == 443",
    'request.method == "POST"',
    "has(request.model)",
    'identity.team_id == "t1" || destination.protocol == "udp"',
]

GUARD = Guard.builtin(
    gateway_addresses=[ipaddress.ip_address("10.20.0.1")], extra_hosts=["svc.internal"]
)


def _selector(pool: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just("*"),
        st.sampled_from(pool),
        st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True),
    )


rule_strategy = st.fixed_dictionaries(
    {
        "action": st.sampled_from(
            ["allow", "deny", "inspect", "throttle", "quarantine", "transform", "alert", "log-only"]
        ),
        "identity": st.fixed_dictionaries(
            {},
            optional={
                "agent": _selector(AGENTS),
                "team": _selector(TEAMS),
                "project": _selector(PROJECTS),
                "environment": _selector(ENVS),
            },
        ),
        "destination": st.fixed_dictionaries(
            {},
            optional={
                "hosts": st.lists(st.sampled_from(HOSTS + WILDCARDS), max_size=3, unique=True),
                "cidrs": st.lists(st.sampled_from(CIDRS), max_size=2, unique=True),
                "ports": st.lists(
                    st.sampled_from([80, 443, "400-500", "1-1000"]), max_size=2, unique=True
                ),
                "protocol": st.sampled_from(["tcp", "udp", "any"]),
            },
        ),
    },
    optional={
        "priority": st.sampled_from([1, 100, 1000]),
        "enforcement_mode": st.sampled_from(["enforce", "report"]),
        "l7": st.fixed_dictionaries(
            {},
            optional={
                "methods": st.lists(
                    st.sampled_from(["GET", "POST"]), min_size=1, max_size=2, unique=True
                ),
                "models": st.just(["gpt-*"]),
                "tools": st.just(["shell.*"]),
                "token_estimate": st.just({"max": 100}),
            },
        ),
        "when": st.sampled_from(WHENS),
    },
)

policy_strategy = st.fixed_dictionaries(
    {"rules": st.lists(rule_strategy, min_size=0, max_size=8)},
    optional={
        "enforcement_mode": st.sampled_from(["enforce", "report"]),
        "priority": st.sampled_from([1, 100, 1000]),
    },
)


def _documents(specs: list[dict[str, Any]]) -> list[SourcedDocument]:
    docs = []
    for i, spec in enumerate(specs):
        rules = [{**r, "id": f"r{j}"} for j, r in enumerate(spec["rules"])]
        for r in rules:
            if r.get("when") is None:
                r.pop("when", None)
        raw = {
            "apiVersion": "clawgress.io/v1",
            "kind": "Policy",
            "metadata": {"id": f"p{i}"},
            "spec": {**spec, "rules": rules},
        }
        docs.append(SourcedDocument(PolicyDocument.model_validate(raw), f"p{i}.yaml", 0))
    return docs


IDENTITIES = [Identity(a, t, p, e) for a in AGENTS for t in TEAMS for p in PROJECTS for e in ENVS]

# Weighted towards requests that rules can match: an unknown source, a missing host or a
# missing address is one choice among many.
request_strategy = st.builds(
    Request,
    identity=st.sampled_from([None, *IDENTITIES]),
    dest_ip=st.sampled_from([None, *ADDRESSES]).map(
        lambda a: ipaddress.ip_address(a) if a else None
    ),
    host=st.sampled_from([None, *HOSTS, "z.b.a.com", "a.org", "nope.net"]),
    port=st.sampled_from([None, 80, 443, 450, 999, 5000]),
    protocol=st.sampled_from(["tcp", "udp"]),
    layer=st.sampled_from(["l4", "l7"]),
    method=st.sampled_from([None, "GET", "POST"]),
    model=st.sampled_from([None, "gpt-4o", "claude"]),
    tools=st.sampled_from([(), ("shell.exec",), ("web.get",)]),
    token_estimate=st.sampled_from([None, 5, 500]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(policy_strategy, min_size=0, max_size=3),
    requests=st.lists(request_strategy, min_size=1, max_size=12),
    hour=st.integers(0, 23),
)
def test_plan_agrees_with_reference(
    specs: list[dict[str, Any]], requests: list[Request], hour: int
) -> None:
    docs = _documents(specs)
    plan = compile_plan(docs, bundle_version=3, guard=GUARD)
    now = 1_700_000_000 - (1_700_000_000 % 86400) + hour * 3600
    for request in requests:
        got = plan.evaluate(request, now)
        want = reference.evaluate(docs, request, guard=GUARD, bundle_version=3, now=now)
        assert got == want, (request, got, want)


@settings(max_examples=100, deadline=None)
@given(specs=st.lists(policy_strategy, min_size=1, max_size=3), request=request_strategy)
def test_evaluation_is_deterministic(specs: list[dict[str, Any]], request: Request) -> None:
    docs = _documents(specs)
    first = compile_plan(docs, bundle_version=1, guard=GUARD).evaluate(request, 0.0)
    again = compile_plan(list(reversed(docs)), bundle_version=1, guard=GUARD)
    assert again.evaluate(request, 0.0) == first
    assert again.evaluate(request, 0.0) == first
