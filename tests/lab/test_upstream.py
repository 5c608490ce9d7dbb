"""The upstream server's IO shell on loopback (no namespaces, no root)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import itertools
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import pytest

from gatewayd.lab.pki import issue_lab_pki
from gatewayd.lab.upstream import (
    Upstream,
    main,
    parse_service,
    server_context,
    start_server,
    start_servers,
    start_udp_echo,
)
from tests.lab.background import background

NAME = "api.openai.com"


@dataclass
class Running:
    http_port: int
    https_port: int
    client_tls: ssl.SSLContext
    alt_http_port: int
    alt_https_port: int


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder: Path = tmp_path_factory.mktemp("upstream")
    pki = issue_lab_pki("unit", [NAME], [ip_address("127.0.0.1")], dt.datetime.now(dt.UTC))
    (folder / "cert.pem").write_bytes(pki.server_cert_pem)
    (folder / "key.pem").write_bytes(pki.server_key_pem)
    tls = server_context(str(folder / "cert.pem"), str(folder / "key.pem"))
    upstream = Upstream({"127.0.0.1": NAME})
    client_tls = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())
    with background() as bg:
        http_server, https_server = bg.run(start_servers(upstream, tls, 0, 0,
                                                         host="127.0.0.1"))
        bg.servers += [http_server, https_server]
        yield Running(
            http_server.sockets[0].getsockname()[1],
            https_server.sockets[0].getsockname()[1],
            client_tls,
            bg.serve(start_server(upstream, 0, None, host="127.0.0.1")),
            bg.serve(start_server(upstream, 0, tls, host="127.0.0.1")),
        )


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request("GET", path, headers={"Host": NAME})
    response = conn.getresponse()
    return response, response.read()


def test_root_over_http_with_keep_alive(upstream: Running) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.http_port, timeout=5)
    try:
        first, body = _get(conn, "/")
        sock = conn.sock
        second, _ = _get(conn, "/")
        assert conn.sock is sock  # the same connection served both
    finally:
        conn.close()
    assert first.status == second.status == 200
    assert first.getheader("Connection") == "keep-alive"
    data = json.loads(body)
    assert data["name"] == NAME
    assert data["scheme"] == "http"
    assert data["address"] == data["client"] == "127.0.0.1"


def test_root_over_https(upstream: Running) -> None:
    conn = http.client.HTTPSConnection(NAME, upstream.https_port, timeout=5,
                                       context=upstream.client_tls)
    # Connect to loopback while verifying the certificate for NAME.
    conn.sock = upstream.client_tls.wrap_socket(
        socket.create_connection(("127.0.0.1", upstream.https_port), timeout=5),
        server_hostname=NAME,
    )
    try:
        response, body = _get(conn, "/")
    finally:
        conn.close()
    assert response.status == 200
    assert json.loads(body)["scheme"] == "https"


def test_bytes(upstream: Running) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.http_port, timeout=5)
    try:
        for n in (0, 1, 300_000, 1_048_576):
            response, body = _get(conn, f"/bytes?n={n}")
            assert response.status == 200
            assert len(body) == n
    finally:
        conn.close()


def test_stream_sends_lines_over_time(upstream: Running) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.http_port, timeout=5)
    try:
        conn.request("GET", "/stream?seconds=0.3&interval_ms=100")
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        start = time.monotonic()
        arrivals = []
        lines = []
        while line := response.readline():
            arrivals.append(time.monotonic() - start)
            lines.append(json.loads(line))
    finally:
        conn.close()
    assert [line["seq"] for line in lines] == [0, 1, 2, 3]
    assert arrivals[-1] >= 0.25  # the last line came about 300 ms after the first
    assert all(b["elapsed_ms"] >= a["elapsed_ms"] for a, b in itertools.pairwise(lines))


def test_echo_counts_the_body(upstream: Running) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.http_port, timeout=5)
    try:
        conn.request("POST", "/echo", body=b"x" * 200_000)
        response = conn.getresponse()
        assert json.loads(response.read()) == {"received": 200_000}
        # The connection stays usable after a body.
        response, _ = _get(conn, "/")
        assert response.status == 200
    finally:
        conn.close()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_garbage_gets_400_and_the_connection_closes(upstream: Running) -> None:
    answer = _raw(upstream.http_port, b"HELLO THERE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in answer


def test_http_1_0_closes_after_the_response(upstream: Running) -> None:
    answer = _raw(upstream.http_port, b"GET / HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in answer


def test_pipelined_requests_are_answered_in_order(upstream: Running) -> None:
    answer = _raw(upstream.http_port, b"GET /bytes?n=3 HTTP/1.1\r\n\r\n"
                  b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"
                  b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 ") == 3
    assert answer.index(b"200 OK") < answer.index(b'"received": 4') < answer.index(b"404")


def test_parse_service() -> None:
    assert parse_service("a.com=10.0.0.1,fd00::1") == [("10.0.0.1", "a.com"), ("fd00::1", "a.com")]
    with pytest.raises(Exception, match="NAME=ADDR"):
        parse_service("a.com")


def _https_root(upstream: Running, port: int) -> dict[str, object]:
    conn = http.client.HTTPSConnection(NAME, port, timeout=5, context=upstream.client_tls)
    conn.sock = upstream.client_tls.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname=NAME
    )
    try:
        response, body = _get(conn, "/")
    finally:
        conn.close()
    assert response.status == 200
    data: dict[str, object] = json.loads(body)
    return data


def test_another_https_port_answers_like_443(upstream: Running) -> None:
    data = _https_root(upstream, upstream.alt_https_port)
    assert data["scheme"] == "https"
    assert data["port"] == upstream.alt_https_port
    assert data["name"] == NAME


def test_another_http_port_answers_like_80(upstream: Running) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.alt_http_port, timeout=5)
    try:
        response, body = _get(conn, "/bytes?n=5")
        assert (response.status, body) == (200, b"01234")
        response, body = _get(conn, "/")
    finally:
        conn.close()
    data = json.loads(body)
    assert (data["scheme"], data["port"]) == ("http", upstream.alt_http_port)


def test_a_tls_handshake_without_http_alpn_succeeds(upstream: Running) -> None:
    """What a DNS-over-TLS client does on 853: TLS, offering only ALPN "dot"."""
    ctx = ssl.create_default_context(cadata=upstream.client_tls.get_ca_certs(True)[0])
    ctx.set_alpn_protocols(["dot"])
    raw = socket.create_connection(("127.0.0.1", upstream.alt_https_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=NAME) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() is None


def test_udp_echo_answers_from_the_address_it_was_sent_to() -> None:
    addresses = ["127.0.0.2", "127.0.0.3"]

    def exchange(address: str, port: int) -> tuple[bytes, str]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.bind(("127.0.0.1", 0))
            sock.sendto(b"ping " + address.encode(), (address, port))
            data, source = sock.recvfrom(2048)
        return data, str(source[0])

    async def run() -> list[tuple[bytes, str]]:
        [first] = await start_udp_echo(addresses[:1], 0)
        port = first.get_extra_info("sockname")[1]
        rest = await start_udp_echo(addresses[1:], port)
        try:
            return [await asyncio.to_thread(exchange, a, port) for a in addresses]
        finally:
            for transport in (first, *rest):
                transport.close()

    answers = asyncio.run(run())
    assert answers == [(b"ping " + a.encode(), a) for a in addresses]


def test_udp_echo_fails_to_start_on_an_address_the_host_does_not_have() -> None:
    async def run() -> None:
        await start_udp_echo(["127.0.0.2", "192.0.2.1"], 0)  # not an address of this host

    with pytest.raises(OSError, match="assign requested address"):
        asyncio.run(run())


def test_main_takes_the_extra_listeners(tmp_path: Path) -> None:
    # An unreadable certificate stops main before it serves: the options parsed.
    code = main(["--cert", str(tmp_path / "none.pem"), "--key", str(tmp_path / "none.key"),
                 "--alt-http-port", "8080", "--alt-https-port", "853",
                 "--alt-https-port", "8443", "--udp-echo-port", "443"])
    assert code == 2
