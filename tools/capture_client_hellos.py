"""Capture real TLS ClientHellos into ``tests/packets/tls_corpus/``, and write the crafted ones.

    .venv/bin/python tools/capture_client_hellos.py [--browser-python PATH | --skip-browsers]

Each client is pointed at a TCP listener on 127.0.0.1: the script accepts its connection,
reads what it sends until ``parse_client_hello`` has a complete ClientHello, closes the
connection (the client then fails, as intended) and writes the bytes read, up to the end
of the ClientHello's records, to ``NAME.bin``. No handshake is answered and nothing leaves
the machine: host names reach the clients through ``--resolve`` and ``server_hostname``.

The clients: curl and ``openssl s_client`` from the system, Python's ``ssl`` module, and two
browsers' TLS stacks as curl_cffi's impersonation builds them (BoringSSL configured as
Chrome and as Firefox). curl_cffi is not a project dependency: ``--browser-python`` names
an interpreter that has it (for example a scratch venv with ``pip install curl-cffi``).
With ``--skip-browsers`` the browser captures and the README are left as they are.

Two more files are crafted here rather than captured, for what no local client sends: an
ECH-carrying, GREASE-laden ClientHello with a post-quantum hybrid key share, split over two
records; and an extension-less TLS 1.0 ClientHello. Their bytes are deterministic.

``README.md`` beside the files is rewritten from ``CLIENTS`` and ``CRAFTED`` with the tool
versions of the run. The tests assert what each file carries, so after a recapture with
newer tools, update the expectations in ``tests/packets/test_tls.py`` and ``test_ja4.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gatewayd.packets.tls import ClientHello, parse_client_hello  # noqa: E402

CORPUS = ROOT / "tests" / "packets" / "tls_corpus"
TIMEOUT = 15.0

_PYTHON_SSL = """
import socket, ssl, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
try:
    ssl.create_default_context().wrap_socket(sock, server_hostname=sys.argv[2])
except (OSError, ssl.SSLError):
    pass
"""

_BROWSER = """
import sys
from curl_cffi import CurlOpt, requests
port, host, profile = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    requests.get(
        f"https://{host}:{port}/",
        impersonate=profile,
        timeout=10,
        curl_options={CurlOpt.RESOLVE: [f"{host}:{port}:127.0.0.1"]},
    )
except Exception:
    pass
"""


@dataclass(frozen=True)
class Client:
    """A client to capture: its command for a port, and what its ClientHello should carry."""

    name: str
    tool: str  # which version line describes it in the README: "curl", "openssl", ...
    how: str
    argv: Callable[[int], list[str]]
    sni: str | None
    alpn: tuple[str, ...]


def _curl(*options: str, host: str = "api.example.com") -> Callable[[int], list[str]]:
    def argv(port: int) -> list[str]:
        resolve = [] if host[0].isdigit() else ["--resolve", f"{host}:{port}:127.0.0.1"]
        return ["curl", "-sk", "--max-time", "10", *options, *resolve, f"https://{host}:{port}/"]

    return argv


def _s_client(*options: str) -> Callable[[int], list[str]]:
    return lambda port: ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *options]


def _python_ssl(host: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, "-c", _PYTHON_SSL, str(port), host]


def _browser(python: str, profile: str, host: str) -> Callable[[int], list[str]]:
    return lambda port: [python, "-c", _BROWSER, str(port), host, profile]


CLIENTS = [
    Client(
        "curl-http1.1",
        "curl",
        "`curl --http1.1 --resolve api.example.com:PORT:127.0.0.1 https://api.example.com:PORT/`",
        _curl("--http1.1"),
        "api.example.com",
        ("http/1.1",),
    ),
    Client(
        "curl-h2",
        "curl",
        "`curl --http2 --resolve api.example.com:PORT:127.0.0.1 https://api.example.com:PORT/`",
        _curl("--http2"),
        "api.example.com",
        ("h2", "http/1.1"),
    ),
    Client(
        "curl-ip-no-sni",
        "curl",
        "`curl https://127.0.0.1:PORT/`: an address, so no server_name",
        _curl("--http2", host="127.0.0.1"),
        None,
        ("h2", "http/1.1"),
    ),
    Client(
        "python-ssl",
        "python",
        "`ssl.create_default_context().wrap_socket(sock, server_hostname='pypi.example.org')`",
        _python_ssl("pypi.example.org"),
        "pypi.example.org",
        (),
    ),
    Client(
        "openssl-tls1.2",
        "openssl",
        "`openssl s_client -tls1_2 -servername legacy.example.com`",
        _s_client("-tls1_2", "-servername", "legacy.example.com"),
        "legacy.example.com",
        (),
    ),
    Client(
        "openssl-tls1.3",
        "openssl",
        "`openssl s_client -tls1_3 -servername Files.Example.ORG -alpn h2,http/1.1`"
        " (the name is sent in mixed case)",
        _s_client("-tls1_3", "-servername", "Files.Example.ORG", "-alpn", "h2,http/1.1"),
        "files.example.org",
        ("h2", "http/1.1"),
    ),
    Client(
        "openssl-ffdhe8192-records",
        "openssl",
        "`openssl s_client -tls1_3 -groups ffdhe8192 -max_send_frag 512 -servername"
        " big.example.com`: a 1024-byte key share, the ClientHello in three records",
        _s_client(
            "-tls1_3",
            "-groups",
            "ffdhe8192",
            "-max_send_frag",
            "512",
            "-servername",
            "big.example.com",
        ),
        "big.example.com",
        (),
    ),
]


def _browsers(python: str) -> list[Client]:
    return [
        Client(
            "chrome136",
            "curl_cffi",
            "curl_cffi `impersonate='chrome136'` to https://www.example.com:PORT/: GREASE,"
            " ECH (GREASE), an X25519MLKEM768 key share, over one MTU",
            _browser(python, "chrome136", "www.example.com"),
            "www.example.com",
            ("h2", "http/1.1"),
        ),
        Client(
            "firefox135",
            "curl_cffi",
            "curl_cffi `impersonate='firefox135'` to https://mail.example.net:PORT/:"
            " X25519MLKEM768 and ECH (GREASE), over one MTU",
            _browser(python, "firefox135", "mail.example.net"),
            "mail.example.net",
            ("h2", "http/1.1"),
        ),
    ]


def capture(argv: Callable[[int], list[str]]) -> bytes:
    """The bytes a client sends up to the end of its ClientHello."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(TIMEOUT)
        port = server.getsockname()[1]
        client = subprocess.Popen(
            argv(port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            connection, _ = server.accept()
            with connection:
                connection.settimeout(TIMEOUT)
                data = b""
                while (hello := parse_client_hello(data)) is None:
                    chunk = connection.recv(65536)
                    if not chunk:
                        raise RuntimeError("the client closed before its ClientHello was complete")
                    data += chunk
        finally:
            client.kill()
            client.wait()
    return data[: hello.size]


# --- crafted ClientHellos ------------------------------------------------------------------


def _vector(length_size: int, body: bytes) -> bytes:
    return len(body).to_bytes(length_size, "big") + body


def _u16s(*values: int) -> bytes:
    return b"".join(value.to_bytes(2, "big") for value in values)


def _extension(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + _vector(2, body)


def _filler(label: str, size: int) -> bytes:
    """Deterministic bytes standing in for randoms and keys."""
    return hashlib.shake_256(label.encode()).digest(size)


def _client_hello(
    version: int, session_id: bytes, ciphers: bytes, extensions: list[bytes] | None
) -> bytes:
    body = (
        version.to_bytes(2, "big")
        + _filler(f"random {version}", 32)
        + _vector(1, session_id)
        + _vector(2, ciphers)
        + _vector(1, b"\x00")
    )
    if extensions is not None:
        body += _vector(2, b"".join(extensions))
    return b"\x01" + _vector(3, body)


def _records(message: bytes, version: int, fragment: int) -> bytes:
    return b"".join(
        bytes((22,)) + version.to_bytes(2, "big") + _vector(2, message[at : at + fragment])
        for at in range(0, len(message), fragment)
    )


def crafted_ech_grease() -> bytes:
    """A browser-like TLS 1.3 ClientHello: GREASE, ECH, a hybrid key share, two records."""
    grease_cipher, grease_ext_1, grease_ext_2, grease_group = 0x3A3A, 0x6A6A, 0x9A9A, 0xDADA
    sni = _vector(2, b"\x00" + _vector(2, b"public.ech.example"))
    alpn = _vector(2, _vector(1, b"h2") + _vector(1, b"http/1.1"))
    ech = (
        b"\x00"  # outer
        + _u16s(0x0001, 0x0001)  # HKDF-SHA256, AES-128-GCM
        + b"\x2a"  # config id
        + _vector(2, _filler("ech enc", 32))
        + _vector(2, _filler("ech payload", 208))
    )
    key_shares = _vector(
        2,
        _u16s(grease_group)
        + _vector(2, b"\x00")
        + _u16s(0x11EC)  # X25519MLKEM768: 1184 ML-KEM bytes and 32 X25519 bytes
        + _vector(2, _filler("mlkem768", 1184) + _filler("x25519 hybrid", 32))
        + _u16s(0x001D)
        + _vector(2, _filler("x25519", 32)),
    )
    extensions = [
        _extension(grease_ext_1, b""),
        _extension(0x0000, sni),
        _extension(0x0017, b""),
        _extension(0xFF01, b"\x00"),
        _extension(0x000A, _vector(2, _u16s(grease_group, 0x11EC, 0x001D, 0x0017, 0x0018))),
        _extension(0x000B, _vector(1, b"\x00")),
        _extension(0x0023, b""),
        _extension(0x0010, alpn),
        _extension(0x0005, b"\x01\x00\x00\x00\x00"),
        _extension(0x000D, _vector(2, _u16s(0x2A2A, 0x0403, 0x0804, 0x0401, 0x0503))),
        _extension(0x0012, b""),
        _extension(0x0033, key_shares),
        _extension(0x002D, _vector(1, b"\x01")),
        _extension(0x002B, _vector(1, _u16s(0xEAEA, 0x0304, 0x0303))),
        _extension(0xFE0D, ech),
        _extension(grease_ext_2, b"\x00"),
    ]
    ciphers = _u16s(grease_cipher, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8)
    message = _client_hello(0x0303, _filler("session id", 32), ciphers, extensions)
    return _records(message, 0x0301, 1200)


def crafted_tls10_no_extensions() -> bytes:
    """A TLS 1.0 ClientHello as old stacks sent it: no extensions block at all."""
    ciphers = _u16s(0x002F, 0x0035, 0x000A, 0x00FF)
    return _records(_client_hello(0x0301, b"", ciphers, None), 0x0301, 2**14)


CRAFTED: list[tuple[str, str, Callable[[], bytes], str | None, tuple[str, ...]]] = [
    (
        "crafted-ech-grease-two-records",
        "GREASE cipher, extensions, group, key share, version and signature algorithm;"
        " ECH (outer, 208-byte payload); X25519MLKEM768 key share; two records, the first"
        " 1200 bytes, the split inside the key share",
        crafted_ech_grease,
        "public.ech.example",
        ("h2", "http/1.1"),
    ),
    (
        "crafted-tls1.0-no-extensions",
        "record and ClientHello version 0x0301, four cipher suites, no extensions block",
        crafted_tls10_no_extensions,
        None,
        (),
    ),
]


# --- the README ----------------------------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    return (result.stdout or result.stderr).splitlines()[0].strip()


def tool_versions(browser_python: str | None) -> dict[str, str]:
    versions = {
        "curl": _curl_version(),
        "openssl": _first_line(["openssl", "version"]).split(" (")[0],
        "python": f"Python {sys.version.split()[0]} ssl, {ssl.OPENSSL_VERSION}",
    }
    if browser_python:
        version = _first_line(
            [browser_python, "-c", "import curl_cffi; print(curl_cffi.__version__)"]
        )
        versions["curl_cffi"] = f"curl_cffi {version} (BoringSSL)"
    return versions


def _curl_version() -> str:
    """``curl 7.88.1, OpenSSL/3.0.19``: curl's version and its TLS library's."""
    words = _first_line(["curl", "--version"]).split()
    tls = next((word for word in words if word.split("/")[0] in _TLS_LIBRARIES), "")
    return f"curl {words[1]}, {tls}" if tls else f"curl {words[1]}"


_TLS_LIBRARIES = ("OpenSSL", "BoringSSL", "LibreSSL", "GnuTLS", "wolfSSL", "mbedTLS", "rustls")


def _cell(value: str | None, alpn: tuple[str, ...] | None = None) -> str:
    if alpn is not None:
        return ", ".join(f"`{name}`" for name in alpn) or "none"
    return f"`{value}`" if value else "none"


def write_readme(rows: list[tuple[str, str, str, str | None, tuple[str, ...], bytes]]) -> None:
    lines = [
        "# Real and crafted TLS ClientHellos",
        "",
        "Each `.bin` file is a client's TCP stream from its first byte to the end of the"
        " records that carry its ClientHello. The captured ones were recorded by"
        " `tools/capture_client_hellos.py`: it points each client at a listener on 127.0.0.1,"
        " reads until the ClientHello is complete and closes the connection unanswered."
        " The crafted ones are built by the same script, byte for byte the same each run."
        " `tests/packets/test_tls.py` and `test_ja4.py` replay them all.",
        "",
        "| file | client | how | SNI | ALPN | records | bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, client, how, sni, alpn, data in rows:
        records = _record_count(data)
        lines.append(
            f"| `{name}.bin` | {client} | {how} | {_cell(sni)} | {_cell(None, alpn)}"
            f" | {records} | {len(data)} |"
        )
    lines.append("")
    (CORPUS / "README.md").write_text("\n".join(lines))


def _record_count(data: bytes) -> int:
    count, offset = 0, 0
    while offset < len(data):
        offset += 5 + int.from_bytes(data[offset + 3 : offset + 5], "big")
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    browsers = parser.add_mutually_exclusive_group(required=True)
    browsers.add_argument("--browser-python", help="an interpreter that has curl_cffi")
    browsers.add_argument("--skip-browsers", action="store_true")
    args = parser.parse_args()

    CORPUS.mkdir(parents=True, exist_ok=True)
    versions = tool_versions(args.browser_python)
    clients = CLIENTS + ([] if args.skip_browsers else _browsers(args.browser_python))
    rows = []
    for client in clients:
        data = capture(client.argv)
        hello = parse_client_hello(data)
        assert isinstance(hello, ClientHello)
        _check(client.name, hello, client.sni, client.alpn)
        (CORPUS / f"{client.name}.bin").write_bytes(data)
        rows.append((client.name, versions[client.tool], client.how, client.sni, client.alpn, data))
        print(f"{client.name}: {len(data)} bytes, SNI {hello.sni}")
    for name, how, build, sni, alpn in CRAFTED:
        data = build()
        hello = parse_client_hello(data)
        assert isinstance(hello, ClientHello)
        _check(name, hello, sni, alpn)
        (CORPUS / f"{name}.bin").write_bytes(data)
        rows.append((name, "crafted", how, sni, alpn, data))
        print(f"{name}: {len(data)} bytes, SNI {hello.sni}")
    if args.skip_browsers:
        print("browsers skipped: their files and README.md left as they were")
    else:
        write_readme(rows)
    return 0


def _check(name: str, hello: ClientHello, sni: str | None, alpn: tuple[str, ...]) -> None:
    """Refuse a capture that does not carry what its client was asked to send."""
    got_alpn = tuple(protocol.decode() for protocol in hello.alpn)
    if hello.sni != sni or got_alpn != alpn:
        raise RuntimeError(f"{name}: SNI {hello.sni!r}, ALPN {got_alpn}; expected {sni!r}, {alpn}")


if __name__ == "__main__":
    sys.exit(main())
