"""Lab servers on an event loop of their own, for blocking clients in tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    """An event loop in a thread. ``run`` waits for a coroutine on it; ``serve`` starts a
    server there and closes it when the loop ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.servers: list[asyncio.Server] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def serve(self, coro: Coroutine[Any, Any, asyncio.Server]) -> int:
        """Start the server ``coro`` makes; its (first) port."""
        server = self.run(coro)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])


@contextlib.contextmanager
def background() -> Iterator[Background]:
    """A ``Background`` loop; at the end its servers are closed, every task left on it is
    cancelled, and the loop is stopped and closed."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running = Background(loop)
    try:
        yield running
    finally:
        async def stop() -> None:
            for server in running.servers:
                server.close()
                await server.wait_closed()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        running.run(stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
