"""``parse_dns_message``: a DNS message (RFC 1035) as it crosses the gateway, to a ``DnsMessage``.

The verdict engine reads the answers agents receive, to learn which names resolved to which
addresses and for how long, and to measure TXT payloads. Everything a message holds comes
from whoever answered, so the reader trusts nothing in it and never repairs it: a message
parses whole, or ``ParseError`` says briefly why not.

What is accepted (anything else raises ``ParseError``):

* A 12-byte header, then exactly the questions and records its four counts announce, then
  nothing: a missing record and a trailing byte are both malformed. The one exception is a
  message with TC (truncated) set: it may stop at a record boundary anywhere after the
  question section, as servers cut an answer that does not fit. The records present are
  read, the sections after the cut are empty, and ``missing_records`` says how many the
  header counted in vain. The question section must be whole even then, and a message that
  stops inside a record is malformed whatever its flags: no partial record is kept.
* At most ``max_message_size`` bytes, ``max_records_per_section`` entries in any section and
  ``max_total_records`` in all, as the header counts them (checked before anything is read).
* Names (RFC 1035 §3.1, §4.1.4): labels of up to 63 octets, at most 255 octets in all on the
  wire. A compression pointer must point backwards, past the header, to labels that end
  before the part of the name that points to them (so no name is read twice, no pointer
  loops), with at most ``max_pointer_jumps`` pointers in one name. Label types 01
  (extended, RFC 6891 §5) and 10 (reserved) are refused. Case is kept as received;
  ``DnsName.normalized`` is the lower-case form names are compared by.
* RDATA decoded by type: A (4 bytes) and AAAA (16) in class IN; CNAME, NS and PTR (one
  name filling the data exactly); TXT (one or more character-strings filling it exactly).
  Any other type, an A/AAAA of another class, and an empty RDATA in class ANY or NONE (the
  RFC 2136 update forms) are kept by type and length only.
* EDNS (RFC 6891): at most one OPT record, in the additional section, owned by the root,
  its options well framed; it stays in ``additional`` and is also read into ``edns``. A
  TSIG record may only be the last additional record (RFC 8945 §5.1).

Header flags are reported, not judged: a query with answers or an unknown opcode parses.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from gatewayd.errors import ParseError

MAX_DNS_MESSAGE_SIZE: Final = 65535
"""Default bound on a message's size: the most a TCP length prefix or a UDP datagram allows."""
MAX_DNS_RECORDS_PER_SECTION: Final = 1024
"""Default bound on the entries any one section may count."""
MAX_DNS_TOTAL_RECORDS: Final = 2048
"""Default bound on the questions and records a message may count in all."""
MAX_DNS_POINTER_JUMPS: Final = 32
"""Default bound on the compression pointers followed in one name."""
MAX_CNAME_CHAIN: Final = 16
"""Default bound on the CNAMEs ``DnsMessage.resolved_addresses`` follows from one name."""
MAX_TCP_DNS_FRAME: Final = 2 + 65535
"""The most bytes a DNS-over-TCP reader holds to complete one message (prefix and message)."""

HEADER_LEN: Final = 12
MAX_NAME_LENGTH: Final = 255
MAX_TTL: Final = 2**31 - 1

DNS_TYPE_A: Final = 1
DNS_TYPE_NS: Final = 2
DNS_TYPE_CNAME: Final = 5
DNS_TYPE_SOA: Final = 6
DNS_TYPE_PTR: Final = 12
DNS_TYPE_TXT: Final = 16
DNS_TYPE_AAAA: Final = 28
DNS_TYPE_OPT: Final = 41
DNS_TYPE_TSIG: Final = 250

DNS_CLASS_IN: Final = 1
DNS_CLASS_NONE: Final = 254
DNS_CLASS_ANY: Final = 255

DNS_OPCODE_QUERY: Final = 0
DNS_RCODE_NOERROR: Final = 0
DNS_RCODE_NXDOMAIN: Final = 3
DNS_RCODE_REFUSED: Final = 5

_ADDRESS_LENGTH: Final = {DNS_TYPE_A: 4, DNS_TYPE_AAAA: 16}
_NAME_TYPES: Final = {DNS_TYPE_NS: "NS", DNS_TYPE_CNAME: "CNAME", DNS_TYPE_PTR: "PTR"}
_SECTIONS: Final = ("question", "answer", "authority", "additional")
_OVERLAP: Final = "compressed name runs into the part that points to it"

# id, flags, question, answer, authority and additional counts
_HEADER = struct.Struct("!6H")
# type, class
_QUESTION = struct.Struct("!HH")
# type, class, TTL, RDATA length
_RECORD = struct.Struct("!HHIH")
# option code, option length
_OPTION = struct.Struct("!HH")

# Presentation form of label bytes (RFC 1035 §5.1, as dnspython and BIND write it).
_SPECIAL: Final = b'"().;\\@$'
_PLAIN: Final = bytes(c for c in range(0x21, 0x7F) if c not in _SPECIAL)
_BYTE_TEXT: Final = tuple(
    chr(c) if c in _PLAIN else "\\" + chr(c) if c in _SPECIAL else f"\\{c:03d}" for c in range(256)
)


def _label_text(label: bytes) -> str:
    if not label.translate(None, _PLAIN):
        return label.decode("ascii")
    return "".join([_BYTE_TEXT[c] for c in label])


class DnsName(NamedTuple):
    """A domain name: its labels, most specific first, as received (the root has none).

    Equality of ``DnsName`` values is exact, case included; DNS compares names without
    regard to ASCII case (RFC 4343), so compare ``normalized`` instead.
    """

    labels: tuple[bytes, ...]

    @property
    def text(self) -> str:
        """Presentation form, case kept, with the final dot: ``www.Example.com.``, ``.``.

        Dots, backslashes and the other special characters inside a label are escaped with
        a backslash, bytes outside printable ASCII as ``\\DDD``, so the text says where the
        labels end.
        """
        return "".join([_label_text(label) + "." for label in self.labels]) or "."

    @property
    def normalized(self) -> str:
        """The text names compare by: ASCII lower-case, no final dot (the root is ``.``)."""
        return ".".join([_label_text(label.lower()) for label in self.labels]) or "."

    @property
    def wire_length(self) -> int:
        """Octets the name takes on the wire uncompressed, the final zero octet included."""
        return sum(len(label) + 1 for label in self.labels) + 1

    def to_wire(self) -> bytes:
        """The name in wire form, uncompressed."""
        return b"".join([bytes((len(label),)) + label for label in self.labels]) + b"\x00"

    @classmethod
    def from_text(cls, text: str) -> DnsName:
        """The name ``text`` writes in presentation form; ``ValueError`` if it is not one.

        ``\\.`` and ``\\DDD`` escapes are read as ``text`` writes them; the final dot is
        optional, and ``""`` or ``"."`` is the root. ASCII only: an internationalized name is
        given in its A-label (``xn--``) form.
        """
        if text in ("", "."):
            return cls(())
        if not text.isascii():
            raise ValueError(f"name {text!r} is not ASCII; give its A-label form")
        labels: list[bytes] = []
        label = bytearray()
        index, end = 0, len(text)
        while index < end:
            char = text[index]
            if char == "\\":
                digits = text[index + 1 : index + 4]
                if len(digits) == 3 and digits.isdigit():
                    if int(digits) > 255:
                        raise ValueError(f"escape \\{digits} in {text!r} is above 255")
                    label.append(int(digits))
                    index += 4
                elif digits[:1].isdigit():
                    raise ValueError(f"escape in {text!r} needs three digits")
                elif index + 1 < end:
                    label.append(ord(text[index + 1]))
                    index += 2
                else:
                    raise ValueError(f"name {text!r} ends with a lone backslash")
                continue
            if char == ".":
                if not label:
                    raise ValueError(f"name {text!r} has an empty label")
                labels.append(bytes(label))
                label.clear()
            else:
                label.append(ord(char))
            index += 1
        if label:
            labels.append(bytes(label))
        if any(len(label) > 63 for label in labels):
            raise ValueError(f"name {text!r} has a label longer than 63 octets")
        name = cls(tuple(labels))
        if name.wire_length > MAX_NAME_LENGTH:
            raise ValueError(f"name {text!r} is longer than {MAX_NAME_LENGTH} octets")
        return name


class DnsFlags(NamedTuple):
    """The header's flag word: QR, opcode, AA, TC, RD, RA, AD, CD and the 4-bit RCODE."""

    qr: bool
    opcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    ad: bool
    cd: bool
    rcode: int


class Question(NamedTuple):
    """One entry of the question section."""

    name: DnsName
    qtype: int
    qclass: int


class ResourceRecord(NamedTuple):
    """One resource record, its RDATA decoded where the type is one the gateway reads.

    ``address`` is the packed address of an A or AAAA record of class IN; ``target`` the
    name of a CNAME, NS or PTR record; ``strings`` the character-strings of a TXT record.
    Other records keep only ``rdata_len``. For the OPT pseudo-record ``rclass`` and ``ttl``
    hold the EDNS fields, which ``DnsMessage.edns`` spells out.
    """

    name: DnsName
    rtype: int
    rclass: int
    ttl: int
    rdata_len: int
    address: bytes | None = None
    target: DnsName | None = None
    strings: tuple[bytes, ...] = ()

    @property
    def txt_size(self) -> int:
        """The bytes of TXT payload this record carries (length octets not counted)."""
        return sum(len(string) for string in self.strings)


class EdnsOption(NamedTuple):
    """One option of the OPT record (RFC 6891 §6.1.2), its data undecoded."""

    code: int
    data: bytes


class Edns(NamedTuple):
    """What the OPT pseudo-record says (RFC 6891 §6.1.3)."""

    udp_payload_size: int
    extended_rcode: int
    version: int
    dnssec_ok: bool
    options: tuple[EdnsOption, ...]


class Resolution(NamedTuple):
    """An address a response gave for a question's name.

    ``name`` is the question's name, normalized; ``via`` the CNAME targets followed to reach
    the address record, normalized, in order (empty when the name itself owns it); ``ttl``
    the least TTL along the way, in seconds.
    """

    name: str
    address: bytes
    ttl: int
    via: tuple[str, ...]


class DnsMessage(NamedTuple):
    """A whole DNS message, as ``parse_dns_message`` read it.

    ``additional`` includes the OPT record when there is one. ``missing_records`` is 0
    unless the message has TC set and stops early: then it counts the records the header
    announced that are not there.
    """

    id: int
    flags: DnsFlags
    questions: tuple[Question, ...]
    answers: tuple[ResourceRecord, ...]
    authority: tuple[ResourceRecord, ...]
    additional: tuple[ResourceRecord, ...]
    edns: Edns | None
    missing_records: int

    @property
    def is_response(self) -> bool:
        """Whether QR is set."""
        return self.flags.qr

    @property
    def rcode(self) -> int:
        """The response code, with the EDNS extended bits above the header's four."""
        if self.edns is None:
            return self.flags.rcode
        return (self.edns.extended_rcode << 4) | self.flags.rcode

    def txt_bytes(self) -> int:
        """The TXT payload bytes in the answer section, every class (length octets not counted)."""
        return sum(record.txt_size for record in self.answers)

    def resolved_addresses(self, *, max_chain: int = MAX_CNAME_CHAIN) -> list[Resolution]:
        """The A and AAAA addresses the answer section gives each question's name.

        Only a NOERROR response resolves anything, only class IN records count, and names
        compare normalized. From each distinct question name of class IN or ANY: when the
        answer section holds A or AAAA records owned by the name, each is a
        ``Resolution``; otherwise, when it holds exactly one CNAME owned by the name, its
        target is followed the same way, up to ``max_chain`` CNAMEs. A name owning two
        CNAMEs (RFC 2181 §10.1 allows one), a loop, or a chain longer than ``max_chain``
        resolves to nothing. TTLs above 2**31 - 1 count as 0 (RFC 2181 §8).
        """
        if not self.is_response or self.rcode != DNS_RCODE_NOERROR:
            return []
        addresses: dict[str, list[tuple[bytes, int]]] = {}
        aliases: dict[str, list[tuple[str, int]]] = {}
        for record in self.answers:
            if record.rclass != DNS_CLASS_IN:
                continue
            ttl = record.ttl if record.ttl <= MAX_TTL else 0
            if record.address is not None:
                addresses.setdefault(record.name.normalized, []).append((record.address, ttl))
            elif record.rtype == DNS_TYPE_CNAME and record.target is not None:
                owner = record.name.normalized
                aliases.setdefault(owner, []).append((record.target.normalized, ttl))
        resolutions: list[Resolution] = []
        asked: set[str] = set()
        for question in self.questions:
            name = question.name.normalized
            if question.qclass not in (DNS_CLASS_IN, DNS_CLASS_ANY) or name in asked:
                continue
            asked.add(name)
            current, least_ttl, path = name, MAX_TTL, [name]
            while current not in addresses:
                targets = aliases.get(current, [])
                if len(targets) != 1 or len(path) > max_chain:
                    break
                current, ttl = targets[0]
                if current in path:
                    break
                path.append(current)
                least_ttl = min(least_ttl, ttl)
            else:
                via = tuple(path[1:])
                resolutions.extend(
                    Resolution(name, address, min(least_ttl, ttl), via)
                    for address, ttl in addresses[current]
                )
        return resolutions


def parse_dns_message(
    data: bytes,
    *,
    max_message_size: int = MAX_DNS_MESSAGE_SIZE,
    max_records_per_section: int = MAX_DNS_RECORDS_PER_SECTION,
    max_total_records: int = MAX_DNS_TOTAL_RECORDS,
    max_pointer_jumps: int = MAX_DNS_POINTER_JUMPS,
) -> DnsMessage:
    """The DNS message ``data``; ``ParseError`` with a short reason if it is malformed."""
    size = len(data)
    if size > max_message_size:
        raise ParseError(f"DNS message of {size} bytes exceeds {max_message_size}")
    if size < HEADER_LEN:
        raise ParseError("DNS header cut short")
    ident, word, *counts = _HEADER.unpack_from(data)
    for section, count in zip(_SECTIONS, counts, strict=True):
        if count > max_records_per_section:
            raise ParseError(
                f"{section} section of {count} entries exceeds {max_records_per_section}"
            )
    if sum(counts) > max_total_records:
        raise ParseError(f"{sum(counts)} questions and records exceed {max_total_records}")
    flags = _flags(word)
    offset = HEADER_LEN
    questions: list[Question] = []
    for index in range(counts[0]):
        if offset == size:
            raise ParseError(f"question section cut short: {index} of {counts[0]} entries")
        name, offset = _read_name(data, offset, size, max_pointer_jumps)
        if offset + _QUESTION.size > size:
            raise ParseError("question cut short")
        qtype, qclass = _QUESTION.unpack_from(data, offset)
        offset += _QUESTION.size
        questions.append(Question(name, qtype, qclass))
    sections: list[tuple[ResourceRecord, ...]] = []
    edns: Edns | None = None
    missing = 0
    for section, count in zip(_SECTIONS[1:], counts[1:], strict=True):
        records: list[ResourceRecord] = []
        for index in range(count):
            if missing:
                break
            if offset == size:
                if not flags.tc:
                    raise ParseError(f"{section} section cut short: {index} of {count} records")
                missing = sum(counts[len(sections) + 1 :]) - index
                break
            record, start, offset = _read_record(data, offset, max_pointer_jumps)
            if record.rtype == DNS_TYPE_OPT:
                if section != "additional":
                    raise ParseError(f"OPT record in the {section} section")
                if edns is not None:
                    raise ParseError("second OPT record")
                if record.name.labels:
                    raise ParseError("OPT record not owned by the root")
                edns = _edns(record, data, start, offset)
            elif record.rtype == DNS_TYPE_TSIG and (section != "additional" or index != count - 1):
                raise ParseError("TSIG record not last in the additional section")
            records.append(record)
        sections.append(tuple(records))
    if offset != size:
        raise ParseError(f"trailing bytes after the last record ({size - offset})")
    answers, authority, additional = sections
    return DnsMessage(ident, flags, tuple(questions), answers, authority, additional, edns, missing)


def _read_name(data: bytes, offset: int, limit: int, max_pointer_jumps: int) -> tuple[DnsName, int]:
    """The name at ``offset`` and the offset just after it (after its first pointer, if any).

    The name's own labels must end before ``limit``. A pointer must go back, past the
    header, to before the part of the name that holds it, and the labels it leads to must
    end before that part begins: each jump reads new bytes, lower in the message.
    """
    labels: list[bytes] = []
    wire_length = 1
    segment_start = offset
    end = -1
    jumps = 0
    while True:
        if offset >= limit:
            raise ParseError("name cut short" if end < 0 else _OVERLAP)
        length = data[offset]
        kind = length & 0xC0
        if kind == 0:
            if length == 0:
                return DnsName(tuple(labels)), end if end >= 0 else offset + 1
            offset += 1
            stop = offset + length
            if stop > limit:
                raise ParseError("label cut short" if end < 0 else _OVERLAP)
            wire_length += length + 1
            if wire_length > MAX_NAME_LENGTH:
                raise ParseError(f"name longer than {MAX_NAME_LENGTH} octets")
            labels.append(data[offset:stop])
            offset = stop
        elif kind == 0xC0:
            if offset + 2 > limit:
                raise ParseError("compression pointer cut short" if end < 0 else _OVERLAP)
            target = ((length & 0x3F) << 8) | data[offset + 1]
            if end < 0:
                end = offset + 2
            if target >= segment_start:
                raise ParseError("compression pointer does not point backwards")
            if target < HEADER_LEN:
                raise ParseError("compression pointer into the header")
            jumps += 1
            if jumps > max_pointer_jumps:
                raise ParseError(f"more than {max_pointer_jumps} compression pointers in a name")
            limit = segment_start
            offset = segment_start = target
        else:
            kind_bits = "01 (extended)" if kind == 0x40 else "10 (reserved)"
            raise ParseError(f"label type {kind_bits}")


def _flags(word: int) -> DnsFlags:
    return DnsFlags(
        qr=bool(word & 0x8000),
        opcode=(word >> 11) & 0x0F,
        aa=bool(word & 0x0400),
        tc=bool(word & 0x0200),
        rd=bool(word & 0x0100),
        ra=bool(word & 0x0080),
        ad=bool(word & 0x0020),
        cd=bool(word & 0x0010),
        rcode=word & 0x0F,
    )


def _read_record(
    data: bytes, offset: int, max_pointer_jumps: int
) -> tuple[ResourceRecord, int, int]:
    """The record at ``offset``, where its RDATA starts, and where it ends."""
    size = len(data)
    name, offset = _read_name(data, offset, size, max_pointer_jumps)
    start = offset + _RECORD.size
    if start > size:
        raise ParseError("record header cut short")
    rtype, rclass, ttl, rdata_len = _RECORD.unpack_from(data, offset)
    end = start + rdata_len
    if end > size:
        raise ParseError(f"type {rtype} record data cut short")
    record = ResourceRecord(name, rtype, rclass, ttl, rdata_len)
    if rdata_len == 0 and rclass in (DNS_CLASS_ANY, DNS_CLASS_NONE):
        return record, start, end
    if rtype in _ADDRESS_LENGTH and rclass == DNS_CLASS_IN:
        expected = _ADDRESS_LENGTH[rtype]
        if rdata_len != expected:
            kind = "A" if rtype == DNS_TYPE_A else "AAAA"
            raise ParseError(f"{kind} record of {rdata_len} bytes, expected {expected}")
        return record._replace(address=data[start:end]), start, end
    if rtype in _NAME_TYPES:
        target, name_end = _read_name(data, start, end, max_pointer_jumps)
        if name_end != end:
            raise ParseError(f"{_NAME_TYPES[rtype]} record data longer than its name")
        return record._replace(target=target), start, end
    if rtype == DNS_TYPE_TXT:
        return record._replace(strings=_character_strings(data, start, end)), start, end
    return record, start, end


def _character_strings(data: bytes, offset: int, end: int) -> tuple[bytes, ...]:
    strings: list[bytes] = []
    while offset < end:
        stop = offset + 1 + data[offset]
        if stop > end:
            raise ParseError("TXT character-string runs past its record")
        strings.append(data[offset + 1 : stop])
        offset = stop
    if not strings:
        raise ParseError("TXT record without a character-string")
    return tuple(strings)


def _edns(record: ResourceRecord, data: bytes, offset: int, end: int) -> Edns:
    options: list[EdnsOption] = []
    while offset < end:
        if offset + _OPTION.size > end:
            raise ParseError("EDNS option header cut short")
        code, length = _OPTION.unpack_from(data, offset)
        offset += _OPTION.size
        if offset + length > end:
            raise ParseError("EDNS option data cut short")
        options.append(EdnsOption(code, data[offset : offset + length]))
        offset += length
    return Edns(
        udp_payload_size=record.rclass,
        extended_rcode=record.ttl >> 24,
        version=(record.ttl >> 16) & 0xFF,
        dnssec_ok=bool(record.ttl & 0x8000),
        options=tuple(options),
    )


def split_tcp_dns(stream: bytes) -> tuple[list[bytes], int]:
    """The whole messages at the start of a DNS-over-TCP byte stream, and the bytes they take.

    On TCP each message is preceded by its length as two octets (RFC 1035 §4.2.2, RFC 7766
    §8). An incomplete message at the end is not an error: it is left for the caller to
    complete, and the count of bytes consumed stops before it (at most
    ``MAX_TCP_DNS_FRAME`` bytes need holding for that). A length of zero cannot start a
    message, so the stream is out of step: ``ParseError``. The messages themselves are not
    parsed.
    """
    messages: list[bytes] = []
    offset, size = 0, len(stream)
    while offset + 2 <= size:
        length = (stream[offset] << 8) | stream[offset + 1]
        if length == 0:
            raise ParseError("zero-length DNS message on TCP")
        end = offset + 2 + length
        if end > size:
            break
        messages.append(stream[offset + 2 : end])
        offset = end
    return messages, offset
