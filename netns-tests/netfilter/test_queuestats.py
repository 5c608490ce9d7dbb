"""Queue statistics of a real NFQUEUE: a listener, a waiting packet, and none without one."""

from __future__ import annotations

import socket
import time

import pytest
from netfilterqueue import NetfilterQueue
from nsutil import UPSTREAM_V4, Lab, Namespace

from gatewayd.netfilter.apply import apply
from gatewayd.netfilter.probe import select_backend
from gatewayd.netfilter.queuestats import QueueStats, read_queue_stats
from gatewayd.netfilter.render import render_ruleset

pytestmark = pytest.mark.netns

QUEUE = 3
WAIT_S = 5.0


def stats_in(ns: Namespace) -> dict[int, QueueStats]:
    with ns.entered():
        return read_queue_stats()


def test_no_listener_no_queue(netns: Namespace) -> None:
    assert stats_in(netns) == {}


def test_bound_queue_counts_the_waiting_packet(gateway_lab: Lab) -> None:
    lab = gateway_lab
    config = lab.config(fail_mode="fail-closed", queue=QUEUE, reset_queue=QUEUE + 1)
    with lab.gateway.entered():
        apply(render_ruleset(config, select_backend(config).backend))
        nfq = NetfilterQueue()
    try:
        with lab.gateway.entered():
            nfq.bind(QUEUE, lambda pkt: pkt.accept(), max_len=16)
        bound = stats_in(lab.gateway)[QUEUE]
        assert bound.peer_portid != 0
        assert (bound.queue_total, bound.queue_dropped, bound.user_dropped) == (0, 0, 0)
        assert QUEUE + 1 not in stats_in(lab.gateway)

        # The agent's SYN waits in the queue: nobody reads it.
        with lab.agent.socket() as client:
            client.setblocking(False)
            assert client.connect_ex((UPSTREAM_V4, 8080)) != 0
            deadline = time.monotonic() + WAIT_S
            while stats_in(lab.gateway)[QUEUE].queue_total == 0:
                assert time.monotonic() < deadline, "the SYN never reached the queue"
                time.sleep(0.02)
            waiting = stats_in(lab.gateway)[QUEUE]
            assert waiting.queue_total >= 1
            assert waiting.id_sequence >= waiting.queue_total
            assert waiting.peer_portid == bound.peer_portid
            assert client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    finally:
        nfq.unbind()
    assert stats_in(lab.gateway) == {}
