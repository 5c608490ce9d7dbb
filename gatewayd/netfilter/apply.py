"""Load, show and remove the ruleset in the calling thread's network namespace.

``apply`` replaces table ``inet clawgress`` in one nft transaction: either the whole new
table is live or, when the kernel refuses any part of it, the previous table stays as it
was. With the xtables backend it then makes our tagged NFQUEUE rules exactly the render's
(insert the missing ones, then delete stale ones tagged ``clawgress``). Nothing else on the
host is touched. Applying the same ruleset twice leaves the same state.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.nft import check_tool, nft, run_tool, tool_path
from gatewayd.netfilter.render import (
    TABLE,
    TABLE_FAMILY,
    TABLE_NAME,
    XTABLES_CHAINS,
    XTABLES_TAG,
    XTABLES_TOOLS,
    Ruleset,
    XtablesRule,
)


def apply(ruleset: Ruleset) -> None:
    """Make ``ruleset`` the live one, atomically for the table."""
    # The replacement is one transaction: create the table if absent (so that the delete
    # cannot fail), delete it, load the new one. They share the render's first line, so
    # nft's line numbers in errors are the render's own.
    batch = f"add table {TABLE}; delete table {TABLE}; {ruleset.nft}"
    try:
        nft(batch)
    except NetfilterError as exc:
        raise NetfilterError(f"the ruleset was refused, nothing changed: {exc}") from None
    sync_xtables(ruleset.xtables)


def table_present() -> bool:
    """Whether table ``inet clawgress`` exists."""
    listed = json.loads(nft("list tables", json_output=True))
    return any(
        t.get("family") == TABLE_FAMILY and t.get("name") == TABLE_NAME
        for t in _objects(listed, "table")
    )


def show() -> str | None:
    """The live table as nft prints it; ``None`` when it is not loaded."""
    if not table_present():
        return None
    return nft(f"list table {TABLE}")


def show_json() -> dict[str, Any] | None:
    """The live table as ``nft -j`` prints it; ``None`` when it is not loaded."""
    if not table_present():
        return None
    doc: dict[str, Any] = json.loads(nft(f"list table {TABLE}", json_output=True))
    return doc


def live_digest(text: str) -> str | None:
    """The render digest in a listed table's comment (``comment "clawgress <digest>"``)."""
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "comment" and words[1] == f'"{TABLE_NAME}':
            return words[2].rstrip('"')
    return None


def flush() -> tuple[bool, int]:
    """Remove our table and our tagged xtables rules: (table was there, rules removed)."""
    had_table = table_present()
    if had_table:
        nft(f"delete table {TABLE}")
    removed = 0
    for rule in tagged_xtables_rules():
        check_tool(rule.argv("-D"))
        removed += 1
    return had_table, removed


def sync_xtables(wanted: Sequence[XtablesRule]) -> None:
    """Make the tagged xtables rules exactly ``wanted``: add first, then remove stale ones."""
    for rule in wanted:
        if not xtables_rule_present(rule):
            check_tool(rule.argv("-I"))
    for rule in tagged_xtables_rules():
        if rule not in wanted:
            check_tool(rule.argv("-D"))


def xtables_rule_present(rule: XtablesRule) -> bool:
    """Whether ``rule`` is in its chain (``-C``; never creates a table)."""
    return run_tool(rule.argv("-C")).returncode == 0


def tagged_xtables_rules() -> list[XtablesRule]:
    """Every rule tagged ``clawgress`` in the chains Clawgress uses, per installed tool."""
    found: list[XtablesRule] = []
    for family, tool in XTABLES_TOOLS.items():
        if tool_path(tool) is None:
            continue
        for table, chain in XTABLES_CHAINS:
            listing = check_tool([tool, "-w", "-t", table, "-S", chain])
            found.extend(
                XtablesRule(family, table, chain, spec)
                for spec in tagged_specs(listing.splitlines(), chain)
            )
    return found


def tagged_specs(lines: Iterable[str], chain: str) -> list[tuple[str, ...]]:
    """Rule specifications tagged ``clawgress`` in ``iptables -S CHAIN`` output."""
    specs: list[tuple[str, ...]] = []
    for line in lines:
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if words[:2] != ["-A", chain]:
            continue
        spec = tuple(words[2:])
        if any(a == "--comment" and b == XTABLES_TAG for a, b in itertools.pairwise(spec)):
            specs.append(spec)
    return specs


def _objects(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    items = doc.get("nftables")
    if not isinstance(items, list):
        raise NetfilterError("nft printed JSON without an nftables list")
    return [item[kind] for item in items if isinstance(item, dict) and kind in item]


def forget_denied() -> None:
    """Empty the sets of denied UDP flows, so that a change of leases or policy decides
    their next datagrams afresh. A missing table is not an error (nothing to forget)."""
    if table_present():
        nft("flush set inet clawgress denied4; flush set inet clawgress denied6")


def sync_leased(bindings: Iterable[tuple[bytes, str]]) -> None:
    """Make the ``leased4``/``leased6`` sets hold exactly ``bindings`` (packed address,
    interface), in one transaction. A missing table is not an error."""
    if not table_present():
        return
    v4: list[str] = []
    v6: list[str] = []
    for address, iface in bindings:
        text = _element(address, iface)
        (v4 if len(address) == 4 else v6).append(text)
    commands = ["flush set inet clawgress leased4", "flush set inet clawgress leased6"]
    for name, elements in (("leased4", v4), ("leased6", v6)):
        for start in range(0, len(elements), 1000):
            chunk = ", ".join(elements[start:start + 1000])
            commands.append(f"add element inet clawgress {name} {{ {chunk} }}")
    nft("\n".join(commands) + "\n")


def _element(address: bytes, iface: str) -> str:
    return f'{ipaddress.ip_address(address)} . "{iface}"'
