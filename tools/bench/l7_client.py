"""The L7 benchmark's agent side: 4 KiB JSON POSTs, timed, every answer checked.

Runs in a lab agent's namespace (``tools/bench/l7.py`` starts it) against
``l7_server.py``, directly or through a proxy, and prints one JSON object. The target is
``HOST:PORT``; a host name is resolved once at the start with ``getaddrinfo`` (an A query to
the namespace's resolver, the lab's: the gateway learns the name from the answer it sees),
and the address it resolves to is in the output. ``--tls`` speaks HTTPS with ``--sni``
(default: the host), verifying the server against ``--cafile`` (name included).

Every request is the same: ``POST /echo`` with ``Content-Type: application/json`` and a
4096-byte JSON body (``BODY``), framed by ``Content-Length``. Every answer must be ``200`` with
exactly the body ``l7_server.py`` gives for that request (its length and CRC-32) and a
``Content-Length``; anything else is counted under ``errors`` and not timed, so a broken
path never makes a fast number.

* ``seq``: one request at a time. Keep-alive (the default): one connection, opened untimed,
  then each request timed from its write to the last byte of its answer. ``--new-conn``: a
  new connection per request, each timed from the start of ``connect()`` (TCP, the TLS
  handshake with ``--tls``) to the last byte of the answer; the socket is made before and
  closed after the timing, with SO_LINGER 0 (a reset, so no TIME_WAIT piles up in the agent).
  A few untimed warm-up requests first. Prints the latencies in microseconds.
* ``load``: ``--connections`` keep-alive connections on one event loop (uvloop when it can
  be imported). Without ``--rate`` it is closed-loop — each connection sends its next request
  as soon as its answer is in — and the answers completed in the measured window (after
  ``--warmup`` seconds) give requests per second at saturation. With ``--rate`` it is
  open-loop: requests are started on schedule on an idle connection, whether or not earlier
  ones are done, and each is timed from its write (a request that found no idle connection
  is timed from when it was due, and counted as ``waited``, so a stall cannot hide). The
  client's own CPU time over the window is reported, to tell a saturated proxy from a
  saturated client. At the end no new request is sent and the answers to those sent are
  awaited, so every request the client wrote is counted (``completed``) or is an error.
* ``load --rate R --pacer PATH``: the same open-loop measurement made by ``l7_pace.c``
  (``tools/bench/l7.py`` compiles it; PATH is the program), plain HTTP only. This process
  resolves the target and writes the request and the expected answer body to files in a
  temporary folder, then runs the program as its child (so it inherits the namespace and
  the CPU pinning) and prints its JSON with ``address`` and ``"pacer": "c"`` added. The C
  pacer sends each request at its own due time (a timerfd armed at absolute due times, no
  busy loop) and times it from that due time to the last byte of its answer (measuring
  the requests due in the window, whenever answered), whereas the asyncio pacer above
  sleeps in ticks of a millisecond or more and can fall behind by tens of milliseconds,
  which then shows in the p99. Without ``--pacer`` the asyncio pacer runs (``"pacer":
  "asyncio"``).

Standard library apart from the optional uvloop, so it starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import errno
import json
import resource
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

LINGER_0 = struct.pack("ii", 1, 0)
BODY_SIZE = 4096
PATH = "/echo"
SYN_RETRIES = 2
READ_SIZE = 65536
TIMEOUT_S = 10.0
PACE_TICK_S = 0.001
# Paced: the first SLOW_KEPT requests slower than SLOW_S, when they were sent (seconds into
# the measured window) and how long they took (us): do the slow ones come together?
SLOW_S = 0.002
SLOW_KEPT = 2000


def make_body(size: int = BODY_SIZE) -> bytes:
    """A JSON document of exactly ``size`` bytes (a chat-completion-like request)."""
    head = b'{"model":"bench-model","stream":false,"messages":[{"role":"user","content":"'
    tail = b'"}]}'
    filler = (b"lorem ipsum dolor sit amet " * (size // 27 + 1))[:size - len(head) - len(tail)]
    body = head + filler + tail
    json.loads(body)  # well-formed
    assert len(body) == size
    return body


BODY = make_body()
EXPECTED = b'{"received":%d,"crc32":%d}' % (len(BODY), zlib.crc32(BODY))


def request_bytes(host_header: str) -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: clawgress-bench\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
            ).encode() + BODY


class BadAnswer(Exception):
    """An answer that is not the server's 200 with the expected body."""


def answer_size(buf: bytes | bytearray) -> int | None:
    """The size of the whole answer at the start of ``buf`` once its head is in (``None``
    before that); ``BadAnswer`` if it is not a 200 framed by Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise BadAnswer("head-too-long")
        return None
    head = bytes(buf[:end]).lower()
    if not head.startswith(b"http/1.1 200 "):
        raise BadAnswer(f"status-{head[9:12].decode('ascii', 'replace')}")
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise BadAnswer("no-content-length")
    stop = head.find(b"\r\n", at + 2)
    length = int(head[at + 17:stop if stop > 0 else len(head)].strip())
    return end + 4 + length


def check(answer: bytes | bytearray, size: int) -> None:
    if answer[size - len(EXPECTED):size] != EXPECTED or size - answer.find(b"\r\n\r\n") - 4 \
            != len(EXPECTED):
        raise BadAnswer("wrong-body")


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def resolve(host: str) -> str:
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    return str(sorted({str(i[4][0]) for i in infos})[0])


def tls_context(cafile: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, BadAnswer):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        return f"ssl:{exc.reason or exc}"
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


# --- one request at a time --------------------------------------------------------------

def _open(address: tuple[str, int], ctx: ssl.SSLContext | None,
          sni: str) -> socket.socket:
    """A socket not yet connected (TLS-wrapped when ``ctx``: connect() does the handshake)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, SYN_RETRIES)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw.settimeout(TIMEOUT_S)
    return ctx.wrap_socket(raw, server_hostname=sni) if ctx is not None else raw


def _exchange(sock: socket.socket, request: bytes) -> None:
    sock.sendall(request)
    buf = b""
    size = None
    while size is None or len(buf) < size:
        chunk = sock.recv(READ_SIZE)
        if not chunk:
            raise BadAnswer("eof")
        buf += chunk
        if size is None:
            size = answer_size(buf)
    if len(buf) != size:
        raise BadAnswer("extra-bytes")
    check(buf, size)


def seq(address: tuple[str, int], request: bytes, count: int, warmup: int, new_conn: bool,
        ctx: ssl.SSLContext | None, sni: str) -> dict[str, object]:
    clock = time.perf_counter_ns
    samples: list[float] = []
    errors: dict[str, int] = {}
    completed = 0
    sock: socket.socket | None = None
    for i in range(warmup + count):
        try:
            if new_conn:
                s = _open(address, ctx, sni)
                try:
                    t0 = clock()
                    s.connect(address)
                    _exchange(s, request)
                    t1 = clock()
                finally:
                    s.close()
            else:
                if sock is None:
                    sock = _open(address, ctx, sni)
                    sock.connect(address)
                t0 = clock()
                _exchange(sock, request)
                t1 = clock()
        except (OSError, BadAnswer, ValueError) as exc:
            name = _error_name(exc)
            errors[name] = errors.get(name, 0) + 1
            if sock is not None:
                sock.close()
                sock = None
            continue
        completed += 1
        if i >= warmup:
            samples.append((t1 - t0) / 1000)
    if sock is not None:
        sock.close()
    return {"mode": "seq", "new_conn": new_conn, "samples_us": [round(x, 2) for x in samples],
            "completed": completed, "errors": errors}


# --- many at once ------------------------------------------------------------------------

class _Conn(asyncio.Protocol):
    def __init__(self, load: _Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.size: int | None = None
        self.t0 = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, t0: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.t0 = t0
        self.transport.write(self.load.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        try:
            if self.size is None:
                self.size = answer_size(buf)
                if self.size is None:
                    return
            if len(buf) < self.size:
                return
            if len(buf) > self.size:
                raise BadAnswer("extra-bytes")
            check(buf, self.size)
        except (BadAnswer, ValueError) as exc:
            self.load.error(_error_name(exc))
            self._drop()
            return
        buf.clear()
        self.size = None
        self.busy = False
        self.load.answered(self)

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.load.lost(self, exc)


class _Load:
    def __init__(self, address: tuple[str, int], request: bytes, ctx: ssl.SSLContext | None,
                 sni: str, connections: int, duration: float, warmup: float,
                 rate: float | None) -> None:
        self.address = address
        self.request = request
        self.ctx = ctx
        self.sni = sni
        self.connections = connections
        self.duration = duration
        self.warmup = warmup
        self.rate = rate
        self.errors: dict[str, int] = {}
        self.completed = 0
        self.measured = 0
        self.latencies: list[float] = []
        self.idle: collections.deque[_Conn] = collections.deque()
        self.due: collections.deque[float] = collections.deque()  # paced, no idle conn
        self.waited = 0
        self.opened = 0
        self.conns: set[_Conn] = set()
        self.slow: list[tuple[float, int]] = []
        self.running = True
        self.t_measure = 0.0
        self.t_end = 0.0
        self.clock = time.perf_counter
        self.behind_max = 0.0
        self._opening: set[asyncio.Task[None]] = set()

    def error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    def answered(self, conn: _Conn) -> None:
        now = self.clock()
        self.completed += 1
        if self.t_measure <= now < self.t_end:
            self.measured += 1
            if self.rate is not None:
                self.latencies.append(now - conn.t0)
                if now - conn.t0 >= SLOW_S and len(self.slow) < SLOW_KEPT:
                    self.slow.append((round(conn.t0 - self.t_measure, 4),
                                      round((now - conn.t0) * 1e6)))
        if not self.running:
            return
        if self.rate is None:
            conn.send(now)
        elif self.due:
            conn.send(self.due.popleft())  # timed from when it was due
        else:
            self.idle.append(conn)

    def lost(self, conn: _Conn, exc: Exception | None) -> None:
        self.conns.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            self.error("closed-by-peer")
        elif self.running:
            self.error("idle-closed")
        if self.running:
            self.open()

    def open(self) -> None:
        task = asyncio.get_running_loop().create_task(self._open_one())
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open_one(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: _Conn(self), *self.address, ssl=self.ctx,
                server_hostname=self.sni if self.ctx is not None else None), TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            self.error(f"connect:{_error_name(exc)}")
            await asyncio.sleep(0.05)
            if self.running:
                self.open()
            return
        self.opened += 1
        self.conns.add(conn)
        if not self.running:
            return
        if self.rate is None:
            conn.send(self.clock())
        elif self.due:
            conn.send(self.due.popleft())
        else:
            self.idle.append(conn)

    async def run(self) -> dict[str, object]:
        for _ in range(self.connections):
            self.open()
        # Every connection open (TLS handshakes done) before the clock starts.
        deadline = self.clock() + TIMEOUT_S
        while self.opened < self.connections and self.clock() < deadline:
            await asyncio.sleep(0.005)
        start = self.clock()
        self.t_measure = start + self.warmup
        self.t_end = self.t_measure + self.duration
        cpu0 = 0.0
        if self.rate is None:
            await asyncio.sleep(self.warmup)
            cpu0 = _cpu()
            await asyncio.sleep(max(0.0, self.t_end - self.clock()))
        else:
            cpu0 = await self._pace(start)
        cpu = _cpu() - cpu0
        self.running = False
        # No new requests; the answers to those sent are awaited, so every request the
        # client sent is accounted for (a proxy's records can be matched one to one).
        deadline = self.clock() + TIMEOUT_S
        while any(c.busy for c in self.conns) and self.clock() < deadline:
            await asyncio.sleep(0.001)
        for conn in list(self.conns):
            if conn.busy:
                self.error("unanswered-at-end")
                conn.busy = False
            if conn.transport is not None:
                conn.transport.close()
        result: dict[str, object] = {
            "mode": "load", "paced": self.rate is not None, "connections": self.connections,
            "duration_s": self.duration, "completed": self.completed,
            "measured": self.measured, "rps": self.measured / self.duration,
            "errors": self.errors, "client_cpu": cpu / self.duration,
            "opened": self.opened,
        }
        if self.rate is not None:
            ordered = sorted(self.latencies)

            def pct(q: float) -> float:
                if not ordered:
                    return float("nan")
                return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1e6

            result.update({"rate": self.rate, "p50_us": pct(50), "p99_us": pct(99),
                           "max_us": pct(100), "waited": self.waited,
                           "behind_max_ms": self.behind_max * 1000, "slow": self.slow})
        return result

    async def _pace(self, start: float) -> float:
        """Start requests on schedule until the end; the CPU time at the measure start."""
        assert self.rate is not None
        interval = 1.0 / self.rate
        next_due = start
        cpu0 = None
        while True:
            now = self.clock()
            if now >= self.t_end:
                break
            if cpu0 is None and now >= self.t_measure:
                cpu0 = _cpu()
            if next_due <= now:
                self.behind_max = max(self.behind_max, now - next_due)
            while next_due <= now:
                if self.idle:
                    self.idle.popleft().send(now)
                else:
                    self.due.append(next_due)
                    self.waited += 1
                next_due += interval
            # The loop's timers tick in milliseconds: never a shorter sleep (a busy loop
            # would take the CPU the server shares); what fell due meanwhile goes together.
            await asyncio.sleep(max(PACE_TICK_S, next_due - self.clock()))
        return cpu0 if cpu0 is not None else _cpu()


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def load(address: tuple[str, int], request: bytes, ctx: ssl.SSLContext | None, sni: str,
         connections: int, duration: float, warmup: float,
         rate: float | None) -> dict[str, object]:
    runner = _Load(address, request, ctx, sni, connections, duration, warmup, rate)
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return asyncio.run(runner.run())
    return uvloop.run(runner.run())


def load_paced_by(pacer: str, address: tuple[str, int], request: bytes, connections: int,
                  duration: float, warmup: float, rate: float) -> dict[str, object]:
    """The paced ``load`` measured by the C pacer (``l7_pace.c``, compiled at ``pacer``)."""
    with tempfile.TemporaryDirectory(prefix="l7-pace-") as tmp:
        request_file, expect_file = Path(tmp) / "request", Path(tmp) / "expect"
        request_file.write_bytes(request)
        expect_file.write_bytes(EXPECTED)
        argv = [pacer, "--rate", repr(rate), "--connections", str(connections),
                "--duration", repr(duration), "--warmup", repr(warmup),
                "--request", str(request_file), "--expect", str(expect_file),
                address[0], str(address[1])]
        try:  # its messages go to this process's stderr
            done = subprocess.run(argv, stdout=subprocess.PIPE, check=False)
        except OSError as exc:
            raise SystemExit(f"l7_client: cannot run the pacer {pacer}: {exc}") from exc
    if done.returncode != 0:
        raise SystemExit(f"l7_client: the pacer {pacer} failed (exit {done.returncode})")
    result: dict[str, object] = json.loads(done.stdout)
    result["pacer"] = "c"
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("seq", help="one request at a time, each timed")
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--warmup", type=int, default=50)
    s.add_argument("--new-conn", action="store_true", help="a new connection per request")
    ld = sub.add_parser("load", help="many keep-alive connections at once")
    ld.add_argument("--connections", type=int, default=32)
    ld.add_argument("--duration", type=float, default=2.0, help="measured seconds")
    ld.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds first")
    ld.add_argument("--rate", type=float, help="requests started per second (open loop)")
    ld.add_argument("--pacer", metavar="PATH",
                    help="with --rate: measure with this compiled l7_pace.c (plain HTTP)")
    for p in (s, ld):
        p.add_argument("target", help="HOST:PORT (a name is resolved once, first)")
        p.add_argument("--host", help="the Host header (default: the target)")
        p.add_argument("--tls", action="store_true", help="HTTPS")
        p.add_argument("--sni", help="the server name to send (default: the target's host)")
        p.add_argument("--cafile", help="verify the server against this CA bundle (PEM)")
    args = ap.parse_args(argv)
    if args.mode == "load" and args.pacer is not None and (args.rate is None or args.tls):
        ld.error("--pacer needs --rate and plain HTTP (no --tls)")
    host, port = _endpoint(args.target)
    address = (resolve(host), port)
    request = request_bytes(args.host or args.target)
    ctx = tls_context(args.cafile) if args.tls else None
    sni = args.sni or host
    if args.mode == "seq":
        result = seq(address, request, args.count, args.warmup, args.new_conn, ctx, sni)
    elif args.pacer is not None:
        result = load_paced_by(args.pacer, address, request, args.connections,
                               args.duration, args.warmup, args.rate)
    else:
        result = load(address, request, ctx, sni, args.connections, args.duration,
                      args.warmup, args.rate)
        if args.rate is not None:
            result["pacer"] = "asyncio"
    result["address"] = address[0]
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
