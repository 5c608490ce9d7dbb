"""Connections from the L7 engine to upstream servers.

``connect`` opens TCP (and TLS, verified against the system trust store plus
``l7.extra_upstream_cas``, ALPN http/1.1 only) within ``l7.connect_timeout``. ``Upstream``
is one such connection with its HTTP/1.1 client state (``http1.Outbound``); a client
connection keeps its upstream across keep-alive requests while they go to the same server.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from pathlib import Path

from gatewayd.errors import ClawgressError
from gatewayd.l7 import http1
from gatewayd.l7.conn import Plain

MAX_RESPONSE_HEAD = 64 * 1024


class UpstreamError(ClawgressError):
    """The upstream could not be reached or did not speak HTTP; ``status`` is what the
    client gets (502, or 504 on a timeout)."""

    def __init__(self, message: str, status: int = 502, flag: str = "upstream-failed") -> None:
        super().__init__(message)
        self.status = status
        self.flag = flag


def upstream_context(extra_cas: Sequence[Path]) -> ssl.SSLContext:
    """How the engine verifies upstream servers: the system trust store, plus ``extra_cas``;
    hostname checked; TLS 1.2 or newer; ALPN http/1.1."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for path in extra_cas:
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise ClawgressError(f"l7.extra_upstream_cas: cannot load {path}: {exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Upstream:
    """One connection to an upstream server and its HTTP/1.1 client state."""

    def __init__(self, key: tuple[str, int, str | None], stream: Plain) -> None:
        self.key = key
        self.address = f"{key[0]}:{key[1]}"  # what records name it by
        self.stream = stream
        self.http = http1.Outbound(MAX_RESPONSE_HEAD)

    @property
    def reusable(self) -> bool:
        return self.http.our_state is http1.DONE and self.http.their_state is http1.DONE

    def next_cycle(self) -> bool:
        """Ready the connection for another request; ``False`` if it cannot be reused."""
        if not self.reusable:
            return False
        self.http.start_next_cycle()
        return True

    def send(self, event: http1.Event) -> None:
        data = self.http.send(event)
        if data:
            self.stream.send(data)

    def send_data(self, data: bytes) -> None:
        out = self.http.send_data(data)
        if out:
            self.stream.send(out)

    def send_end(self) -> None:
        out = self.http.send_end()
        if out:
            self.stream.send(out)

    def ready_event(self) -> http1.Event | http1.Sentinel:
        """The next HTTP event from what has arrived (``NEED_DATA``: nothing more yet);
        ``UpstreamError`` when the upstream broke HTTP."""
        try:
            return self.http.next_event()
        except http1.RemoteProtocolError as exc:
            raise UpstreamError(f"the upstream broke HTTP/1.1: {exc}") from None

    async def next_event(self, timeout_s: float) -> http1.Event | http1.Sentinel:
        """The next HTTP event from the upstream (``UpstreamError`` when it times out or
        breaks HTTP)."""
        while True:
            event = self.ready_event()
            if event is not http1.NEED_DATA:
                return event
            try:
                data = await self.stream.recv(timeout_s)
            except TimeoutError:
                raise UpstreamError(f"the upstream sent nothing for {timeout_s:.0f} s", 504,
                                    "upstream-timeout") from None
            except (OSError, ssl.SSLError) as exc:
                raise UpstreamError(f"the upstream connection failed: {exc}") from None
            self.http.receive_data(data)

    def close(self) -> None:
        self.stream.close()


async def connect(host: str, port: int, *, tls: ssl.SSLContext | None, server_name: str | None,
                  timeout_s: float) -> Plain:
    """A connection to ``host:port`` (an address), with TLS to ``server_name`` when ``tls``
    is given."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            _, stream = await loop.create_connection(
                Plain, host, port, ssl=tls, server_hostname=server_name if tls else None,
                ssl_handshake_timeout=timeout_s if tls else None)
    except TimeoutError:
        raise UpstreamError(f"{host} port {port} did not answer within {timeout_s:.0f} s",
                            504, "upstream-timeout") from None
    except ssl.SSLCertVerificationError as exc:
        raise UpstreamError(f"the upstream's certificate does not verify:"
                            f" {exc.verify_message}", 502, "upstream-certificate") from None
    except (OSError, ssl.SSLError) as exc:
        raise UpstreamError(f"cannot connect to {host} port {port}: {exc}") from None
    return stream
