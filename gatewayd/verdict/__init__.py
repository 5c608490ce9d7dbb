"""The verdict engine: every new flow from a workload interface, decided.

``decide`` is the pure core: a queued packet's bytes, mark and input interface, with the
lease table and the policy plan, give a stamped mark and an audit event (``verdicts``). It
reads names off the wire through pure parts of its own: ``hello`` (pending flows decided
by their ClientHello, and QUIC), ``dns_reading`` (queries answered by the gateway, answers
learnt or refused), ``name_decisions`` (a flow judged by the names its agent resolved),
and keeps what it learns in ``observed``. ``flows`` is pure too: which established flows a
lease or policy change must end. ``engine`` is the IO shell: NFQUEUE in an asyncio loop,
the store, conntrack, the ruleset, the audit log.
"""

from gatewayd.verdict.decide import Decider
from gatewayd.verdict.flows import Ending, flows_to_end
from gatewayd.verdict.verdicts import FlowVerdict, state_for

__all__ = ["Decider", "Ending", "FlowVerdict", "flows_to_end", "state_for"]
