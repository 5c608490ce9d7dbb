"""The L7 benchmark's upstream: a small, fast HTTP/1.1 server that answers every POST.

Runs in the lab's upstream namespace (``tools/bench/l7.py`` starts it), one process, one
event loop (uvloop when it can be imported, else asyncio), listening on every ``--listen
ADDRESS:PORT`` in plain HTTP and on every ``--tls-listen ADDRESS:PORT`` in HTTPS (``--tls-cert``
and ``--tls-key``: the lab's upstream certificate; TLS 1.2 or 1.3, no session tickets, so each
new client connection is a full handshake). Prints ``ready`` once every listener is open.
Ends on SIGTERM or SIGINT.

Each request must carry its body with ``Content-Length`` (the benchmark's client always does,
and no proxy measured re-frames such a body); it is answered ``200`` with a small JSON body
that says how many bytes arrived and their CRC-32, so the client can check the whole body
came through every hop untouched: ``{"received":4096,"crc32":123456789}``. Keep-alive unless
the request says ``Connection: close``. Anything else (no length, a chunked body, a head over
``MAX_HEAD`` bytes) gets ``400`` and the connection is closed: the client counts it as an
error, never as a fast answer. Standard library apart from the optional uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys
import zlib

MAX_HEAD = 32 * 1024
BACKLOG = 4096
BAD = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
       b"Connection: close\r\n\r\nbad request")


def reply(body: bytes) -> bytes:
    """The whole response to a request whose body was ``body``."""
    payload = b'{"received":%d,"crc32":%d}' % (len(body), zlib.crc32(body))
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(payload)) + payload


def parse_head(head: bytes) -> tuple[int, bool] | None:
    """The body length and whether the client asked to close, from a request head (request
    line and headers, without the blank line); ``None`` if it cannot be served."""
    length = None
    close = False
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
        elif name == b"transfer-encoding":
            return None
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if length is None or length < 0:
        return None
    return length, close


class Http(asyncio.Protocol):
    """One client connection: requests in, answers out, in order."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.need: tuple[int, int, bool] | None = None  # head end, body length, close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        transport = self.transport
        assert transport is not None
        while True:
            if self.need is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        self._bad()
                    return
                parsed = parse_head(bytes(buf[:end]))
                if parsed is None:
                    self._bad()
                    return
                self.need = (end + 4, parsed[0], parsed[1])
            start, length, close = self.need
            if len(buf) < start + length:
                return
            body = bytes(buf[start:start + length])
            del buf[:start + length]
            self.need = None
            transport.write(reply(body))
            if close:
                transport.close()
                return

    def _bad(self) -> None:
        assert self.transport is not None
        self.transport.write(BAD)
        self.transport.close()
        self.buf.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def serve(plain: list[str], tls: list[str], ctx: ssl.SSLContext | None) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for where, context in [(p, None) for p in plain] + [(t, ctx) for t in tls]:
        host, port = _endpoint(where)
        servers.append(await loop.create_server(Http, host, port, backlog=BACKLOG,
                                                reuse_address=True, ssl=context))
    print("ready", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", action="append", default=[], metavar="ADDRESS:PORT",
                    help="serve plain HTTP here (repeatable)")
    ap.add_argument("--tls-listen", action="append", default=[], metavar="ADDRESS:PORT",
                    help="serve HTTPS here (repeatable; needs --tls-cert and --tls-key)")
    ap.add_argument("--tls-cert", help="PEM certificate (chain)")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args(argv)
    ctx = None
    if args.tls_listen:
        if args.tls_cert is None or args.tls_key is None:
            ap.error("--tls-listen needs --tls-cert and --tls-key")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ctx.num_tickets = 0  # no TLS 1.3 session tickets: every handshake is a full one
    if not args.listen and not args.tls_listen:
        ap.error("nothing to listen on")
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.listen, args.tls_listen, ctx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
