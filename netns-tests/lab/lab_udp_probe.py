"""One UDP exchange, as JSON: ``python lab_udp_probe.py ADDRESS PORT``.

Run inside a lab namespace by the lab tests: sends one datagram from a connected socket
(so only an answer from ADDRESS:PORT is taken) and prints ``{"sent": S, "received": R}``,
R ``null`` when nothing came back within two seconds.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys

if __name__ == "__main__":
    address, port = sys.argv[1], int(sys.argv[2])
    payload = f"lab-probe-{secrets.token_hex(8)}"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((address, port))
        sock.send(payload.encode())
        try:
            received: str | None = sock.recv(2048).decode()
        except TimeoutError:
            received = None
    sys.stdout.write(json.dumps({"sent": payload, "received": received}) + "\n")
