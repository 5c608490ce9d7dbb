"""The verdict engine: every new flow from a workload interface, decided.

``decide`` is the pure core: a queued packet's bytes, mark and input interface, with the
lease table and the policy plan, give a stamped mark and an audit event. ``flows`` is pure
too: which established flows a lease or policy change must end. ``engine`` is the IO
shell: NFQUEUE in an asyncio loop, the store, conntrack, the ruleset, the audit log.
"""

from gatewayd.verdict.decide import Decider, FlowVerdict, state_for
from gatewayd.verdict.flows import Ending, flows_to_end

__all__ = ["Decider", "Ending", "FlowVerdict", "flows_to_end", "state_for"]
