"""Clients and listeners for the verdict engine's kernel tests, in the lab's namespaces:
curl timed from outside, Python TCP and UDP sockets that report how an attempt ended and
how long it took, a streaming download that records when it was cut, and listeners that
count what reached them, by client port."""

from __future__ import annotations

import contextlib
import errno
import itertools
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from nsutil import Namespace

from gatewayd.lab import Lab

T = TypeVar("T")

_local_ports = itertools.count(42000)


def next_local_port() -> int:
    """A client port not used before in this run (so no TIME_WAIT clash, and audit events
    can be matched to a client by its source port)."""
    return next(_local_ports)


def bind_unused_port(sock: socket.socket, src: str) -> int:
    """Bind ``sock`` to ``src`` and a port from ``next_local_port`` (skipping one that
    some other socket happens to hold); returns the port."""
    while True:
        port = next_local_port()
        try:
            sock.bind((src, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        return port


def url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def wait_for(what: str, probe: Callable[[], T | None], timeout: float,
             interval: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy; fail saying ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# --- clients ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CurlResult:
    rc: int
    status: int | None
    local_port: int | None
    elapsed: float
    body: str
    stderr: str


def curl(lab: Lab, agent: str, url: str, *args: str, timeout: float = 5.0) -> CurlResult:
    """``curl URL`` in ``agent``'s namespace, timed from outside (wall clock)."""
    marker = "\n@@curl "
    argv = ["curl", "-sS", "-g", "-m", str(timeout), *args,
            "-w", f"{marker}%{{http_code}} %{{local_port}}", url]
    start = time.monotonic()
    done = lab.exec(agent, argv, capture_output=True, text=True, timeout=timeout + 10)
    elapsed = time.monotonic() - start
    body, _, tail = done.stdout.rpartition(marker)
    code, _, port = tail.partition(" ")
    return CurlResult(
        done.returncode,
        int(code) if code.isdigit() and code != "000" else None,
        int(port) if port.isdigit() and port != "0" else None,
        elapsed, body, done.stderr.strip(),
    )


@dataclass(frozen=True)
class Attempt:
    """One TCP connection attempt from a Python socket: how it ended and when."""

    sport: int
    outcome: str  # "connected", "refused", "timeout", or the errno name
    started: float  # time.monotonic()
    ended: float

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


def _outcome(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    return errno.errorcode.get(exc.errno or 0, str(exc))


def tcp_attempt(ns: Namespace, src: str, dst: str, port: int,
                timeout: float = 2.0) -> Attempt:
    """Connect from ``src`` (an address of ``ns``) to ``dst``:``port``, then close. The
    client port is one no other attempt of this run used, so what a listener saw can be
    told apart by port."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with ns.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sport = bind_unused_port(sock, src)
        started = time.monotonic()
        try:
            sock.connect((dst, port))
            outcome = "connected"
        except OSError as exc:
            outcome = _outcome(exc)
        return Attempt(sport, outcome, started, time.monotonic())


@contextlib.contextmanager
def udp_socket(ns: Namespace, dst: str, port: int, src: str | None = None,
               timeout: float = 2.0) -> Iterator[socket.socket]:
    """A UDP socket in ``ns``, connected to ``dst``:``port`` (ICMP errors then show up
    as exceptions on ``recv``)."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with ns.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        if src is not None:
            sock.bind((src, 0))
        sock.connect((dst, port))
        yield sock


def exchange(sock: socket.socket, payload: bytes) -> tuple[bytes | OSError, float]:
    """Send ``payload`` on a connected UDP socket and wait for the answer: the answer, or
    the error that came instead (an ICMP error, a timeout), and how long it took."""
    start = time.monotonic()
    try:
        sock.send(payload)
        answer: bytes | OSError = sock.recv(2048)
    except OSError as exc:
        answer = exc
    return answer, time.monotonic() - start


def dns_query(name: str = "github.com", qid: int = 0x4242) -> bytes:
    """A DNS query for ``name`` (type A), as bytes."""
    head = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return head + labels + b"\x00\x00\x01\x00\x01"


class Download:
    """A streaming curl in an agent's namespace, from a pinned local port; records when
    each line arrived and when curl ended (wall clock, ``time.time()``)."""

    def __init__(self, lab: Lab, agent: str, url: str, *, max_time: float = 30.0) -> None:
        self.local_port = next_local_port()
        self.lines: list[tuple[float, str]] = []
        self.ended_at: float | None = None
        self._stderr: str | None = None
        self.proc = lab.popen(agent, ["curl", "-sS", "-g", "--no-buffer", "-m", str(max_time),
                                      "--local-port", str(self.local_port), url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line))
        self.proc.wait()
        self.ended_at = time.time()

    def wait_started(self, lines: int = 2, timeout: float = 5.0) -> None:
        wait_for(f"{lines} lines of the download", lambda: len(self.lines) >= lines, timeout)

    def wait_ended(self, timeout: float) -> tuple[int, float]:
        """curl's exit code and the time it ended."""
        self._reader.join(timeout)
        if self.ended_at is None:
            raise AssertionError(f"the download still runs {timeout:.1f}s later")
        return self.proc.returncode, self.ended_at

    def stderr(self) -> str:
        """What curl said (once it has ended)."""
        if self._stderr is None:
            assert self.proc.stderr is not None
            self._stderr = str(self.proc.stderr.read()).strip()
        return self._stderr

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        self._reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


# --- what reached the upstream ---------------------------------------------------------


class CountingListener:
    """A TCP or UDP listener in a namespace that counts what reached it, by peer port."""

    def __init__(self, ns: Namespace, address: str, port: int, kind: int) -> None:
        self.address, self.port = address, port
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = ns.socket(family, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            self.sock.listen(1024)
        self.sock.settimeout(0.05)
        self.kind = kind
        self.seen: Counter[int] = Counter()  # peer port → connections (TCP) or datagrams
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if self.kind == socket.SOCK_STREAM:
                    conn, peer = self.sock.accept()
                    conn.close()
                else:
                    _, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                self.seen[peer[1]] += 1

    def ports(self) -> set[int]:
        with self._lock:
            return set(self.seen)

    def total(self) -> int:
        with self._lock:
            return sum(self.seen.values())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextlib.contextmanager
def counting_listener(ns: Namespace, address: str, port: int,
                      kind: int = socket.SOCK_STREAM) -> Iterator[CountingListener]:
    listener = CountingListener(ns, address, port, kind)
    try:
        yield listener
    finally:
        listener.close()


@contextlib.contextmanager
def extra_address(ns: Namespace, cidr: str, dev: str = "eth0") -> Iterator[None]:
    """``cidr`` added to ``dev`` in ``ns`` for the body, removed after."""
    extra = ["nodad"] if ":" in cidr else []
    ns.run("ip", "addr", "add", cidr, "dev", dev, *extra)
    try:
        yield
    finally:
        ns.run("ip", "addr", "del", cidr, "dev", dev, check=False)
