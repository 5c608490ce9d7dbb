"""Floods of new flows: the kernel limits each source before the queue, so one agent's flood
costs the engine at most ``new_flow_rate`` verdicts a second (plus the burst) and the other
agents keep their normal latency; a queue that overflows anyway drops (never passes) and
the drops are counted in the metrics file."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import pytest
from verdict_net import (
    counting_listener,
    curl,
    dns_query,
    extra_address,
    url_host,
    wait_for,
)
from verdict_support import (
    A1,
    AF,
    AT_ONCE_S,
    DNS,
    FAMILIES,
    GITHUB,
    NEW_FLOW_BURST,
    NEW_FLOW_RATE,
    PASTEBIN,
    UNLEASED_BURST,
    UNLEASED_RATE,
    Gateway,
)

pytestmark = pytest.mark.netns

FLOOD_S = 2.0
QUEUE_MAX_LEN = 4096  # dataplane.queue_max_len, the default


class Flood:
    """New flows from a1 as fast as Python sends them, to port after port of ``dst``:
    UDP datagrams, or TCP SYNs (a non-blocking connect, then close)."""

    def __init__(self, gateway: Gateway, family: int, proto: str, dst: str,
                 sources: list[str]) -> None:
        self.sent = 0
        self.elapsed = 0.0
        self._stop = threading.Event()
        ns = gateway.ns("a1")
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM

        def run() -> None:
            start = time.monotonic()
            udp = [ns.socket(AF[family], kind) for _ in sources] if proto == "udp" else []
            for sock, src in zip(udp, sources, strict=False):
                sock.bind((src, 0))
                sock.setblocking(False)
            port = 0
            while not self._stop.is_set():
                for i, src in enumerate(sources):
                    port = port % 40000 + 1
                    target = (dst, 20000 + port)
                    if proto == "udp":
                        with contextlib.suppress(BlockingIOError):
                            udp[i].sendto(b"flood", target)
                    else:
                        with ns.socket(AF[family], kind) as sock:
                            sock.setblocking(False)
                            sock.bind((src, 0))
                            sock.connect_ex(target)  # the SYN leaves; close drops it
                    self.sent += 1
            for sock in udp:
                sock.close()
            self.elapsed = time.monotonic() - start

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()


@contextlib.contextmanager
def flooding(gateway: Gateway, family: int, proto: str, dst: str,
             sources: list[str]) -> Iterator[Flood]:
    flood = Flood(gateway, family, proto, dst, sources)
    try:
        yield flood
    finally:
        flood.stop()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_a_flood_is_limited_per_source_and_others_keep_working(
    gateway: Gateway, family: int, proto: str
) -> None:
    url = f"https://{url_host(GITHUB[family])}/"  # a2 (builder) may reach code hosting
    baseline = [curl(gateway.lab, "a2", url).elapsed for _ in range(5)]
    # Over-limit packets are dropped by the flood limiter, or, for datagrams of UDP flows
    # already denied, refused just before it by the "denied before" rule.
    def kernel_drops() -> int:
        return (gateway.rule_counter("leased", "flood")
                + gateway.rule_counter("classify", "denied before"))

    flood_drops = kernel_drops()
    queued = gateway.queued()

    legit = []
    with flooding(gateway, family, proto, PASTEBIN[family], [A1[family]]) as flood:
        time.sleep(0.3)
        deadline = time.monotonic() + FLOOD_S
        while time.monotonic() < deadline:
            legit.append(curl(gateway.lab, "a2", url))
    queued = gateway.queued() - queued
    flood_drops = kernel_drops() - flood_drops

    # The flood was far above the limit, and the kernel dropped the excess.
    limit = NEW_FLOW_RATE * flood.elapsed + NEW_FLOW_BURST
    assert flood.sent > 5 * limit, f"only {flood.sent} new flows in {flood.elapsed:.1f}s"
    assert flood_drops > flood.sent - limit - len(legit) - 100
    # The engine saw at most what the limit lets through (and a2's requests).
    assert queued <= limit + len(legit) + 50, f"{queued} queued, limit {limit:.0f}"
    # a2 was not slowed down: no lost SYN (that costs a 1 s retransmission), normal latency.
    assert legit, "no request from a2 during the flood"
    assert all(r.status == 200 for r in legit), [r.stderr for r in legit if r.status != 200]
    slowest = max(r.elapsed for r in legit)
    assert slowest < AT_ONCE_S, f"a2's slowest request took {slowest:.3f}s"
    assert statistics.median(r.elapsed for r in legit) < 3 * statistics.median(baseline) + 0.05
    # a1's address is in the limiter's set.
    flood_set = gateway.nft("list", "set", "inet", "clawgress", f"flood{family}")
    assert A1[family] in flood_set


def test_an_overflowing_queue_drops_and_the_drops_are_exported(gateway: Gateway) -> None:
    """16 addresses of a1's subnet, each leased to a1's agent (so each is a source with a
    flood budget of its own), send bursts to a denied destination while the engine is
    paused: the queue fills to its length and the kernel drops the rest. Nothing passes
    without a verdict, the engine catches up, and the metrics file shows the kernel's drop
    counters."""
    sources = [f"fd77::1:{i:x}" for i in range(1, 17)]
    drops = gateway.queue_drops()
    with contextlib.ExitStack() as stack:
        for source in sources:
            stack.enter_context(extra_address(gateway.ns("a1"), f"{source}/64"))
            gateway.clawgress("lease", "grant", source, "--agent", "researcher")
            stack.callback(gateway.clawgress, "lease", "revoke", source)
        wait_for("the engine to give the ruleset the new leases",
                 lambda: all(s in gateway.nft("list", "set", "inet", "clawgress", "leased6")
                             for s in sources), timeout=3)
        upstream = stack.enter_context(
            counting_listener(gateway.ns("up"), PASTEBIN[6], 9050, socket.SOCK_DGRAM))
        with gateway.engine_paused():
            with flooding(gateway, 6, "udp", PASTEBIN[6], sources):
                time.sleep(0.5)
            wait_for("a full queue", lambda: gateway.queue_drops()[0] > drops[0], timeout=3)
            full = gateway.queue_stats()[0]
        # The engine catches up with the full queue; the flood went nowhere.
        wait_for("the engine to drain its queue",
                 lambda: gateway.queue_stats()[0].queue_total == 0, timeout=10)
        drained_at = time.time()
        assert upstream.total() == 0

    assert full.queue_total == QUEUE_MAX_LEN
    after = gateway.queue_drops()
    assert after[0] > drops[0]
    metrics = gateway.metrics(newer_than=drained_at)
    assert metrics['clawgress_queue_dropped_total{queue="verdict"}'] == after[0]
    assert metrics['clawgress_queue_dropped_total{queue="reset"}'] == after[1]
    assert metrics['clawgress_queue_depth{queue="verdict"}'] == 0
    # Still working for everyone else.
    assert curl(gateway.lab, "a2", f"https://{GITHUB[4]}/").status == 200


def test_addresses_an_agent_adds_share_one_small_budget(gateway: Gateway) -> None:
    """An agent that adds addresses of its subnet to its interface (anti-spoofing admits
    the whole subnet) does not get a flood budget per address: sources without a lease on
    their interface share the one ``unleased`` budget, so 16 extra addresses flooding
    reach the queue at that shared rate, while a2 keeps working."""
    sources = [f"fd77::2:{i:x}" for i in range(1, 17)]
    # Over-budget packets are dropped by the shared limiter, or, once a flow was denied,
    # refused just before it by the "denied before" rule.
    def kernel_drops() -> int:
        return (gateway.rule_counter("classify", "unleased")
                + gateway.rule_counter("classify", "denied before"))

    unleased = kernel_drops()
    queued = gateway.queued()
    url = f"https://{url_host(GITHUB[4])}/"
    legit = []
    with contextlib.ExitStack() as stack:
        for source in sources:
            stack.enter_context(extra_address(gateway.ns("a1"), f"{source}/64"))
        with flooding(gateway, 6, "udp", PASTEBIN[6], sources) as flood:
            time.sleep(0.3)
            deadline = time.monotonic() + FLOOD_S
            while time.monotonic() < deadline:
                legit.append(curl(gateway.lab, "a2", url))
    queued = gateway.queued() - queued
    unleased = kernel_drops() - unleased
    shared = UNLEASED_RATE * flood.elapsed + UNLEASED_BURST
    assert flood.sent > 10 * shared, f"only {flood.sent} packets in {flood.elapsed:.1f}s"
    assert unleased > flood.sent - shared - 100
    assert queued <= shared + len(legit) + 50, f"{queued} queued, shared budget {shared:.0f}"
    assert legit, "no request from a2 during the flood"
    assert all(r.status == 200 for r in legit)
    assert max(r.elapsed for r in legit) < AT_ONCE_S


@pytest.mark.parametrize("family", FAMILIES)
def test_a_dns_flood_on_an_allowed_flow_is_limited_per_agent(
    gateway: Gateway, family: int
) -> None:
    """The engine reads every DNS message of an allowed flow; an agent that floods queries
    on one socket gets the same per-source budget for them as for new flows, so the queue
    sees at most that, and a2 keeps working."""
    url = f"https://{url_host(GITHUB[family])}/"
    drops = gateway.rule_counter("observe", "flood")
    queued = gateway.queued()
    sent = 0
    legit = []
    with gateway.ns("a1").socket(AF[family], socket.SOCK_DGRAM) as sock:
        sock.connect((DNS[family], 53))
        sock.setblocking(False)
        start = time.monotonic()
        while time.monotonic() - start < FLOOD_S:
            for qid in range(200):
                with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                    sock.send(dns_query("example.com", qid=qid))
                    sent += 1
            legit.append(curl(gateway.lab, "a2", url))
        elapsed = time.monotonic() - start
    queued = gateway.queued() - queued
    drops = gateway.rule_counter("observe", "flood") - drops
    # Queries and their answers both count against a1's budget for what the engine reads.
    limit = NEW_FLOW_RATE * elapsed + NEW_FLOW_BURST
    assert sent > 5 * limit, f"only {sent} queries in {elapsed:.1f}s"
    assert drops > sent - limit - 100, f"{drops} dropped of {sent}"
    assert queued <= limit + 3 * len(legit) + 60, f"{queued} queued, limit {limit:.0f}"
    assert legit, "no request from a2 during the flood"
    assert all(r.status == 200 for r in legit)
    assert max(r.elapsed for r in legit) < AT_ONCE_S
