"""The execution plan's indexes: destination, then identity, then port.

Evaluation probes a handful of dicts — the exact host, one per label of the host in the
reversed-label suffix trie, one per CIDR prefix length in use — and, in each destination
leaf it finds, one per identity-selector shape present in that leaf, then one for the
port. Its cost does not grow with the number of rules that cannot match. Each leaf keeps
its entries sorted by rank, so the evaluator can merge the few lists it finds lazily and
stop at the first rule that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from gatewayd.policy.rules import CompiledRule

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The identity fields a selector can name, in the order keys are built from.
IDENTITY_ORDER = ("agent", "team", "project", "environment")

_by_rank = attrgetter("rank")


class Entry(NamedTuple):
    """One way a rule can match: its rank for that way, and what it matched on.

    ``target`` is the exact host or the CIDR of that way (``None`` for wildcards and "any
    destination"): what the guard class checks to see whether the rule names it."""

    rank: tuple[int, ...]
    rule: CompiledRule
    target: Network | str | None
    via: str


Sources = list[list[Entry]]
Lens = tuple[tuple[int, dict[int, "IdentityIndex"]], ...]


@dataclass(slots=True)
class PortIndex:
    """Entries by port. After ``freeze``, ``exact[p]`` also holds the any-port entries, so
    one probe gives every entry for a port that rules name (ranges are checked apart)."""

    exact: dict[int, list[Entry]] = field(default_factory=dict)
    ranges: list[tuple[int, int, Entry]] = field(default_factory=list)
    any: list[Entry] = field(default_factory=list)

    def add_exact(self, port: int, entry: Entry) -> None:
        self.exact.setdefault(port, []).append(entry)

    def freeze(self) -> None:
        self.any.sort(key=_by_rank)
        for port, entries in self.exact.items():
            self.exact[port] = sorted(entries + self.any, key=_by_rank)

    def collect(self, port: int | None, out: Sources) -> None:
        if port is None:
            if self.any:
                out.append(self.any)
            return
        hit = self.exact.get(port)
        if hit is not None:
            out.append(hit)
        elif self.any:
            out.append(self.any)
        for low, high, entry in self.ranges:
            if low <= port <= high:
                out.append([entry])


@dataclass(frozen=True, slots=True)
class Shape:
    """Which identity fields a selector names, and how to key a request by them."""

    fields: tuple[int, ...]  # indexes into IDENTITY_ORDER
    key: Callable[[tuple[str | None, ...]], Any]

    @classmethod
    def of(cls, fields: tuple[int, ...]) -> Shape:
        return cls(fields, itemgetter(*fields))


@dataclass(slots=True)
class IdentityIndex:
    """The rules of one destination leaf, by identity selector."""

    anyone: PortIndex | None = None
    scoped: dict[tuple[int, ...], dict[Any, PortIndex]] = field(default_factory=dict)
    shapes: tuple[tuple[Shape, dict[Any, PortIndex]], ...] = ()

    def ports_for(self, values: tuple[str | None, ...]) -> PortIndex:
        """The port index for a selector: ``None`` in ``values`` is a wildcard field."""
        fields = tuple(i for i, v in enumerate(values) if v is not None)
        if not fields:
            if self.anyone is None:
                self.anyone = PortIndex()
            return self.anyone
        table = self.scoped.setdefault(fields, {})
        key = Shape.of(fields).key(values)
        idx = table.get(key)
        if idx is None:
            idx = table[key] = PortIndex()
        return idx

    def freeze(self) -> None:
        if self.anyone is not None:
            self.anyone.freeze()
        for table in self.scoped.values():
            for idx in table.values():
                idx.freeze()
        self.shapes = tuple((Shape.of(f), t) for f, t in sorted(self.scoped.items()))

    def collect(self, identity: tuple[str, ...], port: int | None, out: Sources) -> None:
        if self.anyone is not None:
            self.anyone.collect(port, out)
        for shape, table in self.shapes:
            idx = table.get(shape.key(identity))
            if idx is not None:
                idx.collect(port, out)


@dataclass(slots=True)
class SuffixNode:
    """A node of the reversed-label trie: ``com`` → ``example`` → ...; ``rules`` holds the
    rules of the wildcard ``*.<labels up to here>``."""

    children: dict[str, SuffixNode] = field(default_factory=dict)
    rules: IdentityIndex | None = None


@dataclass(slots=True)
class DestinationIndex:
    exact: dict[str, IdentityIndex] = field(default_factory=dict)
    suffixes: SuffixNode = field(default_factory=SuffixNode)
    cidr4: dict[int, dict[int, IdentityIndex]] = field(default_factory=dict)
    cidr6: dict[int, dict[int, IdentityIndex]] = field(default_factory=dict)
    any: IdentityIndex = field(default_factory=IdentityIndex)
    # Filled in by freeze(). IPv4 is looked up by its /16 first: ``by16`` maps each /16
    # to the leaves of the /8-/16 networks that cover it, and to (shift, table) for the
    # longer prefix lengths used inside it; ``wide4`` holds the prefixes shorter than /8.
    # Most addresses cost one probe. IPv6 probes one (shift, table) per length in use.
    by16: dict[int, tuple[tuple[IdentityIndex, ...], Lens]] = field(default_factory=dict)
    wide4: Lens = ()
    lens6: Lens = ()

    def host(self, host: str) -> IdentityIndex:
        idx = self.exact.get(host)
        if idx is None:
            idx = self.exact[host] = IdentityIndex()
        return idx

    def suffix(self, suffix: str) -> IdentityIndex:
        node = self.suffixes
        for label in reversed(suffix.split(".")):
            nxt = node.children.get(label)
            if nxt is None:
                nxt = node.children[label] = SuffixNode()
            node = nxt
        if node.rules is None:
            node.rules = IdentityIndex()
        return node.rules

    def cidr(self, net: Network) -> IdentityIndex:
        table = self.cidr4 if net.version == 4 else self.cidr6
        by_net = table.setdefault(net.prefixlen, {})
        key = int(net.network_address)
        idx = by_net.get(key)
        if idx is None:
            idx = by_net[key] = IdentityIndex()
        return idx

    def freeze(self) -> None:
        leaves: list[IdentityIndex] = [self.any, *self.exact.values()]
        stack = [self.suffixes]
        while stack:
            node = stack.pop()
            if node.rules is not None:
                leaves.append(node.rules)
            stack.extend(node.children.values())
        for table in (self.cidr4, self.cidr6):
            for by_net in table.values():
                leaves.extend(by_net.values())
        for leaf in leaves:
            leaf.freeze()
        self.lens6 = tuple((128 - plen, t) for plen, t in sorted(self.cidr6.items(),
                                                                  reverse=True))
        self.wide4 = tuple((32 - plen, t) for plen, t in sorted(self.cidr4.items(),
                                                                 reverse=True) if plen < 8)
        short: dict[int, list[IdentityIndex]] = {}
        long: dict[int, set[int]] = {}
        for plen, by_net in self.cidr4.items():
            for net, leaf in by_net.items():
                if 8 <= plen <= 16:
                    first = net >> 16
                    for slot in range(first, first + (1 << (16 - plen))):
                        short.setdefault(slot, []).append(leaf)
                elif plen > 16:
                    long.setdefault(net >> 16, set()).add(plen)
        self.by16 = {
            slot: (
                tuple(short.get(slot, ())),
                tuple((32 - plen, self.cidr4[plen]) for plen in sorted(long.get(slot, ()),
                                                                        reverse=True)),
            )
            for slot in short.keys() | long.keys()
        }

    def collect(
        self,
        identity: tuple[str, ...],
        host: str | None,
        ip_value: int,
        ip_version: int,
        port: int | None,
        out: Sources,
    ) -> None:
        """Append to ``out`` the rank-sorted entry lists that match the request.

        The hot path of every decision: written flat, with the leaves gathered first and
        their identity and port tables probed in one loop.
        """
        leaves = [self.any]
        if host is not None:
            hit = self.exact.get(host)
            if hit is not None:
                leaves.append(hit)
            node = self.suffixes
            if node.children:
                labels = host.split(".")
                # From the TLD; a wildcard needs at least one label more than its suffix.
                for i in range(len(labels) - 1, 0, -1):
                    child = node.children.get(labels[i])
                    if child is None:
                        break
                    node = child
                    if node.rules is not None:
                        leaves.append(node.rules)
        if ip_version:
            value = ip_value
            if ip_version == 4:
                slot = self.by16.get(value >> 16)
                if slot is not None:
                    leaves += slot[0]
                    lens = slot[1] + self.wide4 if self.wide4 else slot[1]
                else:
                    lens = self.wide4
            else:
                lens = self.lens6
            for shift, by_net in lens:
                leaf = by_net.get((value >> shift) << shift)
                if leaf is not None:
                    leaves.append(leaf)
        for leaf in leaves:
            ports = leaf.anyone
            if ports is not None:
                ports.collect(port, out)
            for shape, table in leaf.shapes:
                ports = table.get(shape.key(identity))
                if ports is not None:
                    ports.collect(port, out)
