"""Write the QUIC client Initials of ``tests/packets/quic_corpus/``, as aioquic sends them.

    .venv/bin/python tools/capture_quic_initials.py

Each client is an aioquic ``QuicConnection`` (the dev extra installs aioquic) opened with a
server name and ALPN list; the UDP payloads it sends first are written as ``NAME.bin``, or
``NAME.1.bin``, ``NAME.2.bin``, … when its ClientHello needs several datagrams. aioquic is
sans-IO: no socket is opened and nothing leaves the process. Keys, random and connection
IDs are fresh each run, so the files change with every run while what the tests assert
(the SNI, the ALPN list, the version, the number of datagrams) does not.

``README.md`` beside the files is rewritten from ``CLIENTS`` with aioquic's version.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from packets.quic_clients import QUIC_V1, QUIC_V2, client_initials  # noqa: E402

from gatewayd.packets.quic import client_hello_from_initials, parse_quic_initial  # noqa: E402

CORPUS = ROOT / "tests" / "packets" / "quic_corpus"

# Enough extra ALPN names (27 bytes each on the wire) to push the ClientHello past one
# datagram: what a post-quantum key share does to a browser's.
EXTRA_ALPN = tuple(f"x-clawgress-padding-{index:03d}" for index in range(40))


@dataclass(frozen=True)
class Client:
    """An aioquic client to capture, and what its ClientHello carries."""

    name: str
    sni: str | None
    alpn: tuple[str, ...]
    version: int = QUIC_V1
    note: str = ""


CLIENTS = [
    Client("aioquic-h3", "www.example.com", ("h3",)),
    Client("aioquic-alpn-list", "api.example.net", ("h3", "h3-29", "hq-interop")),
    Client("aioquic-no-sni", None, ("h3",), note="no server name: no server_name extension"),
    Client("aioquic-v2", "v2.example.org", ("h3",), QUIC_V2, note="QUIC v2 (RFC 9369)"),
    Client(
        "aioquic-two-datagrams",
        "big.example.com",
        ("h3", *EXTRA_ALPN),
        note=f"{len(EXTRA_ALPN)} extra ALPN names: the ClientHello spans two Initial packets",
    ),
]


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for stale in CORPUS.glob("*.bin"):
        stale.unlink()
    rows = []
    for client in CLIENTS:
        datagrams = client_initials(client.sni, client.alpn, version=client.version)
        pieces = [piece for data in datagrams for piece in parse_quic_initial(data).crypto]
        hello = client_hello_from_initials(pieces)
        assert hello is not None, client.name
        assert hello.sni == client.sni, client.name
        if len(datagrams) == 1:
            names = [f"{client.name}.bin"]
        else:
            names = [f"{client.name}.{index}.bin" for index in range(1, len(datagrams) + 1)]
        for name, data in zip(names, datagrams, strict=True):
            (CORPUS / name).write_bytes(data)
        rows.append((client, names, hello.size))
        print(f"{client.name}: {len(datagrams)} datagram(s), ClientHello of {hello.size} bytes")
    write_readme(rows)


def write_readme(rows: list[tuple[Client, list[str], int]]) -> None:
    lines = [
        "# QUIC client Initials",
        "",
        "Each `.bin` file is one UDP payload a QUIC client sent first: an Initial packet"
        " carrying (part of) its ClientHello in CRYPTO frames, followed by aioquic's"
        " datagram padding. A name with `.1`, `.2`, … is one of several datagrams of the"
        " same connection attempt, in the order sent. They were written by"
        f" `tools/capture_quic_initials.py` with aioquic {package_version('aioquic')}"
        " (`QuicConnection(QuicConfiguration(is_client=True, server_name=..., alpn_protocols"
        "=...)).connect(...)`, then `datagrams_to_send()`; no network). Keys, random and"
        " connection IDs differ with every run. `tests/packets/test_quic.py` replays them"
        " without needing aioquic; the RFC 9001 and RFC 9369 sample packets are in"
        " `tests/packets/quic_vectors.py`.",
        "",
        "| files | version | SNI | ALPN | ClientHello bytes | note |",
        "|---|---|---|---|---|---|",
    ]
    for client, names, size in rows:
        files = ", ".join(f"`{name}`" for name in names)
        sni = f"`{client.sni}`" if client.sni else "none"
        alpn = ", ".join(f"`{name}`" for name in client.alpn[:3])
        if len(client.alpn) > 3:
            alpn += f" and {len(client.alpn) - 3} more"
        version = "v2" if client.version == QUIC_V2 else "v1"
        lines.append(f"| {files} | {version} | {sni} | {alpn} | {size} | {client.note} |")
    lines.append("")
    (CORPUS / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
