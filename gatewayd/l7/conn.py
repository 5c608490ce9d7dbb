"""Byte streams the L7 engine reads and writes: a TCP connection, and TLS the engine ends.

``Plain`` wraps an asyncio stream pair. ``TlsServer`` ends a client's TLS on top of a
``Plain`` with an ``ssl.SSLObject`` over memory buffers — the way asyncio's own TLS
works — so that the bytes the engine already read to decide (the ClientHello) are fed to
the handshake, not lost. ``splice`` copies two streams into each other until both ends
are done. Every wait is bounded by the caller's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from typing import Protocol

READ_SIZE = 65536
# The handshake's own bound is the caller's (l7.header_timeout); this bounds one write.
HANDSHAKE_DRAIN_S = 30.0


class Stream(Protocol):
    async def recv(self) -> bytes: ...
    def send(self, data: bytes) -> None: ...
    async def drain(self, timeout_s: float) -> None: ...
    def send_eof(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class Plain:
    """A TCP connection (or TLS that asyncio ends, toward an upstream).

    What is sent is gathered and written in one go at the next ``drain``, ``recv`` or
    ``flush`` (a response head and its first bytes are one write, not two): waiting for
    the peer always sends what it is to answer first."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._pending: list[bytes] = []

    def flush(self) -> None:
        """Hand what was sent to the transport (it writes what it can at once)."""
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self.writer.write(data)

    async def recv(self) -> bytes:
        self.flush()
        return await self.reader.read(READ_SIZE)

    def send(self, data: bytes) -> None:
        self._pending.append(data)

    async def drain(self, timeout_s: float) -> None:
        """Write what was sent; wait (at most ``timeout_s``: ``TimeoutError``) only while
        the peer is not reading fast enough."""
        self.flush()
        if self.writer.transport.get_write_buffer_size() == 0 and not self.writer.is_closing():
            return  # all written: nothing to wait for (the common case)
        async with asyncio.timeout(timeout_s):
            await self.writer.drain()

    def send_eof(self) -> None:
        self.flush()
        if self.writer.can_write_eof() and not self.writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self.writer.write_eof()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.flush()
        self.writer.close()

    def abort(self) -> None:
        """Close with a reset (SO_LINGER 0): what a refused connection gets."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


class TlsServer:
    """The client's TLS, ended by the engine with a leaf certificate of the gateway CA."""

    def __init__(self, inner: Plain, context: ssl.SSLContext, already: bytes) -> None:
        self.inner = inner
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out, server_side=True)
        self._in.write(already)
        self._eof = False

    def _flush(self) -> None:
        pending = self._out.read()
        if pending:
            self.inner.send(pending)

    async def _fill(self) -> bool:
        self._flush()
        data = await self.inner.recv()
        if not data:
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    async def handshake(self) -> None:
        """The server side of the handshake; ``ssl.SSLError`` if the client refuses it (a
        pinned client, a client that does not trust the gateway CA), ``ConnectionError``
        if it goes away."""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not await self._fill():
                    raise ConnectionError("the client closed during the TLS handshake") \
                        from None
        self._flush()
        await self.inner.drain(HANDSHAKE_DRAIN_S)

    async def recv(self) -> bytes:
        while True:
            try:
                return self.tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                if self._eof or not await self._fill():
                    self._eof = True
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    async def drain(self, timeout_s: float) -> None:
        await self.inner.drain(timeout_s)

    def send_eof(self) -> None:
        with contextlib.suppress(ssl.SSLError):
            self.tls.unwrap()
        self._flush()
        self.inner.send_eof()

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


async def splice(a: Stream, b: Stream, idle_s: float) -> tuple[int, int]:
    """Copy ``a`` into ``b`` and ``b`` into ``a`` until both directions end, or neither
    has carried a byte for ``idle_s``; returns the bytes copied each way (a→b, b→a)."""
    loop = asyncio.get_running_loop()
    counts = [0, 0]
    last = [loop.time()]

    async def pump(src: Stream, dst: Stream, i: int) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(idle_s):
                        data = await src.recv()
                except TimeoutError:
                    if loop.time() - last[0] < idle_s:
                        continue  # the other direction is busy: a one-way stream
                    raise
                if not data:
                    dst.send_eof()
                    return
                last[0] = loop.time()
                counts[i] += len(data)
                dst.send(data)
                await dst.drain(idle_s)
        except (OSError, TimeoutError, ssl.SSLError):
            a.abort()
            b.abort()

    await asyncio.gather(pump(a, b, 0), pump(b, a, 1))
    return counts[0], counts[1]
