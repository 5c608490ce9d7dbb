"""Applying the ruleset: atomic, idempotent, ours only, and a refused one changes nothing."""

from __future__ import annotations

import dataclasses

import pytest
from netfilter_support import golden_config, iptables_rules, probed_backend, stateless_table
from nsutil import Namespace

from gatewayd.netfilter.apply import (
    apply,
    flush,
    live_digest,
    show,
    table_present,
    tagged_xtables_rules,
)
from gatewayd.netfilter.drift import snapshot
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.render import Ruleset, render_ruleset
from gatewayd.netfilter.scratch import expected_snapshot

pytestmark = pytest.mark.netns

FOREIGN_TABLE = """\
table inet other {
	chain keep {
		type filter hook forward priority 0; policy accept;
		ip saddr 192.0.2.1 counter drop comment "not ours"
	}
}
"""
FOREIGN_RULES = [
    ["iptables-nft", "-w", "-t", "mangle", "-A", "PREROUTING", "-s", "192.0.2.7", "-m",
     "comment", "--comment", "other", "-j", "MARK", "--set-mark", "0x1"],
    ["ip6tables-nft", "-w", "-t", "filter", "-A", "FORWARD", "-s", "2001:db8::7", "-m",
     "comment", "--comment", "clawgress-like", "-j", "ACCEPT"],
]  # fmt: skip


def ruleset(ns: Namespace, name: str = "mixed-v4-v6", extra: str = "") -> Ruleset:
    return render_ruleset(golden_config(name, extra), probed_backend(ns))


def xtables_ruleset(name: str = "mixed-v4-v6", extra: str = "") -> Ruleset:
    return render_ruleset(golden_config(name, extra), "xtables")


def test_apply_loads_the_render(netns: Namespace) -> None:
    rs = ruleset(netns)
    with netns.entered():
        assert not table_present()
        assert show() is None
        apply(rs)
        assert table_present()
        text = show()
        assert text is not None
        assert live_digest(text) == rs.digest
        assert snapshot() == expected_snapshot(rs)
        assert sorted(map(str, tagged_xtables_rules())) == sorted(map(str, rs.xtables))


def test_apply_twice_is_a_no_op(netns: Namespace) -> None:
    rs = xtables_ruleset()
    with netns.entered():
        apply(rs)
    first_table, first_rules = stateless_table(netns), iptables_rules(netns)
    with netns.entered():
        apply(rs)
    assert stateless_table(netns) == first_table
    assert iptables_rules(netns) == first_rules
    assert len(first_rules) == 4
    assert all("--comment clawgress " in r for r in first_rules)


def test_apply_and_flush_touch_nothing_else(netns: Namespace) -> None:
    netns.run("nft", "-f", "-", input=FOREIGN_TABLE)
    for argv in FOREIGN_RULES:
        netns.run(*argv)
    foreign_table = netns.nft("-s", "list", "table", "inet", "other").stdout
    foreign_rules = iptables_rules(netns)
    with netns.entered():
        apply(xtables_ruleset())
    assert netns.nft("-s", "list", "table", "inet", "other").stdout == foreign_table
    assert set(foreign_rules) < set(iptables_rules(netns))
    with netns.entered():
        assert flush() == (True, 4)
        assert flush() == (False, 0)
    assert netns.nft("-s", "list", "table", "inet", "other").stdout == foreign_table
    assert iptables_rules(netns) == foreign_rules
    tables = netns.nft("list", "tables").stdout
    assert "clawgress" not in tables
    assert "table inet other" in tables


def _kernel_refused(rs: Ruleset) -> Ruleset:
    """The render plus a jump loop: nft parses it, the kernel refuses it (ELOOP)."""
    hook = "\ttype filter hook input priority filter - 5; policy accept;\n"
    assert hook in rs.nft
    text = rs.nft.replace(hook, hook + "\t\tjump loop_a\n")
    text = text.rstrip().removesuffix("}") + (
        "\tchain loop_a {\n\t\tjump loop_b\n\t}\n\tchain loop_b {\n\t\tjump loop_a\n\t}\n}\n"
    )
    return dataclasses.replace(rs, nft=text, xtables=(), digest="0" * 16)


def _unparsable(rs: Ruleset) -> Ruleset:
    text = rs.nft.replace("goto enqueue\n", "goto enqueue\n\t\tthis is not nft\n", 1)
    return dataclasses.replace(rs, nft=text, xtables=(), digest="1" * 16)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [(_kernel_refused, "Too many links"), (_unparsable, "syntax error")],
)
def test_refused_apply_leaves_the_previous_ruleset(
    netns: Namespace, spoil: object, message: str
) -> None:
    rs = xtables_ruleset()
    bad = spoil(rs)  # type: ignore[operator]
    with netns.entered():
        apply(rs)
        before = snapshot()
        with pytest.raises(NetfilterError) as err:
            apply(bad)
        assert snapshot() == before
        text = show()
        assert text is not None
        assert live_digest(text) == rs.digest
    assert str(err.value).startswith("the ruleset was refused, nothing changed: nft: line ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert len(iptables_rules(netns)) == 4


def test_refused_first_apply_leaves_no_table(netns: Namespace) -> None:
    with netns.entered(), pytest.raises(NetfilterError):
        apply(_kernel_refused(xtables_ruleset()))
    assert netns.nft("list", "ruleset").stdout == ""


def test_new_config_replaces_stale_xtables_rules(netns: Namespace) -> None:
    old = xtables_ruleset()
    new = xtables_ruleset(extra="dataplane: {queue: 5, reset_queue: 6, mark_shift: 8}\n")
    with netns.entered():
        apply(old)
        apply(new)
        assert sorted(map(str, tagged_xtables_rules())) == sorted(map(str, new.xtables))
    listed = iptables_rules(netns)
    assert len(listed) == 4
    assert all("--queue-num 5" in r or "--queue-num 6" in r for r in listed)


def test_flush_without_anything_loaded(netns: Namespace) -> None:
    with netns.entered():
        assert flush() == (False, 0)
    assert netns.nft("list", "ruleset").stdout == ""
