"""The engine's counters in the Prometheus text format (for node_exporter's textfile
collector). Pure: queue statistics and counters in, text out."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gatewayd.netfilter import QueueStats

_QUEUE_METRICS: tuple[tuple[str, str, str, Callable[[QueueStats], int]], ...] = (
    ("clawgress_queue_depth", "gauge", "Packets waiting in an NFQUEUE for a verdict.",
     lambda st: st.queue_total),
    ("clawgress_queue_dropped_total", "counter", "Packets the kernel dropped from a full"
     " NFQUEUE.", lambda st: st.drops),
)


def render_metrics(
    stats: Mapping[int, QueueStats], queues: Mapping[str, int], counters: Mapping[str, int]
) -> str:
    """``queues`` names the engine's queues (``verdict``, ``reset``) by number."""
    lines = []
    for metric, kind, help_text, value in _QUEUE_METRICS:
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]
        for name, number in queues.items():
            st = stats.get(number)
            if st is not None:
                lines.append(f'{metric}{{queue="{name}"}} {value(st)}')
    lines += [
        "# HELP clawgress_engine_events_total Verdicts, resets, reloads and flow endings.",
        "# TYPE clawgress_engine_events_total counter",
    ]
    lines += [f'clawgress_engine_events_total{{event="{key}"}} {count}'
              for key, count in sorted(counters.items())]
    return "\n".join(lines) + "\n"
