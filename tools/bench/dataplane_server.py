"""The data-plane benchmark's upstream: accept TCP connections and close them at once.

Runs in the lab's upstream namespace (``tools/bench/dataplane.py`` starts it). Listens on
ADDRESS:PORT with a deep backlog, prints ``ready`` once listening, then accepts in a tight
blocking loop and closes each connection. The handshake itself is the kernel's: the loop
only has to keep the accept queue from filling. Standard library only, so it starts fast.
Ends on SIGTERM or SIGINT.

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
import sys


def serve(address: str, port: int, backlog: int) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(backlog)
    print("ready", flush=True)
    accept = listener.accept
    while True:
        try:
            conn, _ = accept()
        except (ConnectionAbortedError, ConnectionResetError):
            continue
        conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("address")
    ap.add_argument("port", type=int)
    ap.add_argument("--backlog", type=int, default=4096)
    args = ap.parse_args(argv)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.address, args.port, args.backlog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
