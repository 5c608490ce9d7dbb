"""The lab upstream: HTTP on port 80 and HTTPS on 443, on every address of its namespace.

Run as ``python -m gatewayd.lab.upstream --cert C --key K --service NAME=V4,V6 ...`` (the lab
starts it in ``<prefix>-up``). One asyncio process; what to answer is decided by
``gatewayd.lab.upstream_http``, this module only moves bytes. Stops on SIGTERM or SIGINT.

More listeners for bypass tests: ``--alt-http-port`` and ``--alt-https-port`` (repeatable)
answer like 80 and 443 on other ports (the lab uses 8080, and 853 and 8443), and
``--udp-echo-port`` (repeatable) sends every datagram back to its sender, on each service
address (the lab uses 443 and 853: QUIC and DNS-over-QUIC stand-ins).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal
import ssl
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from gatewayd.lab.upstream_anthropic import message
from gatewayd.lab.upstream_http import (
    BYTES_BLOCK,
    CHUNKED,
    LAST_CHUNK,
    MAX_BODY_BYTES,
    Answer,
    AnthropicMessages,
    Bytes,
    ChatCompletions,
    EchoLength,
    EventStream,
    Fixed,
    McpRpc,
    RequestError,
    Served,
    Stream,
    Upgrade,
    bytes_head,
    chat_completion,
    echo_reply,
    error_reply,
    event_stream_head,
    fixed_head,
    http_chunk,
    parse_request_head,
    route,
    stream_head,
    stream_ticks,
    tick_chunk,
    upgrade_head,
)
from gatewayd.lab.upstream_mcp import mcp_answer

log = logging.getLogger("gatewayd.lab.upstream")

READ_SIZE = 64 * 1024
WRITE_BLOCKS = 4  # /bytes writes 256 KiB at a time
BACKLOG = 1024


class Upstream:
    """Serves connections; ``names`` maps a service address to its lab name."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self._completions = itertools.count(1)  # numbers the chat completions served

    async def connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, scheme: str
    ) -> None:
        local = writer.get_extra_info("sockname")
        peer = writer.get_extra_info("peername")
        served = Served(scheme, str(local[0]), int(local[1]), str(peer[0]), int(peer[1]))
        try:
            await self._requests(reader, writer, served)
        except RequestError as exc:
            reply = error_reply(exc.status, str(exc))
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.write(fixed_head(reply, keep_alive=False) + reply.body)
                await writer.drain()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await writer.wait_closed()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: Served
    ) -> None:
        buf = b""
        while True:
            parsed = parse_request_head(buf)
            while parsed is None:
                data = await reader.read(READ_SIZE)
                if not data:
                    return
                buf += data  # bounded: parse_request_head refuses a head past its limit
                parsed = parse_request_head(buf)
            head, used = parsed
            buf = buf[used:]
            length = head.content_length
            reply = route(head, served, self.names)
            if isinstance(reply, Upgrade):
                await _echo(reader, writer, reply, buf)
                return
            # The body is read in any case (the next request follows it) and kept only for
            # a chat completion, within its limit.
            wants = (reply.max_body
                     if isinstance(reply, ChatCompletions | AnthropicMessages | McpRpc)
                     else -1)
            body = await _read_body(reader, buf, length, wants)
            if body is None:
                return
            kept, buf, length = body
            answer: Answer
            if isinstance(reply, EchoLength):
                answer = echo_reply(length)
            elif isinstance(reply, ChatCompletions):
                answer = chat_completion(reply, b"".join(kept) if kept is not None else None,
                                         next(self._completions), time.time())
            elif isinstance(reply, McpRpc):
                answer = mcp_answer(b"".join(kept) if kept is not None else None, reply.sse)
            elif isinstance(reply, AnthropicMessages):
                answer = message(reply, b"".join(kept) if kept is not None else None,
                                 next(self._completions))
            else:
                answer = reply
            keep_alive = head.keep_alive
            if isinstance(answer, Fixed):
                writer.write(fixed_head(answer, keep_alive) + answer.body)
            elif isinstance(answer, Bytes):
                await self._bytes(writer, answer.count, keep_alive)
            elif isinstance(answer, Stream):
                await self._stream(writer, answer, keep_alive)
            elif isinstance(answer, EventStream):
                await self._events(writer, answer, keep_alive)
            await writer.drain()
            if not keep_alive:
                return

    async def _bytes(self, writer: asyncio.StreamWriter, count: int, keep_alive: bool) -> None:
        writer.write(bytes_head(count, keep_alive))
        big = BYTES_BLOCK * WRITE_BLOCKS
        while count >= len(big):
            writer.write(big)
            count -= len(big)
            await writer.drain()
        writer.write(big[:count])

    async def _stream(self, writer: asyncio.StreamWriter, stream: Stream, keep_alive: bool) -> None:
        loop = asyncio.get_running_loop()
        writer.write(stream_head(keep_alive))
        start = loop.time()
        for seq in range(stream_ticks(stream.seconds, stream.interval_ms)):
            delay = start + seq * stream.interval_ms / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(tick_chunk(seq, round((loop.time() - start) * 1000)))
            await writer.drain()
        writer.write(LAST_CHUNK)

    async def _events(
        self, writer: asyncio.StreamWriter, events: EventStream, keep_alive: bool
    ) -> None:
        writer.write(event_stream_head(keep_alive))
        for i, event in enumerate(events.events):
            if i and events.interval_ms:
                await asyncio.sleep(events.interval_ms / 1000)
            writer.write(http_chunk(event))
            await writer.drain()
        writer.write(LAST_CHUNK)


async def _read_body(reader: asyncio.StreamReader, buf: bytes, length: int,
                     wants: int) -> tuple[list[bytes] | None, bytes, int] | None:
    """Read a request body (``length`` bytes, or chunked): what of it is kept (when it is
    at most ``wants`` bytes; ``None`` otherwise), what follows it, and its length. ``None``
    if the client goes away."""
    if length == CHUNKED:
        read = await _read_chunked(reader, buf)
        if read is None:
            return None
        chunks, buf = read
        length = sum(len(c) for c in chunks)
        return (chunks if length <= wants else None), buf, length
    keep = length <= wants
    taken = min(len(buf), length)
    kept = [buf[:taken]] if keep else []
    buf, remaining = buf[taken:], length - taken
    while remaining:
        data = await reader.read(min(remaining, READ_SIZE))
        if not data:
            return None
        remaining -= len(data)
        if keep:
            kept.append(data)
    return (kept if keep else None), buf, length


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upgrade: Upgrade,
                buf: bytes) -> None:
    """Switch protocols, then echo every byte until the client closes."""
    writer.write(upgrade_head(upgrade.accept) + buf)
    await writer.drain()
    while data := await reader.read(READ_SIZE):
        writer.write(data)
        await writer.drain()


async def _read_chunked(reader: asyncio.StreamReader,
                        buf: bytes) -> tuple[list[bytes], bytes] | None:
    """A chunked body (its chunks, and what follows it), up to ``MAX_BODY_BYTES``;
    ``None`` if the client goes away or breaks the framing."""
    chunks: list[bytes] = []
    total = 0

    async def need(n: int) -> bool:
        nonlocal buf
        while len(buf) < n:
            data = await reader.read(READ_SIZE)
            if not data:
                return False
            buf += data
        return True

    while True:
        while b"\r\n" not in buf:
            if len(buf) > 1024 or not await need(len(buf) + 1):
                return None
        line, _, buf = buf.partition(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return None
        if size == 0:
            # Trailers (none expected), then the empty line.
            while True:
                while b"\r\n" not in buf:
                    if len(buf) > 8192 or not await need(len(buf) + 1):
                        return None
                trailer, _, buf = buf.partition(b"\r\n")
                if not trailer:
                    return chunks, buf
        total += size
        if size < 0 or total > MAX_BODY_BYTES or not await need(size + 2):
            return None
        chunks.append(buf[:size])
        buf = buf[size + 2:]


def server_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def start_server(
    upstream: Upstream, port: int, tls: ssl.SSLContext | None, host: str | None = None
) -> asyncio.Server:
    """Listen on ``port`` of ``host`` (every address, IPv4 and IPv6, when None): HTTPS with
    ``tls``, HTTP without."""
    scheme = "https" if tls is not None else "http"

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await upstream.connection(r, w, scheme)

    if tls is None:
        return await asyncio.start_server(handle, host=host, port=port, backlog=BACKLOG)
    return await asyncio.start_server(handle, host=host, port=port, ssl=tls, backlog=BACKLOG,
                                      ssl_handshake_timeout=10)


async def start_servers(
    upstream: Upstream,
    tls: ssl.SSLContext,
    http_port: int,
    https_port: int,
    host: str | None = None,
) -> tuple[asyncio.Server, asyncio.Server]:
    """Listen for HTTP and HTTPS on ``host`` (every address, IPv4 and IPv6, when None)."""
    http = await start_server(upstream, http_port, None, host)
    https = await start_server(upstream, https_port, tls, host)
    return http, https


class Echo(asyncio.DatagramProtocol):
    """Sends every datagram back where it came from."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport (not a DatagramTransport subclass on every Python).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier echo (the sender went away): nothing to do.
        pass


async def start_udp_echo(addresses: Iterable[str], port: int) -> list[asyncio.DatagramTransport]:
    """A UDP echo on ``port`` of each of ``addresses``. One socket per address, so each
    answer leaves from the address its datagram went to (a wildcard socket would answer
    from the interface's primary address)."""
    loop = asyncio.get_running_loop()
    transports = []
    try:
        for address in addresses:
            transport, _ = await loop.create_datagram_endpoint(
                Echo, local_addr=(address, port)
            )
            transports.append(transport)
    except BaseException:
        for transport in transports:
            transport.close()
        raise
    return transports


async def serve(
    upstream: Upstream,
    tls: ssl.SSLContext,
    http_port: int,
    https_port: int,
    alt_http_ports: Sequence[int] = (),
    alt_https_ports: Sequence[int] = (),
    udp_echo_ports: Sequence[int] = (),
) -> None:
    """Serve on every address until SIGTERM or SIGINT (UDP echo: on every service address)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The UDP sockets first: once the TCP ports listen (what `lab up` waits for), every
    # echo socket is bound too.
    echoes = [t for port in udp_echo_ports
              for t in await start_udp_echo(sorted(upstream.names), port)]
    servers = list(await start_servers(upstream, tls, http_port, https_port))
    servers += [await start_server(upstream, port, None) for port in alt_http_ports]
    servers += [await start_server(upstream, port, tls) for port in alt_https_ports]
    log.info("serving http on ports %s, https on ports %s, udp echo on ports %s",
             ", ".join(map(str, (http_port, *alt_http_ports))),
             ", ".join(map(str, (https_port, *alt_https_ports))),
             ", ".join(map(str, udp_echo_ports)) or "none")
    await stop.wait()
    for server in servers:
        server.close()
    for echo in echoes:
        echo.close()
    log.info("stopped")


def parse_service(text: str) -> list[tuple[str, str]]:
    """``NAME=ADDR[,ADDR...]`` → ``[(ADDR, NAME), ...]``."""
    name, sep, addresses = text.partition("=")
    if not sep or not name or not addresses:
        raise argparse.ArgumentTypeError(f"expected NAME=ADDR[,ADDR], got {text!r}")
    return [(a, name) for a in addresses.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gatewayd.lab.upstream",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--alt-http-port", type=int, action="append", default=[],
                        metavar="PORT", help="another port answered like --http-port")
    parser.add_argument("--alt-https-port", type=int, action="append", default=[],
                        metavar="PORT", help="another port answered like --https-port")
    parser.add_argument("--udp-echo-port", type=int, action="append", default=[],
                        metavar="PORT", help="a UDP port that echoes datagrams, on every"
                        " service address")
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--service", type=parse_service, action="append", default=[],
                        metavar="NAME=ADDR[,ADDR]", help="a lab name and its addresses")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s upstream: %(message)s")
    names = {addr: name for pairs in args.service for addr, name in pairs}
    try:
        tls = server_context(args.cert, args.key)
    except (OSError, ssl.SSLError) as exc:
        log.error("cannot load %s / %s: %s", args.cert, args.key, exc)
        return 2
    asyncio.run(serve(Upstream(names), tls, args.http_port, args.https_port,
                      args.alt_http_port, args.alt_https_port, args.udp_echo_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
