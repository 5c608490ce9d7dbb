"""One DNS query over UDP, answer as JSON: ``python lab_dns_probe.py SERVER NAME A|AAAA``.

Run inside an agent namespace by the lab tests (the lab has no dig); prints
``{"rcode": N, "answers": [[address, ttl], ...]}``.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import struct
import sys

TYPES = {"A": 1, "AAAA": 28}


def query(server: str, name: str, qtype: int) -> bytes:
    ident = secrets.randbelow(65536)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question
    packet += struct.pack("!HH", qtype, 1)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(packet, (server, 53))
        reply = sock.recv(4096)
    if struct.unpack("!H", reply[:2])[0] != ident:
        raise SystemExit("reply id does not match")
    return reply


def skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def parse(reply: bytes) -> dict[str, object]:
    _, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", reply[:12])
    offset = 12
    for _ in range(qdcount):
        offset = skip_name(reply, offset) + 4
    answers = []
    for _ in range(ancount):
        offset = skip_name(reply, offset)
        rtype, _, ttl, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        rdata = reply[offset : offset + length]
        offset += length
        if rtype in (1, 28):
            answers.append([str(ipaddress.ip_address(rdata)), ttl])
    return {"rcode": flags & 0xF, "answers": answers}


if __name__ == "__main__":
    server, name, kind = sys.argv[1:4]
    sys.stdout.write(json.dumps(parse(query(server, name, TYPES[kind]))) + "\n")
