from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gatewayd.config import parse_config
from gatewayd.identity import Quarantine
from gatewayd.netfilter.marks import State
from gatewayd.verdict import flows_to_end
from gatewayd.verdict.resolved import ResolvedNames

from .conftest import NOW, RESEARCH, leases, plan

CONFIG = parse_config(
    "workload: {interfaces: [{name: wl0, subnets: [10.77.0.0/24, 'fd77::/64']}]}\n", "t")


@dataclass(frozen=True)
class Flow:
    protocol: int
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    sport: int
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    dport: int
    state: State


def flow(src: str, dst: str, dport: int, state: State = State.ALLOW, proto: int = 6) -> Flow:
    return Flow(proto, ipaddress.ip_address(src), 40000, ipaddress.ip_address(dst), dport,
                state)


def ends(flows: list[Flow], table=None, p=None, now: float = NOW) -> list[str]:  # type: ignore[no-untyped-def]
    table = table if table is not None else leases(("10.77.0.11", "wl0", RESEARCH))
    out = flows_to_end(flows, leases=table, plan=p or plan(), interface_for=CONFIG.interface_for,
                       now=now)
    return [f"{e.flow.src}>{e.flow.dst}:{e.flow.dport} {e.reason}" for e in out]


def test_allowed_flows_with_valid_lease_stay() -> None:
    assert ends([flow("10.77.0.11", "10.78.0.10", 443)]) == []


def test_revoked_or_expired_lease_ends_flows() -> None:
    assert ends([flow("10.77.0.11", "10.78.0.10", 443)], table=leases()) == [
        "10.77.0.11>10.78.0.10:443 no lease for the source any more (revoked or expired)"]
    assert len(ends([flow("10.77.0.11", "10.78.0.10", 443)], now=NOW + 7200)) == 1


def test_policy_that_now_denies_ends_flows() -> None:
    stricter = plan("apiVersion: clawgress.io/v1\nkind: Policy\nmetadata: {id: x}\n"
                    "spec: {rules: [{id: nothing, action: deny}]}\n")
    got = ends([flow("10.77.0.11", "10.78.0.10", 443)], p=stricter)
    assert got == ["10.77.0.11>10.78.0.10:443 policy now denies it: rule x/nothing (deny)"]


def test_flows_not_opened_by_agents_or_already_denied_are_left_alone() -> None:
    flows = [
        flow("10.99.0.1", "10.78.0.10", 443),  # not from a workload subnet
        flow("10.77.0.11", "10.78.0.12", 80, State.DENY),  # already denied
        flow("10.77.0.11", "10.78.0.12", 80, State.UNDECIDED),
        flow("10.77.0.11", "10.78.0.12", 0, proto=1),  # not tcp/udp
    ]
    assert ends(flows, table=leases()) == []


def test_quarantined_agent_flows_end() -> None:
    out = flows_to_end([flow("10.77.0.11", "10.78.0.10", 443)],
                       leases=leases(("10.77.0.11", "wl0", RESEARCH)), plan=plan(),
                       interface_for=CONFIG.interface_for, now=NOW,
                       quarantined={"bot-1": Quarantine("bot-1", NOW, "suspicious")})
    assert [(e.reason, e.agent_id) for e in out] == [("agent quarantined: suspicious", "bot-1")]


NAMES_POLICY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: names}
spec:
  rules:
    - {id: api, action: allow, destination: {hosts: [api.example], ports: [443]}}
"""


def names_ends(hosts: dict[tuple[bytes, int, bytes, int, int], str] | None = None,
               resolved: ResolvedNames | None = None) -> list[str]:
    table = leases(("10.77.0.11", "wl0", RESEARCH))
    out = flows_to_end([flow("10.77.0.11", "10.78.0.10", 443)], leases=table,
                       plan=plan(NAMES_POLICY), interface_for=CONFIG.interface_for, now=NOW,
                       hosts=hosts, names=resolved)
    return [e.reason for e in out]


def test_a_flow_decided_by_a_name_is_judged_by_that_name() -> None:
    key = (bytes([10, 77, 0, 11]), 40000, bytes([10, 78, 0, 10]), 443, 6)
    assert names_ends(hosts={key: "api.example"}) == []
    assert names_ends(hosts={key: "other.example"})[0].startswith("policy now denies it")


def test_without_a_remembered_name_the_agents_resolved_names_count() -> None:
    resolved = ResolvedNames(min_ttl=60, max_ttl=3600, max_addresses=8)
    assert names_ends(resolved=resolved)  # nothing resolved: by address, denied
    resolved.record("bot-1", "api.example", bytes([10, 78, 0, 10]), 300, NOW)
    assert names_ends(resolved=resolved) == []
