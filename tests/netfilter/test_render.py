from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from gatewayd.config import Config, parse_config
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.render import (
    BACKENDS,
    Backend,
    XtablesRule,
    antispoof_rules,
    load_template,
    render_ruleset,
)

GOLDEN = Path(__file__).parent / "golden"
CONFIGS = sorted(p.stem for p in GOLDEN.glob("*.yaml"))
REPO_TEMPLATE = Path(__file__).parents[2] / "nft" / "clawgress.nft.in"
# CLAWGRESS_UPDATE_GOLDEN=1 rewrites the golden files from the current render.
UPDATE = os.environ.get("CLAWGRESS_UPDATE_GOLDEN") == "1"


def golden_config(name: str) -> Config:
    path = GOLDEN / f"{name}.yaml"
    return parse_config(path.read_text(encoding="utf-8"), str(path))


def cfg(text: str) -> Config:
    return parse_config(text, "test")


def test_golden_configs_are_all_there() -> None:
    assert CONFIGS == ["fail-modes", "mixed-v4-v6", "no-interfaces", "one-v4"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CONFIGS)
def test_render_matches_golden(name: str, backend: Backend) -> None:
    text = render_ruleset(golden_config(name), backend).as_file()
    path = GOLDEN / f"{name}.{backend}.nft"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs from the render"


def test_template_is_the_repository_file() -> None:
    assert load_template() == REPO_TEMPLATE.read_text(encoding="utf-8")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CONFIGS)
def test_render_is_deterministic_and_complete(name: str, backend: Backend) -> None:
    a = render_ruleset(golden_config(name), backend)
    b = render_ruleset(golden_config(name), backend)
    assert a == b
    assert "${" not in a.nft and "$" not in a.nft
    assert not [ln for ln in a.nft.splitlines() if ln.lstrip().startswith("#")]
    assert f'comment "clawgress {a.digest}"' in a.nft
    assert len(a.digest) == 16 and int(a.digest, 16) >= 0


def test_digests_differ_between_configs_and_backends() -> None:
    digests = {
        render_ruleset(golden_config(n), b).digest for n in CONFIGS for b in BACKENDS
    }
    assert len(digests) == len(CONFIGS) * len(BACKENDS)


def test_empty_sets_have_no_elements_line() -> None:
    text = render_ruleset(Config(), "native").nft
    assert "elements" not in text
    assert "set workload_ifaces {\n\t\ttype ifname\n\t}" in text
    assert "set fail_closed_ifaces {\n\t\ttype ifname\n\t}" in text


def test_interfaces_and_fail_closed_sets() -> None:
    text = render_ruleset(golden_config("fail-modes"), "native").nft
    assert 'elements = { "agents0", "agents1", "lab0" }' in text
    assert text.count('elements = { "agents0" }') == 1


def test_native_backend_queues_in_the_table_and_adds_nothing_outside() -> None:
    rs = render_ruleset(golden_config("fail-modes"), "native")
    assert rs.xtables == ()
    assert "\t\tqueue num 7 bypass\n" in rs.nft
    assert "\t\tqueue num 8 bypass\n" in rs.nft


def test_xtables_backend_has_no_queue_statement_and_four_tagged_rules() -> None:
    rs = render_ruleset(golden_config("fail-modes"), "xtables")
    assert "queue num" not in rs.nft
    assert [(r.family, r.table, r.chain) for r in rs.xtables] == [
        ("ipv4", "mangle", "PREROUTING"),
        ("ipv4", "filter", "FORWARD"),
        ("ipv6", "mangle", "PREROUTING"),
        ("ipv6", "filter", "FORWARD"),
    ]
    # mark_shift 4: queued 0x200 with stamp 0x100; reset 0x400.
    verdict, reset = rs.xtables[0], rs.xtables[1]
    assert verdict.spec == (
        "-m", "mark", "--mark", "0x200/0x300", "-m", "comment", "--comment", "clawgress",
        "-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass",
    )  # fmt: skip
    assert "0x400/0x500" in reset.spec and "8" in reset.spec


def test_xtables_rule_commands() -> None:
    rule = XtablesRule("ipv6", "mangle", "PREROUTING", ("-j", "ACCEPT"))
    assert rule.argv("-I") == [
        "ip6tables-nft", "-w", "-t", "mangle", "-I", "PREROUTING", "1", "-j", "ACCEPT",
    ]  # fmt: skip
    assert rule.argv("-C")[4:] == ["-C", "PREROUTING", "-j", "ACCEPT"]
    assert rule.argv("-D")[4:] == ["-D", "PREROUTING", "-j", "ACCEPT"]
    assert str(rule) == "ip6tables-nft -w -t mangle -I PREROUTING 1 -j ACCEPT"


def test_antispoof_v4_only_interface_drops_all_ipv6() -> None:
    rules = antispoof_rules(golden_config("one-v4").workload.interfaces)
    assert rules == [
        'iifname "eth1" ip saddr != { 10.10.0.0/24 } counter drop comment "spoofed source"',
        'iifname "eth1" meta nfproto ipv6 counter drop comment "no ipv6 subnet"',
    ]


def test_antispoof_v6_only_interface_drops_all_ipv4_and_allows_nd_sources() -> None:
    config = cfg("workload: {interfaces: [{name: w, subnets: ['fd00:1::/64']}]}")
    assert antispoof_rules(config.workload.interfaces) == [
        'iifname "w" meta nfproto ipv4 counter drop comment "no ipv4 subnet"',
        'iifname "w" ip6 saddr != { ::/128, fd00:1::/64, fe80::/10 } counter drop'
        ' comment "spoofed source"',
    ]


def test_antispoof_collapses_adjacent_and_nested_subnets() -> None:
    config = cfg(
        "workload: {interfaces: [{name: w, subnets:"
        " ['10.0.0.0/25', '10.0.0.128/25', 'fe80::/64', '::/128']}]}"
    )
    v4, v6 = antispoof_rules(config.workload.interfaces)
    assert "{ 10.0.0.0/24 }" in v4
    assert "{ ::/128, fe80::/10 }" in v6


def test_antispoof_covers_each_subnet_exactly() -> None:
    config = golden_config("mixed-v4-v6")
    rules = antispoof_rules(config.workload.interfaces)
    for iface in config.workload.interfaces:
        for net in iface.subnets:
            word = "ip saddr" if net.version == 4 else "ip6 saddr"
            (line,) = [r for r in rules if f'"{iface.name}" {word}' in r]
            inside = line[line.index("{") + 1 : line.index("}")]
            listed = [ipaddress.ip_network(n.strip()) for n in inside.split(",")]
            assert any(
                x.version == net.version and net.subnet_of(x)  # type: ignore[arg-type]
                for x in listed
            ), (net, line)


def test_unknown_backend_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown queue backend"):
        render_ruleset(Config(), "ebpf")  # type: ignore[arg-type]


def test_template_with_unknown_placeholder_is_refused() -> None:
    with pytest.raises(NetfilterError, match="placeholder"):
        render_ruleset(Config(), "native", template="table inet clawgress { ${nope} }\n")


def test_template_comment_lines_and_empty_placeholder_lines_are_dropped() -> None:
    template = "# a comment ${nope}\ntable inet clawgress {\n${queue_statement}\n}\n"
    assert render_ruleset(Config(), "xtables", template=template).nft == (
        "table inet clawgress {\n}\n"
    )
