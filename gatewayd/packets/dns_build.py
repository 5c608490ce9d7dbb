"""``build_negative_answer``: the reply the gateway gives to a query for a name policy denies.

The reply tells the agent's resolver at once that the name does not resolve, instead of
letting it time out or reach a server it may not reach:

* ``NXDOMAIN`` (RFC 1035 §4.1.1 name error): the name does not exist. With ``soa_name``
  the authority section carries an SOA record owned by that name, whose TTL and MINIMUM
  are both ``ttl``, so resolvers cache the denial for ``ttl`` seconds (RFC 2308 §3, §5).
  Without it there is no SOA and resolvers do not cache the answer.
* ``REFUSED``: the server will not answer for policy reasons; no SOA (``soa_name`` is
  not used), nothing for resolvers to cache.

The reply has the query's ID, QR and RA set, AA, TC and AD clear, RD and CD copied
(RFC 1035 §4.1.1, RFC 4035 §3.1.6), opcode QUERY, the question echoed byte for byte
(letter case included, which resolvers randomizing it check) and no answer records. When
the query carries an OPT record the reply carries one too (RFC 6891 §7): version 0,
a UDP payload size of ``EDNS_UDP_PAYLOAD_SIZE``, the DO bit copied (RFC 3225 §3), no
options. The SOA's MNAME is its owner and its RNAME ``hostmaster.`` under it, both
compressed; should the reply still not fit the size the query allows (512 bytes without
EDNS, RFC 1035 §4.2.1), the SOA is left out rather than the reply truncated.
"""

from __future__ import annotations

import struct
from typing import Final, Literal

from gatewayd.errors import ParseError
from gatewayd.packets.dns import (
    DNS_CLASS_IN,
    DNS_OPCODE_QUERY,
    DNS_RCODE_NXDOMAIN,
    DNS_RCODE_REFUSED,
    DNS_TYPE_OPT,
    DNS_TYPE_SOA,
    HEADER_LEN,
    MAX_NAME_LENGTH,
    MAX_TTL,
    DnsMessage,
    DnsName,
    parse_dns_message,
)

NegativeRcode = Literal["NXDOMAIN", "REFUSED"]

EDNS_UDP_PAYLOAD_SIZE: Final = 1232
"""The UDP payload size the gateway's replies advertise (the DNS Flag Day 2020 value)."""
CLASSIC_UDP_SIZE: Final = 512

SOA_SERIAL: Final = 1
SOA_REFRESH: Final = 3600
SOA_RETRY: Final = 600
SOA_EXPIRE: Final = 86400

_RCODES: Final = {"NXDOMAIN": DNS_RCODE_NXDOMAIN, "REFUSED": DNS_RCODE_REFUSED}
_QR: Final = 0x8000
_RD: Final = 0x0100
_RA: Final = 0x0080
_CD: Final = 0x0010
_DO: Final = 0x8000
_HOSTMASTER: Final = b"\x0ahostmaster"

# id, flags, question, answer, authority and additional counts
_HEADER = struct.Struct("!6H")
# type, class
_QUESTION = struct.Struct("!HH")
# type, class, TTL, RDATA length
_RECORD = struct.Struct("!HHIH")
# serial, refresh, retry, expire, minimum
_SOA_TIMERS = struct.Struct("!5I")


def build_negative_answer(
    query: bytes,
    *,
    rcode: NegativeRcode,
    ttl: int = 60,
    soa_name: str | None = None,
) -> bytes:
    """The ``rcode`` reply to ``query``, as the module describes it.

    ``ParseError`` if ``query`` is not a well-formed query (QR clear, opcode QUERY) with
    exactly one question, no answer or authority records and none missing; additional
    records other than OPT are accepted and not echoed. ``ValueError`` for an ``rcode``
    other than the two, a ``ttl`` outside 0..2**31 - 1, or a ``soa_name`` that is not a
    domain name.
    """
    if rcode not in _RCODES:
        raise ValueError(f"rcode {rcode!r}, expected NXDOMAIN or REFUSED")
    if not 0 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl {ttl} outside 0..{MAX_TTL}")
    soa_owner = DnsName.from_text(soa_name) if soa_name is not None else None
    message = parse_dns_message(query)
    _check_query(message)
    question = message.questions[0]
    question_wire = question.name.to_wire() + _QUESTION.pack(question.qtype, question.qclass)
    flags = _QR | _RA | _RCODES[rcode]
    if message.flags.rd:
        flags |= _RD
    if message.flags.cd:
        flags |= _CD
    size_limit = CLASSIC_UDP_SIZE
    opt = b""
    if message.edns is not None:
        size_limit = max(CLASSIC_UDP_SIZE, message.edns.udp_payload_size)
        opt = b"\x00" + _RECORD.pack(
            DNS_TYPE_OPT, EDNS_UDP_PAYLOAD_SIZE, _DO if message.edns.dnssec_ok else 0, 0
        )
    authority = b""
    if soa_owner is not None and rcode == "NXDOMAIN":
        authority = _soa_record(soa_owner, HEADER_LEN + len(question_wire), ttl)
        if HEADER_LEN + len(question_wire) + len(authority) + len(opt) > size_limit:
            authority = b""
    header = _HEADER.pack(message.id, flags, 1, 0, int(bool(authority)), int(bool(opt)))
    return header + question_wire + authority + opt


def query_answered_by(response: DnsMessage) -> bytes:
    """The query ``response`` answers, as bytes: its id, its RD and CD flags and its first
    question (``build_negative_answer`` can then answer it afresh). ``ParseError`` for a
    message without a question."""
    if not response.questions:
        raise ParseError("a response without a question answers no query")
    question = response.questions[0]
    flags = (_RD if response.flags.rd else 0) | (_CD if response.flags.cd else 0)
    return (_HEADER.pack(response.id, flags, 1, 0, 0, 0) + question.name.to_wire()
            + _QUESTION.pack(question.qtype, question.qclass))


def _check_query(message: DnsMessage) -> None:
    if message.flags.qr:
        raise ParseError("not a query: QR is set")
    if message.flags.opcode != DNS_OPCODE_QUERY:
        raise ParseError(f"opcode {message.flags.opcode}, expected QUERY ({DNS_OPCODE_QUERY})")
    if len(message.questions) != 1:
        raise ParseError(f"{len(message.questions)} questions, expected 1")
    if message.answers or message.authority:
        raise ParseError("query with answer or authority records")
    if message.missing_records:
        raise ParseError("query cut short")


def _soa_record(owner: DnsName, owner_at: int, ttl: int) -> bytes:
    """An SOA record owned by ``owner``, written at offset ``owner_at`` of the reply."""
    pointer = (0xC000 | owner_at).to_bytes(2, "big")
    fits = owner.wire_length + len(_HOSTMASTER) <= MAX_NAME_LENGTH
    rname = _HOSTMASTER + pointer if fits else pointer
    rdata = pointer + rname + _SOA_TIMERS.pack(SOA_SERIAL, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, ttl)
    return owner.to_wire() + _RECORD.pack(DNS_TYPE_SOA, DNS_CLASS_IN, ttl, len(rdata)) + rdata
