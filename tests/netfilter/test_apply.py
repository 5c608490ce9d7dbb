from __future__ import annotations

from gatewayd.config import Config
from gatewayd.netfilter.apply import live_digest, tagged_specs
from gatewayd.netfilter.render import render_ruleset

LISTING = """\
-P PREROUTING ACCEPT
-A PREROUTING -m mark --mark 0x2000000/0x3000000 -m comment --comment clawgress -j NFQUEUE --queue-num 0 --queue-bypass
-A PREROUTING -m comment --comment "clawgress but not ours" -j ACCEPT
-A PREROUTING -m comment --comment clawgress-like -j ACCEPT
-A PREROUTING -s 10.0.0.0/8 -j MARK --set-xmark 0x1/0xffffffff
-A OTHER -m comment --comment clawgress -j ACCEPT
-A PREROUTING -m comment --comment "unbalanced
"""  # noqa: E501 - iptables -S output as printed


def test_tagged_specs_are_exactly_the_rules_commented_clawgress_in_the_chain() -> None:
    assert tagged_specs(LISTING.splitlines(), "PREROUTING") == [
        (
            "-m", "mark", "--mark", "0x2000000/0x3000000", "-m", "comment", "--comment",
            "clawgress", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass",
        ),
    ]  # fmt: skip


def test_rendered_spec_is_what_iptables_lists() -> None:
    rendered = render_ruleset(Config(), "xtables").xtables[0]
    assert tagged_specs(LISTING.splitlines(), "PREROUTING") == [rendered.spec]


def test_live_digest_reads_the_table_comment() -> None:
    rs = render_ruleset(Config(), "native")
    listed = f'table inet clawgress {{\n\tcomment "clawgress {rs.digest}"\n\tset x {{\n'
    assert live_digest(listed) == rs.digest
    assert live_digest(rs.nft) == rs.digest
    assert live_digest('table inet clawgress {\n\tcomment "something else"\n}') is None
    assert live_digest("table inet clawgress {\n}") is None
