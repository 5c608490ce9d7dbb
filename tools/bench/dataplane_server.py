"""The data-plane benchmark's upstream: accept TCP connections and close them at once.

Runs in the lab's upstream namespace (``tools/bench/dataplane.py`` starts it). Listens on
ADDRESS:PORT with a deep backlog, prints ``ready`` once listening, then accepts in a tight
blocking loop and closes each connection. The handshake itself is the kernel's: the loop
only has to keep the accept queue from filling. Standard library only, so it starts fast.
Ends on SIGTERM or SIGINT.

With ``--tls-cert`` and ``--tls-key`` it is a TLS server instead: each accepted connection
gets a TLS handshake (TLS 1.2 or 1.3, no session tickets, so every client handshake is a
full one), one application byte, and the close. Connections are served one at a time, as
the benchmark's client opens them one at a time; a client that stalls is given up after
``STALL_S`` seconds.

The close is an ordinary one (a FIN), not a reset: the client resets (SO_LINGER 0), which
ends both sockets without TIME_WAIT. Were the server to reset, conntrack would keep the
flow in CLOSE state (10 s) with its last reset in the reply direction, and a new
connection that reuses the 4-tuple within that time would be carried by the old entry,
whose mark already says *allow*: it would never reach the verdict queue, and a saturation
run (which cycles through the ephemeral ports in seconds) would measure less than it says.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import ssl
import sys

STALL_S = 5.0


def _listen(address: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(backlog)
    return listener


def serve(address: str, port: int, backlog: int) -> None:
    listener = _listen(address, port, backlog)
    print("ready", flush=True)
    accept = listener.accept
    while True:
        try:
            conn, _ = accept()
        except (ConnectionAbortedError, ConnectionResetError):
            continue
        conn.close()


def serve_tls(address: str, port: int, backlog: int, cert: str, key: str) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.num_tickets = 0  # no TLS 1.3 session tickets: nothing sent beyond the handshake
    listener = _listen(address, port, backlog)
    print("ready", flush=True)
    accept = listener.accept
    wrap = ctx.wrap_socket
    while True:
        try:
            conn, _ = accept()
        except (ConnectionAbortedError, ConnectionResetError):
            continue
        conn.settimeout(STALL_S)
        try:
            tls = wrap(conn, server_side=True)  # the handshake
        except OSError:  # ssl.SSLError too: a client that reset or gave up
            conn.close()
            continue
        with contextlib.suppress(OSError):
            tls.sendall(b"x")
        # An ordinary close (a FIN), as above: the client resets.
        tls.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("address")
    ap.add_argument("port", type=int)
    ap.add_argument("--backlog", type=int, default=4096)
    ap.add_argument("--tls-cert", help="PEM certificate (chain): serve TLS")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        ap.error("--tls-cert and --tls-key go together")

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        if args.tls_cert is not None:
            serve_tls(args.address, args.port, args.backlog, args.tls_cert, args.tls_key)
        else:
            serve(args.address, args.port, args.backlog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
