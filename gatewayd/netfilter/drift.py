"""Is the live ruleset still the one we applied?

After ``apply`` the engine takes a ``Baseline``: the live table as ``nft -j`` lists it,
normalized (no handles, no counter values, no elements of the sets that change at run
time: ``flood4``, ``flood6``, ``observed4``, ``observed6``, ``denied4``, ``denied6``,
``leased4``, ``leased6``), plus the xtables rules the render added.
``check_drift(baseline)`` lists the table again and says what changed: the table is gone,
a chain or set appeared, vanished or changed, rules were removed, added or altered, or our
xtables rules are missing. The engine calls it periodically, re-applies and audits.

``Snapshot.from_nft_json`` and ``compare`` are pure; ``snapshot``, ``take_baseline`` and
``check_drift`` read the kernel of the calling thread's network namespace.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gatewayd.config import Config
from gatewayd.netfilter.apply import show_json, xtables_rule_present
from gatewayd.netfilter.divert import ensure_divert_routes
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.render import TABLE, Ruleset, XtablesRule

# Sets the kernel fills at run time: their elements are state, not configuration.
# Sets whose elements change at run time: the kernel (flood, denied) or the engine (leased).
DYNAMIC_SETS = frozenset({"flood4", "flood6", "observed4", "observed6", "denied4", "denied6",
                          "leased4", "leased6"})
_VOLATILE_KEYS = frozenset({"handle", "family", "table"})


@dataclass(frozen=True)
class Snapshot:
    """A table's normalized content; each value is canonical JSON text, so ``==`` compares."""

    table: str
    sets: Mapping[str, str]
    chains: Mapping[str, str]
    # Per chain, its rules in order.
    rules: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_nft_json(cls, doc: Mapping[str, Any]) -> Snapshot:
        """Normalize ``nft -j list table inet clawgress`` output."""
        items = doc.get("nftables")
        if not isinstance(items, list):
            raise NetfilterError("nft printed JSON without an nftables list")
        table = ""
        sets: dict[str, str] = {}
        chains: dict[str, str] = {}
        rules: dict[str, list[str]] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            if "table" in item:
                table = _canonical(_strip(item["table"]))
            elif "set" in item:
                obj = _strip(item["set"])
                if obj.get("name") in DYNAMIC_SETS:
                    obj.pop("elem", None)
                sets[str(obj.get("name"))] = _canonical(obj)
            elif "chain" in item:
                obj = _strip(item["chain"])
                chains[str(obj.get("name"))] = _canonical(obj)
                rules.setdefault(str(obj.get("name")), [])
            elif "rule" in item:
                obj = _strip(item["rule"])
                rules.setdefault(str(obj.get("chain")), []).append(_canonical(obj))
        return cls(table, sets, chains, {k: tuple(v) for k, v in rules.items()})

    def to_json(self) -> str:
        return json.dumps(
            {
                "table": self.table,
                "sets": dict(self.sets),
                "chains": dict(self.chains),
                "rules": {k: list(v) for k, v in self.rules.items()},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        return cls(
            data["table"],
            dict(data["sets"]),
            dict(data["chains"]),
            {k: tuple(v) for k, v in data["rules"].items()},
        )


@dataclass(frozen=True)
class Baseline:
    """What ``check_drift`` compares the live state with."""

    snapshot: Snapshot
    xtables: tuple[XtablesRule, ...]


@dataclass(frozen=True)
class Drift:
    """How the live state differs from the baseline."""

    table_missing: bool
    changes: tuple[str, ...]
    missing_xtables: tuple[XtablesRule, ...]

    def describe(self) -> str:
        """One line for logs, audit events and the CLI."""
        parts = [f"table {TABLE} is missing"] if self.table_missing else list(self.changes)
        parts += [
            f"{r.tool} rule in {r.table} {r.chain} is missing (queue {_queue_of(r)})"
            for r in self.missing_xtables
        ]
        return "; ".join(parts)


def snapshot() -> Snapshot | None:
    """The live table, normalized; ``None`` when it is not loaded."""
    doc = show_json()
    return None if doc is None else Snapshot.from_nft_json(doc)


def take_baseline(ruleset: Ruleset) -> Baseline:
    """The baseline right after ``apply(ruleset)``."""
    live = snapshot()
    if live is None:
        raise NetfilterError(f"table {TABLE} is not loaded: nothing to take a baseline of")
    return Baseline(live, ruleset.xtables)


def check_ruleset_and_routes(baseline: Baseline,
                             config: Config) -> tuple[Drift | None, list[str]]:
    """One drift check of everything the engine applied: the ruleset (``check_drift``) and
    the L7 engine's policy routing (restored at once where missing: what was added)."""
    return check_drift(baseline), ensure_divert_routes(config)


def check_drift(baseline: Baseline) -> Drift | None:
    """``None`` when the live state is the baseline, else what differs."""
    live = snapshot()
    changes = compare(baseline.snapshot, live)
    missing = tuple(r for r in baseline.xtables if not xtables_rule_present(r))
    if live is not None and not changes and not missing:
        return None
    return Drift(live is None, tuple(changes), missing)


def compare(expected: Snapshot, live: Snapshot | None) -> list[str]:
    """What differs from ``expected`` in ``live``, one description per difference."""
    if live is None:
        return [f"table {TABLE} is missing"]
    out: list[str] = []
    if live.table != expected.table:
        out.append(f"table {TABLE} attributes changed")
    out += _compare_named("set", expected.sets, live.sets)
    out += _compare_named("chain", expected.chains, live.chains)
    for chain in sorted(set(expected.rules) & set(live.rules)):
        out += _compare_rules(chain, expected.rules[chain], live.rules[chain])
    return out


def _compare_named(kind: str, expected: Mapping[str, str], live: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for name in sorted(set(expected) | set(live)):
        if name not in live:
            out.append(f"{kind} {name} is missing")
        elif name not in expected:
            out.append(f"{kind} {name} was added")
        elif expected[name] != live[name]:
            what = "elements" if kind == "set" else "definition"
            out.append(f"{kind} {name}: {what} changed")
    return out


def _compare_rules(chain: str, expected: tuple[str, ...], live: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=expected, b=live, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        changed = min(a1 - a0, b1 - b0)
        out += [
            f"chain {chain}: rule {i + 1}{_label(expected[i])} changed"
            for i in range(a0, a0 + changed)
        ]
        out += [
            f"chain {chain}: rule {i + 1}{_label(expected[i])} removed"
            for i in range(a0 + changed, a1)
        ]
        added = b1 - b0 - changed
        if added:
            out.append(f"chain {chain}: {added} rule(s) added at position {b0 + changed + 1}")
    return out


def _label(rule: str) -> str:
    comment = json.loads(rule).get("comment")
    return f' ("{comment}")' if comment else ""


def _queue_of(rule: XtablesRule) -> str:
    spec = rule.spec
    for a, b in itertools.pairwise(spec):
        if a == "--queue-num":
            return b
    return "?"


def _strip(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise NetfilterError(f"nft printed an unexpected JSON object: {obj!r:.80}")
    return {k: _zero_counters(v) for k, v in obj.items() if k not in _VOLATILE_KEYS}


def _zero_counters(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ({} if k == "counter" and isinstance(v, dict) else _zero_counters(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_zero_counters(v) for v in value]
    return value


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))
