"""Capture the DNS corpus: queries and dnsmasq's answers to them, on the loopback only.

Run from the repository root (as root, which dnsmasq needs to start; it needs no network):

    .venv/bin/python -m tests.packets.dns_corpus.capture

It starts ``/usr/sbin/dnsmasq`` on 127.0.0.1, serving the records in ``DNSMASQ_ARGS`` and
nothing else (no upstream, no hosts file), sends each query in ``QUERIES`` over UDP or TCP,
and writes ``NAME.query.bin`` and ``NAME.response.bin`` (the DNS messages, without the TCP
length prefix) next to this file. The tests read the files, not this script.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.rdatatype

HERE = Path(__file__).parent
PORT = 53535
TXT_STRINGS = [f"v=chunk{index};" + "x" * 190 for index in range(4)]
DNSMASQ_ARGS = [
    "/usr/sbin/dnsmasq",
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    f"--port={PORT}",
    "--pid-file=",
    "--user=root",
    "--local-ttl=300",
    "--local=/clawgress.test/",
    "--host-record=api.clawgress.test,192.0.2.10,2001:db8::10",
    "--host-record=mirror.clawgress.test,192.0.2.11",
    "--cname=www.clawgress.test,api.clawgress.test",
    "--cname=assets.clawgress.test,www.clawgress.test",
    "--txt-record=small.clawgress.test,v=spf1 -all",
    "--txt-record=big.clawgress.test," + ",".join(TXT_STRINGS),
]

# name: (question name, type, transport, EDNS payload size or None)
QUERIES = {
    "a": ("api.clawgress.test", "A", "udp", None),
    "aaaa": ("api.clawgress.test", "AAAA", "udp", 1232),
    "cname-chain": ("assets.clawgress.test", "A", "udp", 1232),
    "mixed-case": ("MiRrOr.ClawGress.TEST", "A", "udp", None),
    "txt-small": ("small.clawgress.test", "TXT", "udp", None),
    "txt-big-udp-truncated": ("big.clawgress.test", "TXT", "udp", None),
    "txt-big-tcp": ("big.clawgress.test", "TXT", "tcp", None),
    "nxdomain": ("missing.clawgress.test", "A", "udp", 1232),
    "nodata": ("mirror.clawgress.test", "AAAA", "udp", None),
}


def exchange(query: bytes, transport: str) -> bytes:
    """Send ``query`` to dnsmasq and return its answer."""
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(query, ("127.0.0.1", PORT))
            return sock.recv(65535)
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as sock:
        sock.sendall(len(query).to_bytes(2, "big") + query)
        stream = b""
        while len(stream) < 2 or len(stream) < 2 + int.from_bytes(stream[:2], "big"):
            chunk = sock.recv(65535)
            if not chunk:
                break
            stream += chunk
        return stream[2:]


def main() -> None:
    server = subprocess.Popen(DNSMASQ_ARGS)
    try:
        time.sleep(1)
        for index, (name, (qname, qtype, transport, payload)) in enumerate(sorted(QUERIES.items())):
            query = dns.message.make_query(
                qname,
                dns.rdatatype.from_text(qtype),
                use_edns=payload is not None,
                payload=payload or 0,
            )
            query.id = 0x1000 + index
            wire = query.to_wire()
            (HERE / f"{name}.query.bin").write_bytes(wire)
            (HERE / f"{name}.response.bin").write_bytes(exchange(wire, transport))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
