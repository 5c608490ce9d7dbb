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
    stats: Mapping[int, QueueStats],
    queues: Mapping[str, int],
    counters: Mapping[str, int],
    txt_signals: Mapping[str, int] | None = None,
    resolved: int | None = None,
) -> str:
    """``queues`` names the engine's queues (``verdict``, ``reset``) by number;
    ``txt_signals`` counts, per agent, DNS answers with oversized TXT payloads;
    ``resolved`` is how many (agent, address) name bindings the engine holds."""
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
    if resolved is not None:
        lines += [
            "# HELP clawgress_resolved_addresses Addresses agents resolved, held with their"
            " names.",
            "# TYPE clawgress_resolved_addresses gauge",
            f"clawgress_resolved_addresses {resolved}",
        ]
    if txt_signals is not None:
        lines += [
            "# HELP clawgress_dns_txt_signals_total DNS answers to an agent whose TXT records"
            " exceed names.txt_signal_bytes (a tunnelling signal).",
            "# TYPE clawgress_dns_txt_signals_total counter",
        ]
        lines += [f'clawgress_dns_txt_signals_total{{agent="{_label(agent)}"}} {count}'
                  for agent, count in sorted(txt_signals.items())]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
