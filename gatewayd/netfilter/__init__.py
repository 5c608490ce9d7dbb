"""The kernel side of the data plane: the nftables ruleset, its queues, marks and flows.

``Marks`` is the bit layout Clawgress keeps in packet and conntrack marks (flow state,
stamp, queued, reset). ``render_ruleset`` fills ``nft/clawgress.nft.in`` from the
configuration for a queue backend (native nft ``queue``, or the xtables NFQUEUE target
through iptables-nft); ``select_backend`` probes which one this kernel supports.
``apply`` replaces table ``inet clawgress`` in one transaction and keeps our tagged xtables
rules exact; ``check_drift`` compares the live state with a ``Baseline`` taken after
``apply``. ``parse_queue_stats`` reads NFQUEUE statistics; ``flows``, ``end_flows`` and
``delete_flows`` list and end tracked flows. ``check_health`` gathers what
``clawgress doctor`` prints.

IO boundary: ``marks``, ``render``, ``Snapshot``/``compare``, ``choose_backend`` and
``parse_queue_stats`` are pure. ``nft`` (libnftables and the iptables tools), ``apply``,
``drift``, ``probe``, ``scratch``, ``queuestats.read_queue_stats``, ``conntrack`` and
``health`` talk to the kernel, always in the network namespace of the calling thread.
"""

from gatewayd.netfilter.apply import (
    apply,
    flush,
    forget_denied,
    live_digest,
    show,
    show_json,
    sync_leased,
    table_present,
    tagged_xtables_rules,
)
from gatewayd.netfilter.conntrack import Flow, FlowSelector, delete_flows, end_flows, flows
from gatewayd.netfilter.drift import (
    Baseline,
    Drift,
    Snapshot,
    check_drift,
    compare,
    snapshot,
    take_baseline,
)
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.health import Health, check_health
from gatewayd.netfilter.marks import Marks, State
from gatewayd.netfilter.probe import (
    BackendChoice,
    Capabilities,
    Capability,
    choose_backend,
    probe_capabilities,
    probe_queue_backend,
    select_backend,
)
from gatewayd.netfilter.queuestats import QueueStats, parse_queue_stats, read_queue_stats
from gatewayd.netfilter.render import (
    TABLE,
    XTABLES_TAG,
    Backend,
    Ruleset,
    XtablesRule,
    render_ruleset,
)
from gatewayd.netfilter.scratch import expected_snapshot

__all__ = [
    "TABLE",
    "XTABLES_TAG",
    "Backend",
    "BackendChoice",
    "Baseline",
    "Capabilities",
    "Capability",
    "Drift",
    "Flow",
    "FlowSelector",
    "Health",
    "Marks",
    "NetfilterError",
    "QueueStats",
    "Ruleset",
    "Snapshot",
    "State",
    "XtablesRule",
    "apply",
    "check_drift",
    "check_health",
    "choose_backend",
    "compare",
    "delete_flows",
    "end_flows",
    "expected_snapshot",
    "flows",
    "flush",
    "forget_denied",
    "live_digest",
    "parse_queue_stats",
    "probe_capabilities",
    "probe_queue_backend",
    "read_queue_stats",
    "render_ruleset",
    "select_backend",
    "show",
    "show_json",
    "snapshot",
    "sync_leased",
    "table_present",
    "tagged_xtables_rules",
    "take_baseline",
]
