"""What the plan says about names before any flow: answers that must not bind a name to an
address (DNS rebinding), and names a deny rule refuses outright."""

from __future__ import annotations

import ipaddress

import pytest

from gatewayd.config import Config, NamesSection
from gatewayd.identity import Identity
from gatewayd.policy import Action, Guard, Plan, compile_plan, parse_documents

ME = Identity("bot-1", "research", "alpha", "prod")
POLICY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: p}
spec:
  rules:
    - {id: inside, action: deny, destination: {cidrs: [10.78.0.0/24, "fd78::/64"]}}
    - {id: metadata, action: allow, destination: {cidrs: [169.254.169.254/32]}}
    - {id: wide, action: allow, destination: {cidrs: [0.0.0.0/0]}, identity: {team: x}}
    - {id: paste, action: deny, destination: {hosts: [pastebin.com, "*.paste.example"]}}
    - {id: port-only, action: deny, destination: {hosts: [ftp.example], ports: [21]}}
    - {id: ok, action: allow, destination: {hosts: [api.example]}}
"""


def plan(config: Config | None = None) -> Plan:
    return compile_plan(parse_documents({"p.yaml": POLICY}), bundle_version=1,
                        guard=Guard.from_config(config or Config()))


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("169.254.10.1", "link-local"),
    ("fd00:ec2::254", "metadata"),
    ("192.168.1.1", "private"),
    ("172.16.0.1", "private"),
    ("100.64.0.1", "private"),
    ("fd99::7", "private"),
    ("10.99.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
])
def test_answers_into_guarded_or_private_ranges_are_refused(address: str, kind: str) -> None:
    hit = plan().resolution_guard(ipaddress.ip_address(address))
    assert hit is not None and hit.kind == kind


@pytest.mark.parametrize("address", ["10.78.0.10", "fd78::10", "169.254.169.254",
                                     "93.184.216.34", "2606:2800:220:1::"])
def test_public_addresses_and_those_a_rule_names_may_be_resolved_to(address: str) -> None:
    # 0.0.0.0/0 names nothing: it is not inside a guarded or private range.
    assert plan().resolution_guard(ipaddress.ip_address(address)) is None


def test_gateway_addresses_are_refused_even_inside_a_named_range() -> None:
    config = Config.model_validate({"gateway": {"addresses": ["10.78.0.1"]}})
    hit = plan(config).resolution_guard(ipaddress.ip_address("10.78.0.1"))
    assert hit is not None and hit.kind == "gateway"


def test_private_ranges_are_configurable() -> None:
    config = Config.model_validate({"policy": {"guard": {"private_cidrs": ["10.0.0.0/8"]}}})
    assert plan(config).resolution_guard(ipaddress.ip_address("192.168.1.1")) is None


def test_names_a_deny_rule_refuses_outright() -> None:
    p = plan()
    denied = p.denies_name(ME, "pastebin.com", 0.0)
    assert denied is not None and denied.action is Action.DENY and denied.rule_id == "paste"
    assert p.denies_name(ME, "a.paste.example", 0.0) is not None
    assert p.denies_name(ME, "api.example", 0.0) is None
    assert p.denies_name(ME, "unknown.example", 0.0) is None  # default deny: may resolve
    assert p.denies_name(ME, "ftp.example", 0.0) is None  # denied on one port only


def test_plan_knows_whether_it_decides_by_name() -> None:
    assert plan().uses_names
    assert ipaddress.ip_network("10.78.0.0/24") in plan().networks


def test_names_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min_ttl_s"):
        NamesSection(min_ttl_s=100, max_ttl_s=10)
    with pytest.raises(ValueError, match="denied_query"):
        NamesSection.model_validate({"denied_query": "servfail"})
