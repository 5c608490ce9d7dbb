"""Byte streams the L7 engine reads and writes: a TCP connection, and TLS the engine ends.

``Plain`` is a TCP connection as an asyncio protocol. ``TlsServer`` ends a client's TLS on top of a
``Plain`` with an ``ssl.SSLObject`` over memory buffers — the way asyncio's own TLS
works — so that the bytes the engine already read to decide (the ClientHello) are fed to
the handshake, not lost. ``splice`` copies two streams into each other until both ends
are done. Every wait is bounded by the caller's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any, Protocol, cast

READ_SIZE = 65536
# The handshake's own bound is the caller's (l7.header_timeout); this bounds one write.
HANDSHAKE_DRAIN_S = 30.0


class Stream(Protocol):
    async def recv(self, timeout_s: float | None = None) -> bytes: ...
    def send(self, data: bytes) -> None: ...
    def sent(self) -> bool: ...
    async def drain(self, timeout_s: float) -> None: ...
    def send_eof(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class Plain(asyncio.Protocol):
    """A TCP connection (or TLS that asyncio ends, toward an upstream), as an asyncio
    protocol: what arrives is kept (up to ``limit`` bytes, then reading pauses) until
    ``recv`` takes it, so a read that finds data waiting returns without a trip through the
    event loop.

    What is sent is gathered and written in one go at the next ``drain``, ``recv`` or
    ``flush`` (a response head and its first bytes are one write, not two): waiting for
    the peer always sends what it is to answer first.

    Read timeouts share one timer per connection, moved only when it would fire too late:
    a connection that keeps reading before its deadline does not set a timer per read."""

    def __init__(self, limit: int = READ_SIZE,
                 on_connected: Callable[[Plain], None] | None = None) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self._on_connected = on_connected
        self._received: list[bytes] = []
        self._size = 0
        self._eof = False
        self._lost = False
        self._error: BaseException | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._deadline = 0.0  # when the waiting read times out
        self._timer: asyncio.TimerHandle | None = None
        self._pending: list[bytes] = []
        self._over_tls = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        self._over_tls = transport.get_extra_info("sslcontext") is not None
        if self._on_connected is not None:
            self._on_connected(self)

    def data_received(self, data: bytes) -> None:
        self._received.append(data)
        self._size += len(data)
        if self._size >= self.limit and not self._reading_paused:
            self._reading_paused = True
            with contextlib.suppress(RuntimeError, AttributeError):
                self._transport().pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # Keep the connection open for writing (a client that shut down its side still
        # gets its answer); TLS cannot be half-closed.
        return not self._over_tls

    def connection_lost(self, exc: BaseException | None) -> None:
        self._eof = self._lost = True
        if exc is not None:
            self._error = exc
        self._wake()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        drained = self._drained
        if drained is not None and not drained.done():
            drained.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained = self._drained
        if drained is not None and not drained.done():
            drained.set_result(None)

    # --- reading -----------------------------------------------------------------------

    def _transport(self) -> asyncio.Transport:
        if self.transport is None:
            raise ConnectionError("not connected")
        return self.transport

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        # Kept from connection_made: asyncio.get_running_loop() costs a getpid() call.
        return self._loop if self._loop is not None else asyncio.get_running_loop()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _expire(self) -> None:
        """The read timer: time the waiting read out, or move on to its deadline."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        loop = self._running_loop()
        if loop.time() >= self._deadline:
            waiter.set_exception(TimeoutError())
        elif self._deadline != math.inf:  # an unbounded read needs no timer
            self._timer = loop.call_at(self._deadline, self._expire)

    async def recv(self, timeout_s: float | None = None) -> bytes:
        """What has arrived (waiting for some if nothing has); ``b""`` at the end of the
        stream; ``TimeoutError`` when nothing arrives within ``timeout_s``."""
        self.flush()
        if not self._received:
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            loop = self._running_loop()
            waiter = loop.create_future()
            self._waiter = waiter
            if timeout_s is None:
                self._deadline = math.inf
            else:
                self._deadline = deadline = loop.time() + timeout_s
                timer = self._timer
                if timer is None or timer.when() > deadline:
                    if timer is not None:
                        timer.cancel()
                    self._timer = loop.call_at(deadline, self._expire)
            try:
                await waiter
            finally:
                self._waiter = None
            if not self._received:
                # Read through a call: mypy keeps ``self._error`` narrowed to None from the
                # check above across the await, and compiled code would enforce that.
                error = self._failure()
                if error is not None:
                    raise error
                return b""
        received = self._received
        data = received[0] if len(received) == 1 else b"".join(received)
        received.clear()
        self._size = 0
        if self._reading_paused and not self._lost:
            self._reading_paused = False
            with contextlib.suppress(RuntimeError, AttributeError):
                self._transport().resume_reading()
        return data

    def _failure(self) -> BaseException | None:
        return self._error

    # --- writing -----------------------------------------------------------------------

    def flush(self) -> None:
        """Hand what was sent to the transport (it writes what it can at once). On a
        connection that is gone it is dropped: the next ``drain`` says so."""
        pending = self._pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            transport = self._transport()
            if not self._lost and not transport.is_closing():
                transport.write(data)

    def send(self, data: bytes) -> None:
        self._pending.append(data)

    def sent(self) -> bool:
        """Hand what was sent to the transport; whether that is all there is to it (no
        ``drain`` needed: the peer keeps up and the connection is there)."""
        self.flush()
        return not self._writing_paused and not self._lost

    async def drain(self, timeout_s: float) -> None:
        """Write what was sent; wait (at most ``timeout_s``: ``TimeoutError``) only while
        the peer is not reading fast enough."""
        if self.sent():
            return  # all handed over: nothing to wait for (the common case)
        if self._lost:
            raise ConnectionResetError("connection lost")
        loop = asyncio.get_running_loop()
        drained = self._drained = loop.create_future()
        try:
            async with asyncio.timeout(timeout_s):
                await drained
        finally:
            self._drained = None

    def send_eof(self) -> None:
        self.flush()
        transport = self._transport()
        if transport.can_write_eof() and not transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, ConnectionError):
            self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close with a reset (SO_LINGER 0): what a refused connection gets."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def get_extra_info(self, name: str) -> Any:
        return self._transport().get_extra_info(name)


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

    async def _fill(self, deadline: float | None = None) -> bool:
        self._flush()
        timeout_s = None
        if deadline is not None:
            timeout_s = deadline - asyncio.get_running_loop().time()
            if timeout_s <= 0:
                raise TimeoutError()
        data = await self.inner.recv(timeout_s)
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

    async def recv(self, timeout_s: float | None = None) -> bytes:
        deadline = None
        if timeout_s is not None:
            deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                return self.tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                if self._eof or not await self._fill(deadline):
                    self._eof = True
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def sent(self) -> bool:
        return self.inner.sent()

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
                    data = await src.recv(idle_s)
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
