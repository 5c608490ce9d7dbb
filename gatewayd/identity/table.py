"""``LeaseTable``: the data plane's in-memory snapshot of active leases.

One dict keyed by (packed source address, interface); a lookup is one dict probe and an
expiry check, so it can run per packet. The table is immutable: when the store's
``identity`` generation moves past ``table.generation``, build a new one and swap it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gatewayd.identity.address import AddressLike, address_key
from gatewayd.identity.model import Identity, Lease


class LeaseTable:
    """Active leases at build time, each with the identity it resolves to."""

    __slots__ = ("_entries", "built_at", "generation")

    def __init__(
        self,
        entries: Mapping[tuple[bytes, str], tuple[Identity, float]],
        *,
        generation: int,
        built_at: float,
    ) -> None:
        self._entries = dict(entries)
        self.generation = generation
        self.built_at = built_at

    @classmethod
    def build(
        cls, leases: Iterable[tuple[Lease, Identity]], *, generation: int, now: float
    ) -> LeaseTable:
        """A table of the leases active at ``now``; ``generation`` is the store's at read."""
        entries: dict[tuple[bytes, str], tuple[Identity, float]] = {}
        for lease, identity in leases:
            if lease.state(now) != "active":
                continue
            key = (address_key(lease.ip), lease.iface)
            held = entries.get(key)
            if held is None or held[1] < lease.expires_at:
                entries[key] = (identity, lease.expires_at)
        return cls(entries, generation=generation, built_at=now)

    def identity_for(self, ip: AddressLike, iface: str, now: float) -> Identity | None:
        """Who holds ``ip`` on ``iface`` at ``now``; ``None`` if nobody does.

        ``ip`` is text, an ``ipaddress`` object or packed bytes (4 or 16, as a packet
        carries them); ``ValueError`` if it is none of these. An address leased on another
        interface does not resolve here (anti-spoofing), and an IPv4-mapped IPv6 address
        does not resolve to an IPv4 lease.
        """
        entry = self._entries.get((address_key(ip), iface))
        if entry is None or now >= entry[1]:
            return None
        return entry[0]

    def bindings(self, now: float) -> list[tuple[bytes, str]]:
        """Every (packed address, interface) bound at ``now``."""
        return [key for key, (_, expires_at) in self._entries.items() if now < expires_at]

    def withdrawn(self, newer: LeaseTable, now: float) -> set[bytes]:
        """Source addresses (packed) whose binding here no longer holds in ``newer``: the
        lease is gone or now resolves to another identity. Flows from anywhere else are
        unaffected by the change from this table to ``newer``."""
        out = set()
        for (address, iface), (identity, expires_at) in self._entries.items():
            if now >= expires_at:
                out.add(address)
                continue
            if newer.identity_for(address, iface, now) != identity:
                out.add(address)
        return out

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<LeaseTable {len(self)} leases, generation {self.generation}>"
