"""Client Initial datagrams from aioquic, a real QUIC stack: a test dependency only.

``client_initials`` starts a client connection and returns the UDP payloads it sends
first, without any network: aioquic is sans-IO, so nothing leaves the process. The
ClientHello in them has fresh keys, random and connection IDs each call. ``decrypt_initial``
is aioquic's own reading of such a packet, as the server would open it: an independent
reference for ``parse_quic_initial``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aioquic.buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import pull_quic_header

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF


def client_initials(
    server_name: str | None, alpn: Sequence[str], *, version: int = QUIC_V1
) -> list[bytes]:
    """The datagrams an aioquic client sends to open a connection to ``server_name``."""
    configuration = QuicConfiguration(
        is_client=True,
        server_name=server_name,
        alpn_protocols=list(alpn),
        original_version=version,
    )
    connection = QuicConnection(configuration=configuration)
    connection.connect(("192.0.2.1", 443), now=0.0)
    return [data for data, _ in connection.datagrams_to_send(now=0.0)]


def decrypt_initial(datagram: bytes) -> tuple[bytes, int, int]:
    """aioquic's reading of the client Initial at the start of ``datagram``, as a server's.

    Returns the plaintext payload, the packet number and the packet's size.
    """
    buf = Buffer(data=datagram)
    header = pull_quic_header(buf, host_cid_length=8)
    end = header.packet_length
    pair = CryptoPair()
    pair.setup_initial(cid=header.destination_cid, is_client=False, version=header.version)
    _, payload, packet_number = pair.decrypt_packet(datagram[:end], buf.tell(), 0)
    return payload, packet_number, end


def protect_initial(
    plain_header: bytes, payload: bytes, packet_number: int, dcid: bytes, *, version: int = QUIC_V1
) -> bytes:
    """aioquic's protection of a client Initial: ``plain_header`` ends with the packet number."""
    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=version)
    return pair.encrypt_packet(plain_header, payload, packet_number)
