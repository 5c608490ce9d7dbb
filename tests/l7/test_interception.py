"""TLS through the explicit proxy on loopback: CONNECT, then the client's TLS ended with a
leaf of a gateway CA and the upstream verified; and the body-rewrite stage of
``transform`` decisions."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import time
from pathlib import Path

from gatewayd.l7 import GatewayCA, issue_ca
from gatewayd.l7.interception import LeafContexts
from gatewayd.l7.target import Target
from gatewayd.l7.transform import Headers, Rewritten
from gatewayd.l7.upstream import upstream_context
from gatewayd.lab.pki import issue_lab_pki
from tests.l7.proxy_harness import exchange, running_proxy, status_codes


def _gateway_ca() -> GatewayCA:
    key, cert = issue_ca("test", time.time(), 86400)
    return GatewayCA(key, cert)


def _lab_tls(tmp: Path) -> tuple[tuple[str, str], Path]:
    pki = issue_lab_pki("t", ["localhost"], [ipaddress.IPv4Address("127.0.0.1")],
                        dt.datetime.now(dt.UTC))
    cert, key, ca = tmp / "up.pem", tmp / "up.key", tmp / "ca.pem"
    cert.write_bytes(pki.server_cert_pem)
    key.write_bytes(pki.server_key_pem)
    ca.write_bytes(pki.ca_cert_pem)
    return (str(cert), str(key)), ca


async def _through_connect(port: int, upstream_port: int, ca: GatewayCA,
                           path: str) -> tuple[bytes, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"CONNECT 127.0.0.1:{upstream_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 "), head
    client = ssl.create_default_context(cadata=ca.cert_pem.decode())
    await writer.start_tls(client, server_hostname="127.0.0.1")
    tls = writer.get_extra_info("ssl_object")
    peer = tls.getpeercert()
    issuer = {k: v for rdn in peer["issuer"] for k, v in rdn}
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{upstream_port}\r\n"
                 "Connection: close\r\n\r\n".encode())
    await writer.drain()
    got = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return got, issuer


def test_connect_is_intercepted_and_the_upstream_verified(tmp_path: Path) -> None:
    tls_files, lab_ca = _lab_tls(tmp_path)
    ca = _gateway_ca()

    async def run() -> None:
        async with running_proxy(leaves=LeafContexts(ca, 16),
                                 upstream_tls=upstream_context([lab_ca]),
                                 tls_upstream=tls_files) as h:
            got, issuer = await _through_connect(h.port, h.upstream_port, ca, "/")
            assert issuer["commonName"].startswith("Clawgress CA")  # the gateway's leaf
            assert status_codes(got) == [200]
            assert b'"scheme": "https"' in got
            kinds = {e.kind: e.fields for e in h.events}
            assert kinds["tls.decision"]["tls"] == "intercepted"
            inner = [e.fields for e in h.events
                     if e.kind == "http.request" and e.fields["method"] == "GET"]
            assert inner[0]["tls"] == "intercepted" and inner[0]["status"] == 200
    asyncio.run(run())


def test_an_upstream_that_does_not_verify_gets_502_naming_why(tmp_path: Path) -> None:
    tls_files, _ = _lab_tls(tmp_path)
    ca = _gateway_ca()

    async def run() -> None:
        # The lab CA is not trusted here: the upstream's certificate cannot verify.
        async with running_proxy(leaves=LeafContexts(ca, 16), tls_upstream=tls_files) as h:
            got, _ = await _through_connect(h.port, h.upstream_port, ca, "/")
            assert status_codes(got) == [502]
            body = json.loads(got.split(b"\r\n\r\n", 1)[1])
            assert body["error"] == "upstream-failed"
            assert "certificate" in body["reason"]
            inner = next(e.fields for e in h.events if e.kind == "http.request"
                         and e.fields["method"] == "GET")
            assert "upstream-certificate" in inner["flags"]
    asyncio.run(run())


class Doubler:
    """A stage that sends the body twice (for the test: any rewrite shows)."""

    name = "doubler"

    def rewrite(self, method: str, target: Target, headers: Headers,
                body: bytes) -> Rewritten | None:
        return Rewritten(headers, body * 2, f"{len(body)} -> {2 * len(body)} bytes")


def test_transform_runs_the_rewrite_stages_and_reframes_the_body() -> None:
    async def run() -> None:
        async with running_proxy(transforms=(Doubler(),)) as h:
            put = (f"PUT {h.url('/echo')} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                   "\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode()
            got = await exchange(h.port, [put])
            assert status_codes(got) == [405]  # the lab upstream takes POST only...
            event = next(e.fields for e in h.events if e.kind == "http.request")
            assert event["action"] == "transform" and event["bytes_out"] == 10
            assert "transformed:doubler: 5 -> 10 bytes" in event["flags"]
    asyncio.run(run())


def test_transform_without_stages_forwards_and_says_so() -> None:
    async def run() -> None:
        async with running_proxy() as h:
            got = await exchange(h.port, [
                f"PUT {h.url('/echo')} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                .encode()])
            assert status_codes(got) == [405]
            event = next(e.fields for e in h.events if e.kind == "http.request")
            assert "transform-no-stage" in event["flags"] and event["bytes_out"] == 2
    asyncio.run(run())
