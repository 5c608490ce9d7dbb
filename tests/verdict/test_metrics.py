from __future__ import annotations

from gatewayd.netfilter import parse_queue_stats
from gatewayd.verdict.metrics import render_metrics

PROC = """\
    0  16553     7 2  4016    11     2     9000  1
    1  16554     0 2  4016     0     0       12  1
    5      0     0 2  4016     0     0        0  1
"""


def test_metrics_name_the_queues_and_counters() -> None:
    text = render_metrics(parse_queue_stats(PROC), {"verdict": 0, "reset": 1},
                          {"verdict_allow": 3, "flows_ended": 1})
    lines = text.splitlines()
    assert 'clawgress_queue_depth{queue="verdict"} 7' in lines
    assert 'clawgress_queue_depth{queue="reset"} 0' in lines
    assert 'clawgress_queue_dropped_total{queue="verdict"} 13' in lines
    assert lines[-2:] == ['clawgress_engine_events_total{event="flows_ended"} 1',
                          'clawgress_engine_events_total{event="verdict_allow"} 3']
    assert "# TYPE clawgress_queue_dropped_total counter" in lines
    assert text.endswith("\n")


def test_a_queue_nobody_bound_is_left_out() -> None:
    text = render_metrics(parse_queue_stats(PROC), {"verdict": 3}, {})
    assert "queue=" not in text
