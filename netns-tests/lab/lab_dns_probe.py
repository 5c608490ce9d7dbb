"""One DNS query, answer as JSON: ``python lab_dns_probe.py SERVER NAME A|AAAA|TXT [--tcp]``.

Run inside an agent namespace by the lab tests (the lab has no dig); over UDP (no EDNS, so
answers over 512 bytes come back truncated) or, with ``--tcp``, over TCP. Prints
``{"rcode": N, "answers": [[value, ttl], ...]}``: the value is the address for A and AAAA
and the list of character strings for TXT; ``"truncated": true`` is added when the
server set the TC bit.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import struct
import sys

TYPES = {"A": 1, "AAAA": 28, "TXT": 16}


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SystemExit("connection closed before the whole answer arrived")
        data += chunk
    return data


def query(server: str, name: str, qtype: int, tcp: bool = False) -> bytes:
    ident = secrets.randbelow(65536)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question
    packet += struct.pack("!HH", qtype, 1)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    if tcp:
        with socket.create_connection((server, 53), timeout=3) as stream:
            stream.sendall(struct.pack("!H", len(packet)) + packet)
            (length,) = struct.unpack("!H", _recv_exactly(stream, 2))
            reply = _recv_exactly(stream, length)
    else:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.sendto(packet, (server, 53))
            reply = sock.recv(65535)
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


def txt_strings(rdata: bytes) -> list[str]:
    strings = []
    offset = 0
    while offset < len(rdata):
        length = rdata[offset]
        strings.append(rdata[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return strings


def parse(reply: bytes) -> dict[str, object]:
    _, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", reply[:12])
    offset = 12
    for _ in range(qdcount):
        offset = skip_name(reply, offset) + 4
    answers: list[list[object]] = []
    for _ in range(ancount):
        offset = skip_name(reply, offset)
        rtype, _, ttl, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        rdata = reply[offset : offset + length]
        offset += length
        if rtype in (1, 28):
            answers.append([str(ipaddress.ip_address(rdata)), ttl])
        elif rtype == 16:
            answers.append([txt_strings(rdata), ttl])
    result: dict[str, object] = {"rcode": flags & 0xF, "answers": answers}
    if flags & 0x0200:
        result["truncated"] = True
    return result


if __name__ == "__main__":
    server, name, kind = sys.argv[1:4]
    over_tcp = sys.argv[4:] == ["--tcp"]
    sys.stdout.write(json.dumps(parse(query(server, name, TYPES[kind], over_tcp))) + "\n")
