"""The data-plane benchmark's agent side: open new TCP flows and time them.

Runs in a lab agent's namespace (``tools/bench/dataplane.py`` starts it) against the
accept-and-close server of ``dataplane_server.py`` (its TLS server for ``tls``), and
prints one JSON object.

* ``latency``: sequential blocking ``connect()``; each connect timed with
  ``perf_counter_ns`` (socket creation and close are outside the timing), after a few
  untimed warm-up connects. Every socket is closed with SO_LINGER 0 (a reset from the
  client, so no TIME_WAIT piles up, and conntrack lets the next flow on the same 4-tuple
  start afresh). Prints the per-connect latencies in microseconds.
* ``flood``: non-blocking connects on one epoll loop, either closed-loop with ``--inflight``
  connects always outstanding (saturation: how many new flows per second get through) or
  open-loop at ``--rate`` per second (paced: connects are started on schedule whether or not
  earlier ones completed). Completions in the measured window (after ``--warmup`` seconds)
  are counted; in paced mode each connect's latency is kept too, so a connect that needed a
  SYN retransmission (a drop somewhere on the path) shows as a slow one.
* ``resolve``: the IPv4 addresses of a name, by ``getaddrinfo`` (an A query to the resolver
  of the namespace's ``resolv.conf``: under ``ip netns exec``, the lab resolver), so the
  gateway sees the agent resolve the name before it connects.
* ``tls``: sequential TLS connections, each with the given SNI, timed from the start of
  ``connect()`` to the first application byte received (the TCP handshake, the TLS
  handshake, and the server's one byte); the SSL object is made before and the socket
  closed after the timing. Warm-up, SO_LINGER 0 and the per-connect latencies as for
  ``latency``. The server certificate is verified against ``--cafile`` when given (name
  included), otherwise not at all. A flow whose bytes are never acknowledged (dropped on
  the way) is given up after ``STALL_MS``.

Standard library only, so it starts fast.
"""

from __future__ import annotations

import argparse
import errno
import json
import resource
import select
import socket
import ssl
import struct
import sys
import time

LINGER_0 = struct.pack("ii", 1, 0)
# Give up on a connect after two SYN retransmissions (about 7 s) instead of two minutes.
SYN_RETRIES = 2
# A connect slower than this needed a retransmitted SYN (the first retransmission is 1 s).
SLOW_S = 0.9
# A TLS flow whose data stays unacknowledged this long is aborted (TCP_USER_TIMEOUT).
STALL_MS = 5000


def _target(text: str) -> tuple[int, tuple[str, int]]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def _socket(family: int, blocking: bool) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, SYN_RETRIES)
    if not blocking:
        s.setblocking(False)
    return s


def latency(target: str, count: int, warmup: int) -> dict[str, object]:
    family, address = _target(target)
    clock = time.perf_counter_ns
    samples: list[float] = []
    errors: dict[str, int] = {}
    for i in range(warmup + count):
        s = _socket(family, blocking=True)
        t0 = clock()
        try:
            s.connect(address)
        except ConnectionResetError:
            pass  # established, then reset by the server before connect() returned
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, str(exc))
            errors[name] = errors.get(name, 0) + 1
            s.close()
            continue
        t1 = clock()
        s.close()
        if i >= warmup:
            samples.append((t1 - t0) / 1000)
    return {"mode": "latency", "samples_us": [round(x, 2) for x in samples], "errors": errors}


def resolve(name: str) -> dict[str, object]:
    infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in infos})
    return {"mode": "resolve", "name": name, "addresses": addresses}


def tls(target: str, sni: str, count: int, warmup: int, cafile: str | None) -> dict[str, object]:
    family, address = _target(target)
    if cafile is not None:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    wrap = ctx.wrap_socket
    clock = time.perf_counter_ns
    samples: list[float] = []
    errors: dict[str, int] = {}
    versions: dict[str, int] = {}
    attempts = 0
    for i in range(warmup + count):
        raw = _socket(family, blocking=True)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, STALL_MS)
        s = wrap(raw, server_hostname=sni)  # not connected yet: connect() does the handshake
        attempts += 1
        t0 = clock()
        try:
            s.connect(address)
            first = s.recv(1)
        except OSError as exc:  # ssl.SSLError too
            if isinstance(exc, ssl.SSLError):
                name = f"ssl:{exc.reason or exc}"
            else:
                name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            errors[name] = errors.get(name, 0) + 1
            s.close()
            continue
        t1 = clock()
        version = s.version() or "?"
        s.close()
        if not first:
            errors["eof"] = errors.get("eof", 0) + 1
            continue
        if i >= warmup:
            samples.append((t1 - t0) / 1000)
            versions[version] = versions.get(version, 0) + 1
    return {"mode": "tls", "sni": sni, "attempts": attempts,
            "samples_us": [round(x, 2) for x in samples], "errors": errors,
            "versions": versions}


def flood(target: str, duration: float, warmup: float, inflight: int | None,
          rate: float | None, cap: int) -> dict[str, object]:
    family, address = _target(target)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, cap + 256)), hard))
    clock = time.monotonic
    ep = select.epoll()
    register = ep.register
    poll = ep.poll
    pending: dict[int, tuple[socket.socket, float]] = {}
    out_mask = select.EPOLLOUT
    started = completed = measured = failed = 0
    errors: dict[str, int] = {}
    latencies: list[float] = []
    t_begin = clock()
    t_measure = t_begin + warmup
    t_end = t_measure + duration
    next_due = t_begin
    interval = 1.0 / rate if rate else 0.0
    paced = rate is not None
    behind_max = 0.0

    def start(now: float) -> None:
        nonlocal started
        s = _socket(family, blocking=False)
        code = s.connect_ex(address)
        if code not in (errno.EINPROGRESS, 0):
            name = errno.errorcode.get(code, str(code))
            errors[name] = errors.get(name, 0) + 1
            s.close()
            return
        fd = s.fileno()
        pending[fd] = (s, now)
        register(fd, out_mask)
        started += 1

    while True:
        now = clock()
        if now >= t_end:
            break
        if paced:
            if next_due <= now:
                behind_max = max(behind_max, now - next_due)
            while next_due <= now and len(pending) < cap:
                start(now)
                next_due += interval
            timeout = max(0.0, min(next_due - now, t_end - now))
        else:
            assert inflight is not None
            while len(pending) < inflight:
                start(now)
            timeout = t_end - now
        for fd, _ in poll(timeout):
            s, t0 = pending.pop(fd)
            code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            s.close()  # also removes it from the epoll set
            done = clock()
            # ECONNRESET: established, then reset by the server before this loop looked
            # (a server that closes with a reset): the handshake completed.
            if code and code != errno.ECONNRESET:
                failed += 1
                name = errno.errorcode.get(code, str(code))
                errors[name] = errors.get(name, 0) + 1
                continue
            completed += 1
            if done >= t_measure:
                measured += 1
                if paced:
                    latencies.append(done - t0)
    now = clock()
    stalled = sum(1 for _, t0 in pending.values() if now - t0 >= SLOW_S)
    for s, _ in pending.values():
        s.close()
    ep.close()
    result: dict[str, object] = {
        "mode": "paced" if paced else "saturate",
        "duration_s": duration,
        "started": started,
        "completed": completed,
        "failed": failed,
        "errors": errors,
        "flows_per_s": measured / duration,
        "outstanding_at_end": len(pending),
        "stalled_at_end": stalled,
    }
    if paced:
        ordered = sorted(latencies)

        def pct(q: float) -> float:
            if not ordered:
                return float("nan")
            return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1e6

        result.update({
            "rate": rate,
            "offered_per_s": started / (warmup + duration),
            "behind_max_ms": behind_max * 1000,
            "p50_us": pct(50),
            "p99_us": pct(99),
            "max_us": pct(100),
            "slow": sum(1 for x in ordered if x >= SLOW_S),
        })
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="mode", required=True)
    lat = sub.add_parser("latency", help="sequential connects, each timed")
    lat.add_argument("target", help="ADDRESS:PORT")
    lat.add_argument("--count", type=int, default=3000)
    lat.add_argument("--warmup", type=int, default=200)
    fl = sub.add_parser("flood", help="concurrent non-blocking connects")
    fl.add_argument("target", help="ADDRESS:PORT")
    fl.add_argument("--duration", type=float, default=3.0, help="measured seconds")
    fl.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds first")
    how = fl.add_mutually_exclusive_group(required=True)
    how.add_argument("--inflight", type=int, help="connects kept outstanding (saturation)")
    how.add_argument("--rate", type=float, help="connects started per second (paced)")
    fl.add_argument("--cap", type=int, default=8192, help="most connects outstanding at once")
    res = sub.add_parser("resolve", help="a name's IPv4 addresses, by the system resolver")
    res.add_argument("name")
    tl = sub.add_parser("tls", help="sequential TLS connections, each timed to the first byte")
    tl.add_argument("target", help="ADDRESS:PORT")
    tl.add_argument("--sni", required=True, help="the server name to send")
    tl.add_argument("--count", type=int, default=1000)
    tl.add_argument("--warmup", type=int, default=100)
    tl.add_argument("--cafile", help="verify the server against this CA (PEM)")
    args = ap.parse_args(argv)
    if args.mode == "latency":
        result = latency(args.target, args.count, args.warmup)
    elif args.mode == "resolve":
        result = resolve(args.name)
    elif args.mode == "tls":
        result = tls(args.target, args.sni, args.count, args.warmup, args.cafile)
    else:
        result = flood(args.target, args.duration, args.warmup, args.inflight, args.rate,
                       args.cap)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
