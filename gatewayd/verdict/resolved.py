"""Which names each agent resolved to which addresses: what the engine learns from DNS.

Packets carry addresses; policies speak of names. The engine reads the DNS answers its
agents receive and remembers, per agent, each address with the names that led to it (the
name asked, and the CNAMEs followed), until the answer's TTL runs out. A new flow to an
address is then decided by the names the agent resolved for it.

Bounded: every agent keeps at most ``max_addresses`` addresses (the least recently
resolved go first) and an address at most ``MAX_NAMES_PER_ADDRESS`` names. TTLs are held
between ``min_ttl`` and ``max_ttl``: clients use an answer for a moment after a zero TTL,
and no binding outlives a day by default. Pure: the caller passes the time.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import NamedTuple

MAX_NAMES_PER_ADDRESS = 16


class Binding(NamedTuple):
    """One name the agent resolved to an address, and when that stops holding."""

    name: str
    expires: float


class ResolvedNames:
    def __init__(self, *, min_ttl: float, max_ttl: float, max_addresses: int) -> None:
        if min_ttl < 0 or max_ttl < min_ttl or max_addresses <= 0:
            raise ValueError("need 0 <= min_ttl <= max_ttl and max_addresses > 0")
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.max_addresses = max_addresses
        self._agents: dict[str, OrderedDict[bytes, dict[str, float]]] = {}
        # Answers whose TXT payload crossed the signal threshold, per agent.
        self.txt_signals: Counter[str] = Counter()

    def record(self, agent: str, name: str, address: bytes, ttl: int, now: float,
               aliases: Iterable[str] = ()) -> None:
        """``name`` (and the CNAMEs on the way, ``aliases``) resolved to ``address``."""
        table = self._agents.setdefault(agent, OrderedDict())
        names = table.get(address)
        if names is None:
            if len(table) >= self.max_addresses:
                table.popitem(last=False)
            names = table[address] = {}
        else:
            table.move_to_end(address)
        expires = now + min(max(float(ttl), self.min_ttl), self.max_ttl)
        for each in (name, *aliases):
            if each in names:
                names[each] = max(names[each], expires)
                continue
            if len(names) >= MAX_NAMES_PER_ADDRESS:
                oldest = min(names, key=names.__getitem__)
                del names[oldest]
            names[each] = expires

    def names_for(self, agent: str, address: bytes, now: float) -> tuple[str, ...]:
        """The names ``agent`` resolved to ``address`` that still hold, sorted."""
        table = self._agents.get(agent)
        if table is None:
            return ()
        names = table.get(address)
        if not names:
            return ()
        live = sorted(name for name, expires in names.items() if expires > now)
        if len(live) != len(names):
            if live:
                table[address] = {name: names[name] for name in live}
            else:
                del table[address]
        return tuple(live)

    def forget_agent(self, agent: str) -> None:
        self._agents.pop(agent, None)

    def expire(self, now: float) -> int:
        """Drop every binding past its TTL; returns how many addresses went."""
        gone = 0
        for agent in list(self._agents):
            table = self._agents[agent]
            for address in list(table):
                names = {n: e for n, e in table[address].items() if e > now}
                if names:
                    table[address] = names
                else:
                    del table[address]
                    gone += 1
            if not table:
                del self._agents[agent]
        return gone

    def __len__(self) -> int:
        """How many (agent, address) bindings are held."""
        return sum(len(table) for table in self._agents.values())
