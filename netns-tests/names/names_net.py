"""Clients and listeners for the name tests, in the lab's agent namespaces: DNS questions
to the lab resolver over UDP or TCP, TLS clients that choose their own server name (or
none), a ClientHello sent one byte per segment, raw IP fragments, and a UDP listener that
keeps what it received.

Every client here works from inside an agent namespace and reports how the attempt ended
(``Outcome``) instead of raising, so a test can assert *how* a flow was refused: a reset
at connect (decided on the SYN), a reset after the ClientHello (decided by it), a
timeout, or data received.
"""

from __future__ import annotations

import contextlib
import errno
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))
sys.path.insert(0, str(HERE.parent / "verdict"))

from lab_dns_probe import TYPES, parse  # noqa: E402
from lab_dns_probe import query as dns_probe_query  # noqa: E402
from nsutil import Namespace  # noqa: E402
from scapy.layers.inet import IP, UDP, fragment  # noqa: E402
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6  # noqa: E402
from verdict_net import bind_unused_port  # noqa: E402

RESOLVER = "10.78.0.53"
DNS_PORT = 53

# --- DNS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsReply:
    rcode: int
    answers: list[object]  # addresses (A, AAAA) or lists of strings (TXT)
    truncated: bool

    @property
    def txt_bytes(self) -> int:
        """The TXT payload as the wire counts it: each string and its length byte."""
        return sum(len(s) + 1 for strings in self.answers if isinstance(strings, list)
                   for s in strings)


def resolve(ns: Namespace, name: str, kind: str = "A", *, tcp: bool = False,
            server: str = RESOLVER) -> DnsReply:
    """Ask the lab resolver for ``name`` from inside ``ns``, as the agent would."""
    with ns.entered():
        reply = dns_probe_query(server, name, TYPES[kind], tcp)
    parsed = parse(reply)
    answers = [value for value, _ttl in parsed["answers"]]  # type: ignore[attr-defined]
    return DnsReply(int(parsed["rcode"]), answers,  # type: ignore[call-overload]
                    bool(parsed.get("truncated")))


def resolved(ns: Namespace, name: str, family: int) -> str:
    """``name``'s address of ``family`` (4 or 6), resolved from ``ns``; fails without one."""
    reply = resolve(ns, name, "A" if family == 4 else "AAAA")
    assert reply.rcode == 0, f"{name} did not resolve: {reply}"
    assert reply.answers, f"{name} did not resolve: {reply}"
    return str(reply.answers[0])


# --- how an attempt ended --------------------------------------------------------------


@dataclass
class Outcome:
    """One TCP or TLS attempt from an agent: where it stopped and how, and what came back."""

    sport: int
    stage: str = "connect"  # connect → handshake → request → done
    error: str | None = None  # "refused", "reset", "timeout", "closed", an errno or ssl name
    status: int | None = None
    body: bytes = b""
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return self.stage == "done" and self.error is None

    def __str__(self) -> str:
        return (f"stage={self.stage} error={self.error} status={self.status}"
                f" elapsed={self.elapsed:.3f}s body={self.body[:120]!r}")


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, ssl.SSLEOFError):
        return "closed"
    if isinstance(exc, ssl.SSLError):
        return f"ssl:{exc.reason or exc}"
    if isinstance(exc, OSError):
        if exc.errno == errno.ECONNRESET:
            return "reset"
        return errno.errorcode.get(exc.errno or 0, str(exc))
    return repr(exc)


_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3}) ")


def _read_http(sock: socket.socket | ssl.SSLSocket, outcome: Outcome) -> None:
    """Read a ``Connection: close`` answer to its end into ``outcome``."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = _STATUS.match(head)
    outcome.status = int(match.group(1)) if match else None
    outcome.body = body if match else data


def request(host: str, path: str = "/") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            "User-Agent: clawgress-names-test\r\n\r\n").encode()


def client_context(ca: Path, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A TLS client context that trusts the lab CA, HTTP/1.1 only."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = check_hostname
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@contextlib.contextmanager
def agent_tcp(ns: Namespace, src: str, timeout: float) -> Iterator[tuple[socket.socket, int]]:
    """A TCP socket in ``ns`` bound to ``src`` and a port no other attempt of the run used
    (so audit events can be matched to it by ``src_port``); closed afterwards."""
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    with ns.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sport = bind_unused_port(sock, src)
        yield sock, sport


def tls_get(ns: Namespace, ca: Path, src: str, dst: str, port: int = 443, *,
            sni: str | None, host: str | None = None, path: str = "/",
            timeout: float = 3.0) -> Outcome:
    """An HTTPS GET from ``src`` in ``ns`` to ``dst``:``port`` with server name ``sni``
    (``None``: no SNI, and no host name check; the chain is still verified)."""
    ctx = client_context(ca, check_hostname=sni is not None)
    with agent_tcp(ns, src, timeout) as (sock, sport):
        outcome = Outcome(sport)
        try:
            sock.connect((dst, port))
            outcome.stage = "handshake"
            with ctx.wrap_socket(sock, server_hostname=sni) as tls:
                outcome.stage = "request"
                tls.sendall(request(host or sni or dst, path))
                _read_http(tls, outcome)
                outcome.stage = "done"
        except (OSError, ssl.SSLError) as exc:
            outcome.error = _error_name(exc)
        outcome.ended = time.monotonic()
        return outcome


def plain_exchange(ns: Namespace, src: str, dst: str, port: int, payload: bytes, *,
                   timeout: float = 3.0) -> Outcome:
    """Connect, send ``payload``, read until the server closes (or resets, or goes quiet
    for ``timeout``): ``body`` is every byte that came back, ``error`` how it ended."""
    with agent_tcp(ns, src, timeout) as (sock, sport):
        outcome = Outcome(sport)
        try:
            sock.connect((dst, port))
            outcome.stage = "request"
            sock.sendall(payload)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    outcome.error = "closed"
                    break
                outcome.body += chunk
        except OSError as exc:
            outcome.error = _error_name(exc)
        outcome.ended = time.monotonic()
        return outcome


@dataclass
class Segmented(Outcome):
    """A TLS attempt whose ClientHello went out one byte per segment."""

    hello: bytes = b""
    sent: int = 0  # ClientHello bytes that send() took before the attempt failed
    last_byte_at: float = 0.0  # when the last ClientHello byte was handed to the kernel


def tls_get_segmented(ns: Namespace, ca: Path, src: str, dst: str, port: int = 443, *,
                      sni: str, pause: float = 0.002, timeout: float = 3.0) -> Segmented:
    """An HTTPS GET whose ClientHello is written one byte per ``send()`` (TCP_NODELAY, a
    pause between bytes, so each byte is a segment of its own); the rest of the handshake
    and the request then go through the same TLS object (``wrap_bio``) on the same
    socket."""
    ctx = client_context(ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with agent_tcp(ns, src, timeout) as (sock, sport):
        outcome = Segmented(sport)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def pump() -> None:
            """Send what TLS wrote; feed it what the server sent (raises on EOF)."""
            pending = outgoing.read()
            if pending:
                sock.sendall(pending)

        def feed() -> None:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError(errno.ECONNRESET, "closed by the server")
            incoming.write(data)

        try:
            sock.connect((dst, port))
            outcome.stage = "handshake"
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.do_handshake()
            outcome.hello = outgoing.read()
            for i in range(len(outcome.hello)):
                sock.send(outcome.hello[i:i + 1])
                outcome.sent = i + 1
                time.sleep(pause)
            outcome.last_byte_at = time.monotonic()
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pump()
                    feed()
            pump()
            outcome.stage = "request"
            tls.write(request(sni))
            pump()
            data = b""
            while True:
                try:
                    chunk = tls.read(65536)
                except ssl.SSLWantReadError:
                    try:
                        feed()
                    except ConnectionResetError:
                        if data:
                            break
                        raise
                    continue
                except ssl.SSLZeroReturnError:
                    break
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            match = _STATUS.match(head)
            outcome.status = int(match.group(1)) if match else None
            outcome.body = body
            outcome.stage = "done"
        except (OSError, ssl.SSLError) as exc:
            outcome.error = _error_name(exc)
        outcome.ended = time.monotonic()
        return outcome


# --- UDP: a listener that keeps what it got, raw fragments ------------------------------


class DatagramListener:
    """A UDP listener in a namespace that keeps every datagram it receives, whole."""

    def __init__(self, ns: Namespace, address: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = ns.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.settimeout(0.05)
        self.received: list[tuple[int, bytes]] = []  # (peer port, datagram)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                self.received.append((peer[1], data))

    def datagrams(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextlib.contextmanager
def datagram_listener(ns: Namespace, address: str, port: int) -> Iterator[DatagramListener]:
    listener = DatagramListener(ns, address, port)
    try:
        yield listener
    finally:
        listener.close()


def udp_fragments(src: str, dst: str, sport: int, dport: int, payload: bytes,
                  count: int = 3) -> list[bytes]:
    """One UDP datagram from ``src`` to ``dst`` as ``count`` IP fragments (IPv4 fragment
    offsets or an IPv6 fragment header), whole IP packets as bytes, in order."""
    # Fragment payloads are multiples of 8 bytes: size them so there are exactly `count`.
    per = -(-(len(payload) + 8) // count)
    size = -(-per // 8) * 8
    frags: list[Any]
    if ":" in dst:
        packet6 = IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(id=0x4242) / UDP(
            sport=sport, dport=dport) / payload
        # fragment6 counts the IPv6 header (40) and the fragment header (8) in fragSize.
        frags = fragment6(packet6, fragSize=size + 48)  # type: ignore[no-untyped-call]
    else:
        packet4 = IP(src=src, dst=dst, id=0x4242) / UDP(sport=sport, dport=dport) / payload
        frags = fragment(packet4, fragsize=size)  # type: ignore[no-untyped-call]
    out = [bytes(f) for f in frags]
    assert len(out) == count, f"{len(out)} fragments, not {count}"
    return out


def send_raw(ns: Namespace, packets: list[bytes], dst: str, pause: float = 0.01) -> None:
    """Send whole IP packets (headers included) from inside ``ns``."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with ns.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        for packet in packets:
            raw.sendto(packet, (dst, 0))
            time.sleep(pause)
