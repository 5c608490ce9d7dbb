"""Hostile clients against the L7 engine in the lab: a thousand slowloris connections and
heads built to be expensive. The engine's memory stays a bounded multiple of what was
sent, idle partial connections are closed at the header timeout, and other clients are
still served meanwhile. Past ``l7.max_connections``, a new connection is closed at once."""

from __future__ import annotations

import contextlib
import resource
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from l7_support import L7Gateway

PROXY = ("10.77.0.1", 3128)
SLOWLORIS = 1000
HEADER_TIMEOUT_S = 10  # the lab's l7.header_timeout (the default)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def _open_files(wanted: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(wanted, hard)), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _partial(gateway: L7Gateway, count: int, head: bytes) -> list[socket.socket]:
    ns = gateway.ns("a1")
    opened = []
    for _ in range(count):
        sock = ns.socket()
        sock.settimeout(5)
        sock.connect(PROXY)
        sock.sendall(head)
        opened.append(sock)
    return opened


def _request_latency(gateway: L7Gateway, count: int) -> list[float]:
    """Sequential proxy requests from a2 (a new connection each), seconds each."""
    ns = gateway.ns("a2")
    times = []
    for _ in range(count):
        start = time.monotonic()
        with ns.socket() as sock:
            sock.settimeout(5)
            sock.connect(PROXY)
            sock.sendall(b"GET http://github.com/ HTTP/1.1\r\nHost: github.com\r\n"
                         b"Connection: close\r\n\r\n")
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
        assert got.startswith(b"HTTP/1.1 "), got[:100]
        times.append(time.monotonic() - start)
    return times


def _read_to_end(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got


def _all_closed(socks: list[socket.socket], deadline_s: float) -> int:
    """How many of ``socks`` the gateway closed before ``deadline_s`` from now."""
    closed: set[int] = set()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and len(closed) < len(socks):
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            sock.settimeout(0.001)
            try:
                if sock.recv(4096) == b"":
                    closed.add(i)
            except TimeoutError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.2)
    return len(closed)


def test_slowloris_is_bounded_and_closed_at_the_header_timeout(gateway: L7Gateway) -> None:
    pid = gateway.lab.engine_pid()
    assert pid is not None
    baseline_latency = _request_latency(gateway, 30)
    before = _rss_kib(pid)
    head = b"GET http://github.com/ HTTP/1.1\r\nHost: github.com\r\nX-Slow: "
    with _open_files(SLOWLORIS + 200):
        socks = _partial(gateway, SLOWLORIS, head)
        try:
            time.sleep(0.5)
            held = _rss_kib(pid) - before
            # Each idle connection costs the engine its fixed state (a task, a transport,
            # an HTTP parser): bounded, whatever was sent.
            assert held < SLOWLORIS * 48, f"{held} KiB for {SLOWLORIS} partial heads"
            during = _request_latency(gateway, 30)
            assert statistics.median(during) < max(5 * statistics.median(baseline_latency),
                                                   0.05), (baseline_latency, during)
            assert max(during) < 1.0, during
            closed = _all_closed(socks, HEADER_TIMEOUT_S + 5)
            assert closed == SLOWLORIS
        finally:
            for sock in socks:
                sock.close()
    metrics = gateway.metrics(newer_than=time.time())
    assert metrics['clawgress_engine_events_total{event="l7_header_timeouts"}'] >= SLOWLORIS


@pytest.mark.parametrize("header_kib", [30])
def test_large_partial_heads_cost_a_bounded_multiple_of_their_size(
        gateway: L7Gateway, header_kib: int) -> None:
    pid = gateway.lab.engine_pid()
    assert pid is not None
    before = _rss_kib(pid)
    head = (b"GET http://github.com/ HTTP/1.1\r\nHost: github.com\r\n"
            + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 60) for i in range(header_kib * 16)))
    count = 100
    with _open_files(count + 200):
        socks = _partial(gateway, count, head)
        try:
            time.sleep(0.5)
            held = _rss_kib(pid) - before
            sent_kib = count * len(head) // 1024
            assert held < 4 * sent_kib + count * 48, f"{held} KiB held for {sent_kib} KiB sent"
        finally:
            for sock in socks:
                sock.close()


def test_a_head_over_the_limit_gets_431(gateway: L7Gateway) -> None:
    with gateway.ns("a1").socket() as sock:
        sock.settimeout(5)
        sock.connect(PROXY)
        sock.sendall(b"GET http://github.com/ HTTP/1.1\r\nHost: github.com\r\n"
                     + b"X-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        got = sock.recv(4096)
    assert got.startswith(b"HTTP/1.1 431 "), got[:100]


def test_tls_garbage_on_a_diverted_flow_is_reset(gateway: L7Gateway) -> None:
    cursor = gateway.cursor()
    with gateway.diverted(443) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05garbage-that-is-not-a-hello" * 3)
        with pytest.raises(ConnectionResetError):
            _read_to_end(sock)
    refused = cursor.wait("tls.decision", src_ip="10.77.0.11", action="deny")
    assert "not-tls" in refused["flags"]


@contextlib.contextmanager
def _l7_settings(gateway: L7Gateway, **settings: object) -> Iterator[None]:
    """The engine restarted with ``settings`` in the lab's ``l7`` section; restarted with
    the lab's own configuration afterwards, whatever happens."""
    path = gateway.lab.config_path
    original = path.read_text()
    try:
        gateway.restart_with_l7(**settings)
        yield
    finally:
        path.write_text(original)
        gateway.stop_engine()
        gateway.lab.start_engine()


def _answer(sock: socket.socket) -> bytes:
    sock.sendall(b"GET http://github.com/ HTTP/1.1\r\nHost: github.com\r\n"
                 b"Connection: close\r\n\r\n")
    return _read_to_end(sock)


def test_connections_past_the_limit_are_closed_at_once(gateway: L7Gateway) -> None:
    limit = 4
    head = b"GET http://github.com/ HTTP/1.1\r\nHost: github.com\r\nX-Slow: "
    with _l7_settings(gateway, max_connections=limit):
        held = _partial(gateway, limit, head)
        try:
            time.sleep(0.3)  # the engine has taken them all
            with gateway.ns("a1").socket() as extra:
                extra.settimeout(5)
                extra.connect(PROXY)
                start = time.monotonic()
                try:
                    got = _answer(extra)
                except ConnectionResetError:
                    got = b""
                assert got == b"", got[:100]
                assert time.monotonic() - start < 2.0
            held.pop().close()
            got = b""
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:  # once the engine has seen it go
                time.sleep(0.2)
                with gateway.ns("a1").socket() as sock:
                    sock.settimeout(5)
                    sock.connect(PROXY)
                    try:
                        got = _answer(sock)
                    except ConnectionResetError:
                        got = b""
            assert got.startswith(b"HTTP/1.1 "), got[:100]
        finally:
            for sock in held:
                sock.close()
        metrics = gateway.metrics(newer_than=time.time())
        assert metrics['clawgress_engine_events_total{event="l7_connections_refused"}'] >= 1
