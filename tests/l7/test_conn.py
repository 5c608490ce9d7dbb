"""``Plain``, the engine's TCP stream, over real loopback sockets, on the standard event
loop and on uvloop (what ``clawgress run`` uses): reads and their timeouts, flow control,
half-closed and broken connections."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop

from gatewayd.l7.conn import Plain

Loops = Callable[[Coroutine[Any, Any, None]], None]


def _standard(main: Coroutine[Any, Any, None]) -> None:
    asyncio.run(main)


def _uvloop(main: Coroutine[Any, Any, None]) -> None:
    uvloop.run(main)


@pytest.fixture(params=[_standard, _uvloop], ids=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Loops:
    fn: Loops = request.param
    return fn


async def _pair(limit: int = 65536) -> tuple[Plain, socket.socket]:
    """A ``Plain`` accepted by a listener, and the raw client socket talking to it."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Plain] = loop.create_future()
    server = await loop.create_server(lambda: Plain(limit, accepted.set_result),
                                      "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    client.setblocking(False)
    stream = await asyncio.wait_for(accepted, 5)
    server.close()
    return stream, client


async def _read_all(client: socket.socket, until: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = b""
    while len(out) < until:
        data = await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
        if not data:
            break
        out += data
    return out


def _in(run: Loops, test: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await test()
    run(main())


def test_a_read_returns_what_arrived_and_what_is_sent_goes_out_at_the_next_wait(
        run: Loops) -> None:
    async def test() -> None:
        stream, client = await _pair()
        client.sendall(b"hello")
        assert await stream.recv(5) == b"hello"
        stream.send(b"head ")
        stream.send(b"body")
        client.sendall(b"next")
        assert await stream.recv(5) == b"next"  # reading flushed the answer first
        assert await _read_all(client, 9) == b"head body"
        client.close()
        assert await stream.recv(5) == b""
        stream.close()
    _in(run, test)


def test_read_timeouts_are_the_callers_whatever_an_earlier_read_set(run: Loops) -> None:
    async def test() -> None:
        stream, client = await _pair()
        loop = asyncio.get_running_loop()
        # A long deadline first, then a short one: the short one still fires on time.
        client.sendall(b"a")
        assert await stream.recv(30) == b"a"
        started = loop.time()
        with pytest.raises(TimeoutError):
            await stream.recv(0.1)
        assert loop.time() - started < 2
        # A short deadline's timer left behind never ends a later, longer (or unbounded)
        # read early.
        with pytest.raises(TimeoutError):
            await stream.recv(0.05)

        async def later(delay: float) -> None:
            await asyncio.sleep(delay)
            client.sendall(b"late")
        for timeout in (0.5, None):
            task = asyncio.ensure_future(later(0.2))
            assert await stream.recv(timeout) == b"late"
            await task
        # A timer set by a bounded read fires while an unbounded one waits: nothing ends.
        client.sendall(b"x")
        assert await stream.recv(0.1) == b"x"
        task = asyncio.ensure_future(later(0.3))
        assert await stream.recv() == b"late"
        await task
        assert stream._timer is None
        stream.close()
        client.close()
    _in(run, test)


def test_reading_pauses_at_the_limit_and_resumes_when_read(run: Loops) -> None:
    async def test() -> None:
        stream, client = await _pair(limit=4096)
        loop = asyncio.get_running_loop()
        sent = 0
        chunk = b"x" * 65536
        # Far more than the limit: the stream stops reading, the kernel buffers fill,
        # and the sender is held back rather than the stream's memory growing.
        for _ in range(200):
            try:
                sent += client.send(chunk)
            except BlockingIOError:
                break
            await asyncio.sleep(0)
        assert sent < 200 * len(chunk)
        await asyncio.sleep(0.05)
        assert stream._size < 4096 + 2 * 65536 + 262144
        got = 0
        while got < sent:
            data = await stream.recv(5)
            assert data
            got += len(data)
        assert got == sent
        await loop.sock_sendall(client, b"more")
        assert await stream.recv(5) == b"more"
        stream.close()
        client.close()
    _in(run, test)


def test_a_half_closed_client_still_gets_its_answer(run: Loops) -> None:
    async def test() -> None:
        stream, client = await _pair()
        client.sendall(b"GET")
        client.shutdown(socket.SHUT_WR)
        assert await stream.recv(5) == b"GET"
        assert await stream.recv(5) == b""
        stream.send(b"answer")
        await stream.drain(5)
        stream.send_eof()
        assert await _read_all(client, 100) == b"answer"
        stream.close()
        client.close()
    _in(run, test)


def test_a_reset_connection_raises_on_read_and_on_drain(run: Loops) -> None:
    async def test() -> None:
        stream, client = await _pair()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()

        async def read_to_the_end() -> None:
            while await stream.recv(5):
                pass
        with pytest.raises(ConnectionError):  # a reset, not an end
            await read_to_the_end()
        stream.send(b"x")
        with pytest.raises(ConnectionError):
            await stream.drain(5)
        stream.close()
    _in(run, test)


def test_drain_waits_for_a_slow_reader_within_its_timeout(run: Loops) -> None:
    async def test() -> None:
        stream, client = await _pair()
        big = b"y" * (8 << 20)
        stream.send(big)
        with pytest.raises(TimeoutError):
            await stream.drain(0.2)  # nobody reads: the transport's buffer stays full
        reader = asyncio.ensure_future(_read_all(client, len(big)))
        await stream.drain(5)
        assert len(await reader) == len(big)
        stream.abort()
        client.close()
    _in(run, test)
