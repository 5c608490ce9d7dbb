"""The bits Clawgress keeps in the packet mark and the conntrack mark.

Seven bits from ``dataplane.mark_shift`` on: a 4-bit flow state, then *stamp* (the engine
decided this packet), *queued* (the ruleset sent this packet to the verdict queue) and
*reset* (a reply packet of a denied flow, sent to the reset queue). Every other bit of a
mark belongs to someone else and is preserved by every helper here. Pure values, no IO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from gatewayd.config import Config

MARK_BITS = 32
FULL_MASK = (1 << MARK_BITS) - 1
# The state takes four bits; stamp, queued and reset one each.
STATE_BITS = 4
CLAWGRESS_BITS = STATE_BITS + 3
MAX_SHIFT = MARK_BITS - CLAWGRESS_BITS


class State(IntEnum):
    """A flow's state, as stored in the state bits of the conntrack mark."""

    UNDECIDED = 0
    ALLOW = 1
    DENY = 2
    INSPECT = 3
    # The engine needs the flow's first client payload (the TLS ClientHello) to decide.
    PENDING = 4


@dataclass(frozen=True)
class Marks:
    """The mark layout for one ``shift``; every value is a 32-bit integer."""

    shift: int
    state_mask: int = field(init=False)
    stamp_bit: int = field(init=False)
    queued_bit: int = field(init=False)
    reset_bit: int = field(init=False)
    # All seven Clawgress bits, and everything else.
    ours: int = field(init=False)
    others: int = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.shift, bool) or not 0 <= self.shift <= MAX_SHIFT:
            raise ValueError(f"mark shift must be between 0 and {MAX_SHIFT}, got {self.shift!r}")
        s = self.shift
        ours = ((1 << CLAWGRESS_BITS) - 1) << s
        object.__setattr__(self, "state_mask", ((1 << STATE_BITS) - 1) << s)
        object.__setattr__(self, "stamp_bit", 1 << (s + STATE_BITS))
        object.__setattr__(self, "queued_bit", 1 << (s + STATE_BITS + 1))
        object.__setattr__(self, "reset_bit", 1 << (s + STATE_BITS + 2))
        object.__setattr__(self, "ours", ours)
        object.__setattr__(self, "others", FULL_MASK & ~ours)

    @classmethod
    def from_config(cls, config: Config) -> Marks:
        return cls(config.dataplane.mark_shift)

    def value(self, state: State) -> int:
        """``state`` in place in the state bits."""
        return int(state) << self.shift

    def stamp(self, packet_mark: int, state: State) -> int:
        """The packet mark the engine returns with its verdict.

        Other owners' bits and the queued and reset bits are kept as they are; the state
        bits become ``state`` and the stamp bit is set.
        """
        kept = packet_mark & FULL_MASK & ~(self.state_mask | self.stamp_bit)
        return kept | self.stamp_bit | self.value(state)

    def with_state(self, ct_mark: int, state: State) -> int:
        """A conntrack mark with its state bits replaced by ``state``, all else kept."""
        return (ct_mark & FULL_MASK & ~self.state_mask) | self.value(state)

    def state_of(self, mark: int) -> State | None:
        """The state in ``mark``; ``None`` for a code Clawgress never writes (5 to 15)."""
        code = (mark & self.state_mask) >> self.shift
        try:
            return State(code)
        except ValueError:
            return None

    def is_stamped(self, mark: int) -> bool:
        return bool(mark & self.stamp_bit)

    def is_queued(self, mark: int) -> bool:
        return bool(mark & self.queued_bit)

    def is_reset(self, mark: int) -> bool:
        return bool(mark & self.reset_bit)

    @property
    def engine_sent(self) -> int:
        """The socket mark of packets the engine writes itself (stamp, queued and reset all
        set, which no queued packet carries): the ruleset leaves them untracked."""
        return self.stamp_bit | self.queued_bit | self.reset_bit
