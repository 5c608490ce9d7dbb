"""DNS: parse_dns_message against dnspython, real dnsmasq answers and hostile bytes; the
CNAME-following resolver view; TCP framing; the negative answer as dnspython reads it.

dnspython is a test dependency only: it writes messages (with its own name compression)
and, as an independent reader, says what ``parse_dns_message`` should find in them.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gatewayd.errors import ParseError
from gatewayd.packets import (
    DNS_RCODE_REFUSED,
    MAX_CNAME_CHAIN,
    MAX_DNS_POINTER_JUMPS,
    DnsMessage,
    DnsName,
    Resolution,
    build_negative_answer,
    parse_dns_message,
    query_answered_by,
    split_tcp_dns,
)

CORPUS_DIR = Path(__file__).parent / "dns_corpus"
CORPUS = {path.name.removesuffix(".bin"): path.read_bytes() for path in CORPUS_DIR.glob("*.bin")}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ORACLE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

IN = dns.rdataclass.IN
CH = dns.rdataclass.CH
OPT = 41


# --- messages written by hand, for the cases dnspython will not write -----------------------


def header(
    *, ident: int = 0x1234, flags: int = 0x8180, qd: int = 0, an: int = 0, ns: int = 0, ar: int = 0
) -> bytes:
    return struct.pack("!6H", ident, flags, qd, an, ns, ar)


def name(*labels: bytes | str) -> bytes:
    parts = [label.encode() if isinstance(label, str) else label for label in labels]
    return b"".join(bytes((len(part),)) + part for part in parts) + b"\x00"


def pointer(offset: int) -> bytes:
    return (0xC000 | offset).to_bytes(2, "big")


def question(owner: bytes, qtype: int = 1, qclass: int = 1) -> bytes:
    return owner + struct.pack("!HH", qtype, qclass)


def record(owner: bytes, rtype: int, rdata: bytes, *, rclass: int = 1, ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


WWW = name("www", "example", "com")
Q_WWW = question(WWW)  # at offset 12: the owner is a pointer to 12 from then on


def response(*answers: bytes, flags: int = 0x8180, questions: bytes = Q_WWW) -> bytes:
    count = 1 if questions else 0
    return header(flags=flags, qd=count, an=len(answers)) + questions + b"".join(answers)


def wire(message: dns.message.Message) -> bytes:
    """``message`` in wire form, whatever EDNS payload size it advertises."""
    return message.to_wire(max_size=65535)


# --- dnspython's reading, in the shape of ours ------------------------------------------------


def _rdata_fields(rtype: int, rclass: int, rdata: Any) -> Any:
    if rclass == IN and rtype == dns.rdatatype.A:
        return socket.inet_pton(socket.AF_INET, rdata.address)
    if rclass == IN and rtype == dns.rdatatype.AAAA:
        return socket.inet_pton(socket.AF_INET6, rdata.address)
    if rtype in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR):
        return tuple(rdata.target.labels[:-1])
    if rtype == dns.rdatatype.TXT:
        return tuple(rdata.strings)
    return None


def reference(data: bytes) -> dict[str, Any]:
    """What dnspython reads in ``data``, record by record."""
    message = dns.message.from_wire(data, one_rr_per_rrset=True)
    sections: dict[str, Any] = {
        "id": message.id,
        "flags": message.flags & 0x87B0,
        "opcode": message.opcode(),
        "rcode": message.rcode(),
        "questions": [
            (tuple(entry.name.labels[:-1]), entry.rdtype, entry.rdclass)
            for entry in message.question
        ],
    }
    for key, section in (
        ("answers", message.answer),
        ("authority", message.authority),
        ("additional", message.additional),
    ):
        sections[key] = [
            (
                tuple(rrset.name.labels[:-1]),
                rrset.rdtype,
                rrset.rdclass,
                rrset.ttl,
                _rdata_fields(rrset.rdtype, rrset.rdclass, rrset[0]),
            )
            for rrset in section
        ]
    sections["edns"] = (
        None
        if message.edns < 0
        else (
            message.payload,
            message.edns,
            bool(message.ednsflags & dns.flags.DO),
            [(option.otype, option.to_wire()) for option in message.options],
        )
    )
    return sections


def ours(parsed: DnsMessage) -> dict[str, Any]:
    """The same shape, from ``parse_dns_message``."""
    flags = parsed.flags
    word = (
        (flags.qr << 15)
        | (flags.opcode << 11)
        | (flags.aa << 10)
        | (flags.tc << 9)
        | (flags.rd << 8)
        | (flags.ra << 7)
        | (flags.ad << 5)
        | (flags.cd << 4)
    )

    def decoded(rr: Any) -> Any:
        if rr.address is not None:
            return rr.address
        if rr.target is not None:
            return rr.target.labels
        return rr.strings or None

    def records(section: tuple[Any, ...]) -> list[Any]:
        return [
            (rr.name.labels, rr.rtype, rr.rclass, rr.ttl, decoded(rr))
            for rr in section
            if rr.rtype != OPT
        ]

    edns = parsed.edns
    return {
        "id": parsed.id,
        "flags": word & 0x87B0,
        "opcode": flags.opcode,
        "rcode": parsed.rcode,
        "questions": [(q.name.labels, q.qtype, q.qclass) for q in parsed.questions],
        "answers": records(parsed.answers),
        "authority": records(parsed.authority),
        "additional": records(parsed.additional),
        "edns": None
        if edns is None
        else (
            edns.udp_payload_size,
            edns.version,
            edns.dnssec_ok,
            [(option.code, option.data) for option in edns.options],
        ),
    }


def assert_consistent(parsed: DnsMessage, data: bytes) -> None:
    """What holds for any message parse_dns_message accepts."""
    counts = struct.unpack_from("!4H", data, 4)
    present = (
        len(parsed.questions),
        len(parsed.answers),
        len(parsed.authority),
        len(parsed.additional),
    )
    assert present[0] == counts[0]
    assert sum(present) + parsed.missing_records == sum(counts)
    assert parsed.missing_records == 0 or parsed.flags.tc
    assert parsed.id == int.from_bytes(data[:2], "big")
    records = parsed.answers + parsed.authority + parsed.additional
    names = [entry.name for entry in parsed.questions] + [rr.name for rr in records]
    names += [rr.target for rr in records if rr.target is not None]
    for each in names:
        assert each.wire_length <= 255
        assert all(0 < len(label) <= 63 for label in each.labels)
        assert DnsName.from_text(each.text) == each
        assert DnsName.from_text(each.normalized).normalized == each.normalized
    for rr in records:
        if rr.address is not None:
            assert (rr.rtype, rr.rclass, len(rr.address)) in ((1, 1, 4), (28, 1, 16))
        if rr.strings:
            assert rr.rtype == 16
            assert rr.rdata_len == rr.txt_size + len(rr.strings)
    assert [rr.rtype for rr in parsed.additional].count(OPT) == (parsed.edns is not None)
    assert parsed.txt_bytes() == sum(rr.txt_size for rr in parsed.answers)
    for resolution in parsed.resolved_addresses():
        assert len(resolution.address) in (4, 16)
        assert 0 <= resolution.ttl < 2**31
    assert parse_dns_message(data) == parsed


def parse_or_refuse(data: bytes) -> DnsMessage | None:
    """The fuzz invariant: a consistent DnsMessage, or ParseError, nothing else."""
    try:
        parsed = parse_dns_message(data)
    except ParseError as err:
        event(f"refused: {' '.join(str(err).split()[:2])}")
        return None
    event(f"parsed, {len(parsed.answers)} answers")
    assert_consistent(parsed, data)
    return parsed


# --- strategies: dnspython messages ----------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
LABELS = st.one_of(
    st.text(_LETTERS, min_size=1, max_size=12).map(str.encode),
    st.text(_LETTERS, min_size=1, max_size=12).map(str.encode),
    st.binary(min_size=1, max_size=63),
)
TTLS = st.integers(0, 2**31 - 1)


@st.composite
def domain_names(draw: st.DrawFn, bases: list[dns.name.Name]) -> dns.name.Name:
    """A name under one of ``bases`` (so that the message compresses), or the base itself."""
    base = draw(st.sampled_from(bases))
    labels = [*draw(st.lists(LABELS, max_size=3)), *base.labels]
    if sum(len(label) + 1 for label in labels) > 255:
        return base
    return dns.name.Name(labels)


@st.composite
def rdatas(draw: st.DrawFn, bases: list[dns.name.Name]) -> dns.rdata.Rdata:
    kind = draw(st.sampled_from(["A", "AAAA", "CNAME", "NS", "PTR", "TXT", "MX", "SOA", "other"]))
    names = domain_names(bases)
    rclass = draw(st.sampled_from([IN, IN, IN, CH]))
    if kind == "A":
        return A(IN, dns.rdatatype.A, str(draw(st.ip_addresses(v=4))))
    if kind == "AAAA":
        return AAAA(IN, dns.rdatatype.AAAA, str(draw(st.ip_addresses(v=6))))
    if kind in ("CNAME", "NS", "PTR"):
        cls = {"CNAME": CNAME, "NS": NS, "PTR": PTR}[kind]
        return cls(rclass, dns.rdatatype.from_text(kind), draw(names))
    if kind == "TXT":
        strings = draw(st.lists(st.binary(max_size=255), min_size=1, max_size=4))
        return TXT(rclass, dns.rdatatype.TXT, strings)
    if kind == "MX":
        return MX(IN, dns.rdatatype.MX, draw(st.integers(0, 65535)), draw(names))
    if kind == "SOA":
        timers = draw(st.lists(st.integers(0, 2**32 - 1), min_size=5, max_size=5))
        return SOA(IN, dns.rdatatype.SOA, draw(names), draw(names), *timers)
    data = draw(st.binary(max_size=40))
    return dns.rdata.GenericRdata(IN, draw(st.integers(65280, 65534)), data)


@st.composite
def dns_messages(draw: st.DrawFn) -> dns.message.Message:
    """A dnspython message with random flags, questions, records and EDNS."""
    bases = [
        dns.name.Name([*draw(st.lists(LABELS, min_size=0, max_size=3)), b""]) for _ in range(3)
    ]
    message = dns.message.Message(id=draw(st.integers(0, 65535)))
    message.flags = draw(st.integers(0, 0xFFFF)) & 0x87B0  # QR AA TC RD RA AD CD
    message.set_opcode(draw(st.sampled_from([0, 1, 2, 4])))
    for _ in range(draw(st.integers(0, 2))):
        message.find_rrset(
            message.question,
            draw(domain_names(bases)),
            draw(st.sampled_from([IN, CH, 255])),
            draw(st.sampled_from([1, 28, 5, 16, 255, 65])),
            create=True,
            force_unique=True,
        )
    for section in (message.answer, message.authority, message.additional):
        for _ in range(draw(st.integers(0, 5))):
            section.append(
                dns.rrset.from_rdata(draw(domain_names(bases)), draw(TTLS), draw(rdatas(bases)))
            )
    rcode = draw(st.integers(0, 15))
    if draw(st.booleans()):
        options = [
            dns.edns.GenericOption(draw(st.integers(65001, 65534)), draw(st.binary(max_size=20)))
            for _ in range(draw(st.integers(0, 2)))
        ]
        message.use_edns(
            draw(st.integers(0, 255)),
            draw(st.sampled_from([0, dns.flags.DO])),
            draw(st.integers(512, 65535)),
            options=options,
        )
        rcode = draw(st.integers(0, 4095))
    message.set_rcode(rcode)
    return message


def _corpus_messages() -> list[bytes]:
    return [CORPUS[key] for key in sorted(CORPUS)]


def valid_messages() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(_corpus_messages()), dns_messages().map(wire))


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A valid message with bytes flipped, cut, inserted, or a compression pointer planted."""
    data = bytearray(draw(valid_messages()))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "flip", "cut", "insert", "pointer", "count"]))
        if action == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif action == "insert":
            index = draw(st.integers(0, len(data)))
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        elif action == "pointer" and len(data) > 13:
            index = draw(st.integers(12, len(data) - 2))
            data[index : index + 2] = pointer(draw(st.integers(0, len(data))))
        elif action == "count" and len(data) >= 12:
            index = draw(st.sampled_from([4, 6, 8, 10]))
            data[index : index + 2] = draw(st.integers(0, 8)).to_bytes(2, "big")
    return bytes(data)


def dns_headed_bytes() -> st.SearchStrategy[bytes]:
    """A header with small counts and any flags, then random bytes: reaches the sections."""
    counts = st.tuples(*[st.integers(0, 3)] * 4)
    return st.builds(
        lambda ident, flags, c, body: (
            header(ident=ident, flags=flags, qd=c[0], an=c[1], ns=c[2], ar=c[3]) + body
        ),
        st.integers(0, 65535),
        st.integers(0, 65535),
        counts,
        st.binary(max_size=200),
    )


# --- against dnspython -------------------------------------------------------------------------


@given(dns_messages())
@ORACLE
def test_dnspython_messages_parse_to_what_dnspython_reads(message: dns.message.Message) -> None:
    data = wire(message)
    parsed = parse_dns_message(data)
    assert ours(parsed) == reference(data)
    assert parsed.rcode == message.rcode()
    assert parsed.missing_records == 0
    assert_consistent(parsed, data)
    source = [rr.name for rr in message.answer] + [q.name for q in message.question]
    parsed_names = [rr.name for rr in parsed.answers] + [q.name for q in parsed.questions]
    for theirs, mine in zip(source, parsed_names, strict=True):
        # dnspython compresses names without regard to case, so a later spelling may be lost.
        assert mine.text.lower() == theirs.to_text().lower()
        assert mine.normalized == theirs.to_text(omit_final_dot=True).lower()
    for rrset, rr in zip(message.answer, parsed.answers, strict=True):
        if isinstance(rrset[0], dns.rdata.GenericRdata):
            assert rr.rdata_len == len(rrset[0].data)


@given(dns_messages())
@ORACLE
def test_txt_bytes_sum_the_answer_strings(message: dns.message.Message) -> None:
    expected = sum(
        len(string)
        for rrset in message.answer
        if rrset.rdtype == dns.rdatatype.TXT
        for rdata in rrset
        for string in rdata.strings
    )
    assert parse_dns_message(wire(message)).txt_bytes() == expected


@pytest.mark.parametrize("key", sorted(key for key in CORPUS if key.endswith(".response")))
def test_corpus_parses_as_dnspython_reads_it(key: str) -> None:
    data = CORPUS[key]
    parsed = parse_dns_message(data)
    assert ours(parsed) == reference(data)
    assert_consistent(parsed, data)


@pytest.mark.parametrize("key", sorted(key for key in CORPUS if key.endswith(".query")))
def test_corpus_queries_parse(key: str) -> None:
    parsed = parse_dns_message(CORPUS[key])
    assert ours(parsed) == reference(CORPUS[key])
    assert not parsed.is_response
    assert len(parsed.questions) == 1


API4, API6 = socket.inet_aton("192.0.2.10"), socket.inet_pton(socket.AF_INET6, "2001:db8::10")
MIRROR = socket.inet_aton("192.0.2.11")
CORPUS_EXPECTED: dict[str, tuple[list[Resolution], int]] = {
    "a": ([Resolution("api.clawgress.test", API4, 300, ())], 0),
    "aaaa": ([Resolution("api.clawgress.test", API6, 300, ())], 0),
    "cname-chain": (
        [
            Resolution(
                "assets.clawgress.test", API4, 300, ("www.clawgress.test", "api.clawgress.test")
            )
        ],
        0,
    ),
    "mixed-case": ([Resolution("mirror.clawgress.test", MIRROR, 300, ())], 0),
    "txt-small": ([], 11),
    "txt-big-tcp": ([], 4 * 199),
    "txt-big-udp-truncated": ([], 0),
    "nxdomain": ([], 0),
    "nodata": ([], 0),
}


@pytest.mark.parametrize("case", sorted(CORPUS_EXPECTED))
def test_corpus_answers_resolve_as_dnsmasq_was_told(case: str) -> None:
    parsed = parse_dns_message(CORPUS[f"{case}.response"])
    resolutions, txt_bytes = CORPUS_EXPECTED[case]
    assert parsed.resolved_addresses() == resolutions
    assert parsed.txt_bytes() == txt_bytes
    assert parsed.is_response


def test_corpus_details() -> None:
    mixed = parse_dns_message(CORPUS["mixed-case.response"])
    assert mixed.questions[0].name.text == "MiRrOr.ClawGress.TEST."
    assert mixed.answers[0].name == mixed.questions[0].name  # echoed, compressed to it
    truncated = parse_dns_message(CORPUS["txt-big-udp-truncated.response"])
    assert truncated.flags.tc and truncated.missing_records == 0 and not truncated.answers
    nxdomain = parse_dns_message(CORPUS["nxdomain.response"])
    assert nxdomain.rcode == 3 and nxdomain.edns is not None
    assert nxdomain.edns.udp_payload_size > 0
    assert CORPUS_DIR.joinpath("README.md").is_file()


# --- hostile bytes -----------------------------------------------------------------------------


@given(st.binary(max_size=300))
@FUZZ
def test_random_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@given(dns_headed_bytes())
@FUZZ
def test_bytes_behind_a_header_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@given(mutated_messages())
@FUZZ
def test_mutated_messages_parse_or_raise_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@given(valid_messages(), st.data())
@ORACLE
def test_a_cut_message_is_refused_unless_tc_allows_the_cut(
    data: bytes, draw: st.DataObject
) -> None:
    whole = parse_dns_message(data)
    length = draw.draw(st.integers(0, len(data) - 1))
    try:
        cut = parse_dns_message(data[:length])
    except ParseError:
        return
    # Only TC lets a message stop early, at a record boundary, after the questions.
    assert whole.flags.tc and cut.missing_records > 0
    assert cut.questions == whole.questions
    present = cut.answers + cut.authority + cut.additional
    assert present == (whole.answers + whole.authority + whole.additional)[: len(present)]


# --- names and compression ---------------------------------------------------------------------


def test_compression_pointers_read_back() -> None:
    data = response(
        record(pointer(12), 5, name("cdn")[:-1] + pointer(24)),  # cdn.com
        record(name("x")[:-1] + pointer(12), 1, bytes(4)),
        record(pointer(16), 1, bytes(4)),  # "example.com", inside the question's name
    )
    parsed = parse_dns_message(data)
    assert [rr.name.normalized for rr in parsed.answers] == [
        "www.example.com",
        "x.www.example.com",
        "example.com",
    ]
    assert parsed.answers[0].target == DnsName((b"cdn", b"com"))


def test_a_pointer_may_lead_to_a_pointer() -> None:
    first = 12 + len(Q_WWW)  # the first answer's owner: a pointer to the question's name
    data = response(record(pointer(12), 1, bytes(4)), record(pointer(first), 1, bytes(4)))
    assert parse_dns_message(data).answers[1].name.normalized == "www.example.com"


def _pointer_chain(depth: int) -> bytes:
    """Questions q0 = "a.", q_k = "a" + pointer to q_(k-1): the last needs ``depth`` jumps."""
    entries = [question(name("a"))]
    offsets = [12]
    for _ in range(depth):
        offsets.append(offsets[-1] + len(entries[-1]))
        entries.append(question(name("a")[:-1] + pointer(offsets[-2])))
    return header(flags=0, qd=len(entries)) + b"".join(entries)


def test_pointer_jumps_are_bounded_by_a_parameter() -> None:
    parsed = parse_dns_message(_pointer_chain(MAX_DNS_POINTER_JUMPS))
    assert len(parsed.questions[-1].name.labels) == MAX_DNS_POINTER_JUMPS + 1
    with pytest.raises(ParseError, match=f"more than {MAX_DNS_POINTER_JUMPS} compression"):
        parse_dns_message(_pointer_chain(MAX_DNS_POINTER_JUMPS + 1))
    assert parse_dns_message(_pointer_chain(3), max_pointer_jumps=3).questions
    with pytest.raises(ParseError, match="more than 2 compression pointers"):
        parse_dns_message(_pointer_chain(3), max_pointer_jumps=2)


def test_names_up_to_255_octets() -> None:
    longest = name(*[b"a" * 63] * 3, b"b" * 61)
    assert len(longest) == 255
    parsed = parse_dns_message(header(flags=0, qd=1) + question(longest))
    assert parsed.questions[0].name.wire_length == 255
    with pytest.raises(ParseError, match="name longer than 255 octets"):
        parse_dns_message(header(flags=0, qd=1) + question(name(*[b"a" * 63] * 3, b"b" * 62)))
    # Long by compression: 200 octets in the question, 60 more in front of a pointer to it.
    long_question = question(name(*[b"q" * 49] * 4))
    too_long = name(b"p" * 59)[:-1] + pointer(12)
    data = header(an=1, qd=1) + long_question + record(too_long, 1, bytes(4))
    with pytest.raises(ParseError, match="name longer than 255 octets"):
        parse_dns_message(data)


def test_normalized_names_compare_lower_case_and_keep_label_boundaries() -> None:
    upper = DnsName((b"WWW", b"Example", b"COM"))
    assert upper.text == "WWW.Example.COM."
    assert upper.normalized == "www.example.com"
    assert upper != DnsName((b"www", b"example", b"com"))  # the value keeps the case
    dotted = DnsName((b"www.example", b"com"))
    assert dotted.normalized == "www\\.example.com" != upper.normalized
    assert DnsName((b"\xc3\x89t\x00",)).normalized == "\\195\\137t\\000"  # ASCII folding only
    assert DnsName(()).normalized == DnsName(()).text == "."


@given(st.lists(LABELS, max_size=6))
@FUZZ
def test_name_text_matches_dnspython_and_reads_back(labels: list[bytes]) -> None:
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        return
    value = DnsName(tuple(labels))
    theirs = dns.name.Name([*labels, b""])
    assert value.text == theirs.to_text()
    assert value.normalized == theirs.to_text(omit_final_dot=True).lower()
    assert DnsName.from_text(value.text) == value
    assert DnsName.from_text(value.text.removesuffix(".")) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a..b", "empty label"),
        (".a", "empty label"),
        ("a" * 64 + ".com", "longer than 63"),
        (".".join(["a" * 63] * 4), "longer than 255"),
        ("exämple.com", "not ASCII"),
        ("a\\", "lone backslash"),
        ("a\\256", "above 255"),
        ("a\\12b", "three digits"),
    ],
)
def test_invalid_name_text(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        DnsName.from_text(text)


# --- malformed messages, each with its reason -------------------------------------------------

_A_RECORD = record(pointer(12), 1, bytes(4))
_OPT_RECORD = b"\x00" + struct.pack("!HHIH", OPT, 1232, 0, 0)
_TSIG = 250

INVALID: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "DNS header cut short"),
    "header cut": (header()[:11], "DNS header cut short"),
    "question missing": (header(qd=1), "question section cut short: 0 of 1"),
    "question cut in its name": ((header(qd=1) + Q_WWW)[:20], "label cut short"),
    "question without type and class": ((header(qd=1) + Q_WWW)[:-1], "question cut short"),
    "answer missing": (header(qd=1, an=2) + Q_WWW + _A_RECORD, "answer section cut short: 1 of 2"),
    "record header cut": (response(_A_RECORD)[:-6], "record header cut short"),
    "record data cut": (response(_A_RECORD)[:-1], "type 1 record data cut short"),
    "trailing byte": (response(_A_RECORD) + b"\x00", r"trailing bytes after the last record \(1\)"),
    "self pointer": (header(qd=1) + question(pointer(12)), "does not point backwards"),
    "forward pointer": (
        header(qd=2) + question(pointer(18)) + question(name("a")),
        "does not point backwards",
    ),
    "pointer into the header": (
        header(qd=1) + question(name("a")[:-1] + pointer(4)),
        "compression pointer into the header",
    ),
    "pointer cut": (header(qd=1) + b"\x01a\xc0", "compression pointer cut short"),
    "loop to its own start": (
        # "a" then a pointer back to the "a": a.a.a.… if pointers only had to precede
        # themselves.
        header(qd=1) + question(b"\x01a" + pointer(12)),
        "does not point backwards",
    ),
    "pointers to each other": (
        header(qd=2) + question(pointer(18)) + question(pointer(12)),
        "does not point backwards",
    ),
    "target runs into the pointing name": (
        # The pointer goes back to offset 16 (the question's type bytes, read as labels),
        # which runs on past offset 19, where the pointing name starts.
        header(qd=1, an=1) + question(name("a"), 1, 0x0101) + record(pointer(16), 1, bytes(4)),
        "runs into the part that points to it",
    ),
    "extended label type": (header(qd=1) + question(b"\x41" + bytes(70)), "label type 01"),
    "reserved label type": (header(qd=1) + question(b"\x81" + bytes(70)), "label type 10"),
    "A of 5 bytes": (response(record(pointer(12), 1, bytes(5))), "A record of 5 bytes"),
    "AAAA of 4 bytes": (response(record(pointer(12), 28, bytes(4))), "AAAA record of 4 bytes"),
    "CNAME longer than its name": (
        response(record(pointer(12), 5, name("a") + b"\x00")),
        "CNAME record data longer than its name",
    ),
    "CNAME name past its data": (
        response(record(pointer(12), 5, name("abc")[:3])),
        "label cut short",
    ),
    "CNAME with no name": (response(record(pointer(12), 5, b"")), "name cut short"),
    "TXT string past its data": (
        response(record(pointer(12), 16, b"\x05abc")),
        "character-string runs past",
    ),
    "TXT without strings": (response(record(pointer(12), 16, b"")), "without a character-string"),
    "OPT in the answer": (response(_OPT_RECORD), "OPT record in the answer section"),
    "two OPT": (header(ar=2) + _OPT_RECORD * 2, "second OPT record"),
    "OPT not owned by the root": (
        header(ar=1) + record(name("a"), OPT, b"", rclass=1232),
        "OPT record not owned by the root",
    ),
    "OPT option cut": (
        header(ar=1) + record(b"\x00", OPT, b"\x00\x0a\x00", rclass=1232),
        "EDNS option header cut short",
    ),
    "OPT option data cut": (
        header(ar=1) + record(b"\x00", OPT, b"\x00\x0a\x00\x08abc", rclass=1232),
        "EDNS option data cut short",
    ),
    "TSIG not last": (
        header(ar=2) + record(name("k"), _TSIG, b"x", rclass=255) + _OPT_RECORD,
        "TSIG record not last",
    ),
    "TSIG in the answer": (response(record(name("k"), _TSIG, b"x")), "TSIG record not last"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_malformed_messages_are_refused_with_a_reason(case: str) -> None:
    data, reason = INVALID[case]
    with pytest.raises(ParseError, match=reason):
        parse_dns_message(data)


def test_edns_opt_and_tsig_where_they_belong() -> None:
    cookie = struct.pack("!HH", 10, 8) + b"cookie!!"
    flags_word = (0x0F << 24) | (0 << 16) | 0x8000  # extended rcode 0x0F, version 0, DO
    opt = b"\x00" + struct.pack("!HHIH", OPT, 4096, flags_word, len(cookie)) + cookie
    data = header(flags=0x8183, ar=2) + opt + record(name("k"), _TSIG, b"sig", rclass=255)
    parsed = parse_dns_message(data)
    assert parsed.edns is not None
    assert (parsed.edns.udp_payload_size, parsed.edns.version, parsed.edns.dnssec_ok) == (
        4096,
        0,
        True,
    )
    assert parsed.edns.options[0] == (10, b"cookie!!")
    assert parsed.rcode == (0x0F << 4) | 3
    assert [rr.rtype for rr in parsed.additional] == [OPT, _TSIG]


def test_records_kept_by_type_and_length() -> None:
    data = response(
        record(pointer(12), 15, b"\x00\x0a" + pointer(12)),  # MX
        record(pointer(12), 1, b"\x00" * 7, rclass=3),  # CHAOS A: another layout
        record(pointer(12), 1, b"", rclass=255),  # RFC 2136 "delete the RRset"
        record(pointer(12), 5, b"", rclass=254),
        record(pointer(12), 5, name("alias"), rclass=3),  # CNAME in any class
    )
    mx, chaos, delete, delete_cname, chaos_cname = parse_dns_message(data).answers
    assert (mx.rtype, mx.rdata_len, mx.address, mx.target, mx.strings) == (15, 4, None, None, ())
    assert (chaos.rdata_len, chaos.address) == (7, None)
    assert (delete.rdata_len, delete.address, delete_cname.target) == (0, None, None)
    assert chaos_cname.target == DnsName((b"alias",))


def test_bounds_are_parameters_with_their_own_errors() -> None:
    data = response(_A_RECORD, _A_RECORD, _A_RECORD)
    assert len(parse_dns_message(data, max_records_per_section=3).answers) == 3
    with pytest.raises(ParseError, match="answer section of 3 entries exceeds 2"):
        parse_dns_message(data, max_records_per_section=2)
    with pytest.raises(ParseError, match="4 questions and records exceed 3"):
        parse_dns_message(data, max_total_records=3)
    with pytest.raises(ParseError, match=f"message of {len(data)} bytes exceeds 40"):
        parse_dns_message(data, max_message_size=40)
    with pytest.raises(ParseError, match="DNS message of 65536 bytes exceeds 65535"):
        parse_dns_message(bytes(65536))
    # The counts are checked before anything is read: a lying header costs nothing.
    with pytest.raises(ParseError, match="additional section of 65535 entries exceeds 1024"):
        parse_dns_message(header(ar=65535))
    with pytest.raises(ParseError, match="2100 questions and records exceed 2048"):
        parse_dns_message(header(an=1000, ns=1000, ar=100))


# --- TC: a truncated answer ---------------------------------------------------------------------

_TC_FLAGS = 0x8380  # QR TC RD RA


def test_tc_lets_the_message_stop_at_a_record_boundary() -> None:
    data = header(flags=_TC_FLAGS, qd=1, an=3, ns=1, ar=2) + Q_WWW + _A_RECORD
    parsed = parse_dns_message(data)
    assert len(parsed.answers) == 1
    assert (parsed.authority, parsed.additional, parsed.edns) == ((), (), None)
    assert parsed.missing_records == 2 + 1 + 2
    assert parsed.resolved_addresses() == [Resolution("www.example.com", bytes(4), 300, ())]
    # Stopping after the question, or in the authority section, is the same.
    assert parse_dns_message(data[: 12 + len(Q_WWW)]).missing_records == 6
    later = header(flags=_TC_FLAGS, qd=1, an=1, ns=2, ar=1) + Q_WWW + _A_RECORD + _A_RECORD
    assert parse_dns_message(later).missing_records == 2


def test_tc_keeps_no_partial_record_and_no_partial_question() -> None:
    data = header(flags=_TC_FLAGS, qd=1, an=2) + Q_WWW + _A_RECORD + _A_RECORD
    for cut in range(len(data) - len(_A_RECORD) + 1, len(data)):
        with pytest.raises(ParseError):
            parse_dns_message(data[:cut])
    with pytest.raises(ParseError, match="question section cut short"):
        parse_dns_message(header(flags=_TC_FLAGS, qd=1, an=1))


def test_without_tc_a_missing_record_is_malformed() -> None:
    data = header(flags=0x8180, qd=1, an=3) + Q_WWW + _A_RECORD
    with pytest.raises(ParseError, match="answer section cut short: 1 of 3 records"):
        parse_dns_message(data)


def test_tc_with_every_record_present_is_whole() -> None:
    parsed = parse_dns_message(response(_A_RECORD, flags=_TC_FLAGS))
    assert parsed.flags.tc and parsed.missing_records == 0


# --- resolved addresses --------------------------------------------------------------------------


def _cname(owner: bytes, target: bytes, ttl: int = 300, rclass: int = 1) -> bytes:
    return record(owner, 5, target, ttl=ttl, rclass=rclass)


def _a(owner: bytes, address: bytes = b"\x0a\x00\x00\x01", ttl: int = 300) -> bytes:
    return record(owner, 1 if len(address) == 4 else 28, address, ttl=ttl)


def _chain(depth: int) -> bytes:
    """www.example.com → c1.x → … → c<depth>.x, which has an A record."""
    links = [_cname(pointer(12), name("c1", "x"))]
    links += [_cname(name(f"c{i}", "x"), name(f"c{i + 1}", "x")) for i in range(1, depth)]
    return response(*links, _a(name(f"c{depth}", "x")))


def test_cname_chain_followed_with_the_least_ttl() -> None:
    data = response(
        _cname(pointer(12), name("edge", "cdn", "net"), ttl=3600),
        _cname(name("edge", "cdn", "net"), name("pop", "cdn", "net"), ttl=30),
        _a(name("pop", "cdn", "net"), ttl=120),
        _a(name("pop", "cdn", "net"), socket.inet_pton(socket.AF_INET6, "2001:db8::1"), ttl=20),
        _a(name("unrelated", "org")),
    )
    assert parse_dns_message(data).resolved_addresses() == [
        Resolution("www.example.com", b"\x0a\x00\x00\x01", 30, ("edge.cdn.net", "pop.cdn.net")),
        Resolution(
            "www.example.com",
            socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
            20,
            ("edge.cdn.net", "pop.cdn.net"),
        ),
    ]


def test_deep_cname_chains_are_bounded() -> None:
    deep = parse_dns_message(_chain(MAX_CNAME_CHAIN + 1))
    assert deep.resolved_addresses() == []
    (resolution,) = deep.resolved_addresses(max_chain=MAX_CNAME_CHAIN + 1)
    assert len(resolution.via) == MAX_CNAME_CHAIN + 1
    (at_bound,) = parse_dns_message(_chain(MAX_CNAME_CHAIN)).resolved_addresses()
    assert at_bound.via[-1] == f"c{MAX_CNAME_CHAIN}.x"
    assert parse_dns_message(_chain(3)).resolved_addresses(max_chain=2) == []


def test_cname_loops_and_forks_resolve_nothing() -> None:
    loop = response(
        _cname(pointer(12), name("b", "x")),
        _cname(name("b", "x"), WWW),
        _a(name("c", "x")),
    )
    assert parse_dns_message(loop).resolved_addresses() == []
    fork = response(
        _cname(pointer(12), name("b", "x")),
        _cname(pointer(12), name("c", "x")),
        _a(name("b", "x")),
        _a(name("c", "x")),
    )
    assert parse_dns_message(fork).resolved_addresses() == []


def test_resolution_compares_names_lower_case() -> None:
    data = response(
        _cname(name("WWW", "EXAMPLE", "com"), name("Target", "Example", "NET")),
        _a(name("target", "example", "net")),
        questions=question(name("www", "Example", "COM")),
    )
    (resolution,) = parse_dns_message(data).resolved_addresses()
    assert (resolution.name, resolution.via) == ("www.example.com", ("target.example.net",))


def test_resolution_only_from_a_noerror_response_in_class_in() -> None:
    answer = _a(pointer(12))
    assert parse_dns_message(response(answer, flags=0x8183)).resolved_addresses() == []
    assert parse_dns_message(response(answer, flags=0x0100)).resolved_addresses() == []
    chaos_question = response(answer, questions=question(WWW, 1, 3))
    assert parse_dns_message(chaos_question).resolved_addresses() == []
    chaos_cname = response(_cname(pointer(12), name("b"), rclass=3), _a(name("b")))
    assert parse_dns_message(chaos_cname).resolved_addresses() == []
    any_class = response(answer, questions=question(WWW, 255, 255))
    assert len(parse_dns_message(any_class).resolved_addresses()) == 1


def test_own_addresses_win_over_a_cname_and_questions_count_once() -> None:
    data = (
        header(qd=2, an=2)
        + Q_WWW
        + question(pointer(12), 28)
        + _cname(pointer(12), name("elsewhere"))
        + _a(pointer(12), ttl=2**31)
    )
    assert parse_dns_message(data).resolved_addresses() == [
        Resolution("www.example.com", b"\x0a\x00\x00\x01", 0, ())  # RFC 2181 §8: read as 0
    ]


@st.composite
def chained_responses(draw: st.DrawFn) -> dns.message.Message:
    """A response to one A question: a CNAME chain, then A records, with unrelated records."""
    qname = dns.name.Name([*draw(st.lists(LABELS, min_size=1, max_size=2)), b"test", b""])
    query = dns.message.make_query(qname, "A")
    message = dns.message.make_response(query)
    depth = draw(st.integers(0, 15))
    owner = qname
    for index in range(depth):
        target = dns.name.Name(
            [f"hop{index}".encode(), *draw(st.sampled_from([[b"a"], [b"b"]])), b""]
        )
        message.answer.append(dns.rrset.from_rdata(owner, draw(TTLS), CNAME(IN, 5, target)))
        owner = target
    addresses = draw(st.lists(st.ip_addresses(v=4).map(str), max_size=3, unique=True))
    if addresses:
        rdatas = [A(IN, 1, address) for address in addresses]
        message.answer.append(dns.rrset.from_rdata_list(owner, draw(TTLS), rdatas))
    noise = dns.name.Name([b"noise", b""])
    message.answer.append(dns.rrset.from_rdata(noise, 5, A(IN, 1, "192.0.2.99")))
    rrsets = message.answer
    order = draw(st.permutations(range(len(rrsets))))
    message.answer = [rrsets[index] for index in order]
    return message


@given(chained_responses())
@ORACLE
def test_resolution_agrees_with_dnspython_chaining(message: dns.message.Message) -> None:
    reparsed = dns.message.from_wire(wire(message))
    chaining = reparsed.resolve_chaining()
    resolutions = parse_dns_message(wire(message)).resolved_addresses()
    if chaining.answer is None:
        assert resolutions == []
        return
    expected = sorted(socket.inet_aton(rdata.address) for rdata in chaining.answer)
    assert sorted(resolution.address for resolution in resolutions) == expected
    assert {resolution.ttl for resolution in resolutions} == {chaining.minimum_ttl}
    via = tuple(rrset[0].target.to_text(omit_final_dot=True).lower() for rrset in chaining.cnames)
    assert {resolution.via for resolution in resolutions} == {via}


# --- DNS over TCP --------------------------------------------------------------------------------


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


def test_split_tcp_dns_whole_messages_and_an_incomplete_tail() -> None:
    first, second = CORPUS["a.response"], CORPUS["txt-big-tcp.response"]
    stream = frame(first) + frame(second) + frame(first)[:7]
    assert split_tcp_dns(stream) == ([first, second], len(frame(first) + frame(second)))
    assert split_tcp_dns(b"") == ([], 0)
    assert split_tcp_dns(b"\x00") == ([], 0)
    assert split_tcp_dns(b"\x00\x05abc") == ([], 0)


def test_split_tcp_dns_refuses_a_zero_length() -> None:
    with pytest.raises(ParseError, match="zero-length DNS message"):
        split_tcp_dns(b"\x00\x00")
    with pytest.raises(ParseError, match="zero-length DNS message"):
        split_tcp_dns(frame(b"abc") + b"\x00\x00" + frame(b"def"))


@given(
    st.lists(st.binary(min_size=1, max_size=300), max_size=6),
    st.lists(st.integers(1, 400), max_size=20),
)
@FUZZ
def test_split_tcp_dns_gives_the_same_messages_whatever_the_segments(
    messages: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frame(message) for message in messages)
    for chunk_sizes in (cuts or [len(stream) or 1], [1]):
        received: list[bytes] = []
        buffer = b""
        position = 0
        index = 0
        while position < len(stream):
            size = chunk_sizes[index % len(chunk_sizes)]
            index += 1
            buffer += stream[position : position + size]
            position += size
            complete, used = split_tcp_dns(buffer)
            received += complete
            buffer = buffer[used:]
            assert len(buffer) < 2 + 65535
        assert received == messages
        assert buffer == b""


@given(st.binary(max_size=200))
@FUZZ
def test_split_tcp_dns_on_any_bytes(stream: bytes) -> None:
    try:
        messages, used = split_tcp_dns(stream)
    except ParseError:
        return
    assert b"".join(frame(message) for message in messages) == stream[:used]


# --- the negative answer -------------------------------------------------------------------------

SOA_NAMES = [None, "blocked.clawgress.invalid", "Policy.Example.", "."]


@st.composite
def queries(draw: st.DrawFn) -> dns.message.Message:
    qname = dns.name.Name([*draw(st.lists(LABELS, min_size=0, max_size=4)), b""])
    if len(qname.to_wire()) > 255:
        qname = dns.name.Name([b"fallback", b""])
    use_edns = draw(st.booleans())
    query = dns.message.make_query(
        qname,
        draw(st.sampled_from([1, 28, 16, 5, 65, 255])),
        rdclass=draw(st.sampled_from([IN, IN, CH])),
        use_edns=use_edns,
        want_dnssec=use_edns and draw(st.booleans()),
        payload=draw(st.integers(512, 4096)),
    )
    query.id = draw(st.integers(0, 65535))
    query.flags = draw(st.integers(0, 0xFFFF)) & (dns.flags.RD | dns.flags.CD | dns.flags.AD)
    return query


@given(
    queries(),
    st.sampled_from(["NXDOMAIN", "REFUSED"]),
    st.integers(0, 2**31 - 1),
    st.sampled_from(SOA_NAMES),
)
@ORACLE
def test_negative_answer_is_the_response_dnspython_expects(
    query: dns.message.Message, rcode: Any, ttl: int, soa_name: str | None
) -> None:
    wire = build_negative_answer(query.to_wire(), rcode=rcode, ttl=ttl, soa_name=soa_name)
    answer = dns.message.from_wire(wire)
    assert query.is_response(answer)
    assert answer.id == query.id
    assert dns.rcode.to_text(answer.rcode()) == rcode
    assert answer.opcode() == dns.opcode.QUERY
    assert answer.flags & dns.flags.QR and answer.flags & dns.flags.RA
    assert not answer.flags & (dns.flags.AA | dns.flags.TC | dns.flags.AD)
    for flag in (dns.flags.RD, dns.flags.CD):
        assert answer.flags & flag == query.flags & flag
    (asked,) = query.question
    (echoed,) = answer.question
    assert echoed.name.labels == asked.name.labels  # byte for byte, case included
    assert (echoed.rdtype, echoed.rdclass) == (asked.rdtype, asked.rdclass)
    assert answer.answer == []
    assert answer.edns == (0 if query.edns >= 0 else -1)
    if query.edns >= 0:
        assert answer.payload == 1232
        assert answer.ednsflags & dns.flags.DO == query.ednsflags & dns.flags.DO
    if rcode == "NXDOMAIN" and soa_name is not None:
        (soa_rrset,) = answer.authority
        soa = soa_rrset[0]
        owner = dns.name.from_text(soa_name)
        assert (soa_rrset.name, soa_rrset.rdtype, soa_rrset.ttl) == (owner, 6, ttl)
        assert soa.minimum == ttl and soa.mname == owner
        assert soa.rname == dns.name.Name([b"hostmaster", *owner.labels])
    else:
        assert answer.authority == []
    assert len(wire) <= 512 or query.edns >= 0
    parsed = parse_dns_message(wire)
    assert parsed.questions == parse_dns_message(query.to_wire()).questions
    assert parsed.resolved_addresses() == []


@pytest.mark.parametrize("key", sorted(key for key in CORPUS if key.endswith(".query")))
def test_negative_answer_to_corpus_queries(key: str) -> None:
    query = dns.message.from_wire(CORPUS[key])
    wire = build_negative_answer(CORPUS[key], rcode="NXDOMAIN", soa_name="deny.clawgress.test")
    answer = dns.message.from_wire(wire)
    assert query.is_response(answer)
    assert answer.rcode() == dns.rcode.NXDOMAIN
    assert answer.authority[0].name == dns.name.from_text("deny.clawgress.test")
    end = 12 + parse_dns_message(CORPUS[key]).questions[0].name.wire_length + 4
    assert wire[12:end] == CORPUS[key][12:end]  # the question, byte for byte


def test_negative_answer_leaves_out_an_soa_that_does_not_fit() -> None:
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])
    query = dns.message.make_query(longest, "A")
    wire = build_negative_answer(query.to_wire(), rcode="NXDOMAIN", soa_name=longest)
    answer = dns.message.from_wire(wire)
    assert answer.authority == [] and len(wire) <= 512
    query.use_edns(0, payload=4096)
    wire = build_negative_answer(query.to_wire(), rcode="NXDOMAIN", soa_name=longest)
    (soa_rrset,) = dns.message.from_wire(wire).authority
    assert soa_rrset[0].rname == soa_rrset.name  # "hostmaster." would pass 255 octets


def test_negative_answer_refused_has_no_soa() -> None:
    query = dns.message.make_query("evil.example", "TXT")
    wire = build_negative_answer(query.to_wire(), rcode="REFUSED", soa_name="deny.test")
    answer = dns.message.from_wire(wire)
    assert (answer.rcode(), answer.authority) == (dns.rcode.REFUSED, [])


def _two_questions() -> bytes:
    return header(flags=0x0100, qd=2) + Q_WWW + question(pointer(12), 28)


NOT_QUERIES = {
    "a response": (CORPUS["a.response"], "not a query: QR is set"),
    "a NOTIFY": (header(flags=0x2000, qd=1) + Q_WWW, "opcode 4, expected QUERY"),
    "two questions": (_two_questions(), "2 questions, expected 1"),
    "no question": (header(flags=0x0100), "0 questions, expected 1"),
    "with an answer": (header(flags=0x0100, qd=1, an=1) + Q_WWW + _A_RECORD, "answer or auth"),
    "cut short": (header(flags=0x0300, qd=1, an=1) + Q_WWW, "query cut short"),
    "garbage": (b"\x00\x01garbage", "DNS header cut short"),
}


@pytest.mark.parametrize("case", sorted(NOT_QUERIES))
def test_negative_answer_needs_a_single_question_query(case: str) -> None:
    data, reason = NOT_QUERIES[case]
    with pytest.raises(ParseError, match=reason):
        build_negative_answer(data, rcode="NXDOMAIN")


def test_negative_answer_arguments_are_checked() -> None:
    query = CORPUS["a.query"]
    with pytest.raises(ValueError, match="expected NXDOMAIN or REFUSED"):
        build_negative_answer(query, rcode="SERVFAIL")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl -1 outside"):
        build_negative_answer(query, rcode="NXDOMAIN", ttl=-1)
    with pytest.raises(ValueError, match="ttl 2147483648 outside"):
        build_negative_answer(query, rcode="NXDOMAIN", ttl=2**31)
    with pytest.raises(ValueError, match="empty label"):
        build_negative_answer(query, rcode="NXDOMAIN", soa_name="a..b")


@given(mutated_messages())
@FUZZ
def test_negative_answer_to_any_bytes_is_a_response_or_parse_error(data: bytes) -> None:
    try:
        wire = build_negative_answer(data, rcode="NXDOMAIN", soa_name="deny.test")
    except ParseError:
        return
    answer = parse_dns_message(wire)
    query = parse_dns_message(data)
    assert answer.id == query.id and answer.questions == query.questions
    assert answer.is_response and answer.rcode == 3
    assert dns.message.from_wire(wire).rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize("key", sorted(key for key in CORPUS if key.endswith(".response")))
def test_the_query_a_response_answers(key: str) -> None:
    response = parse_dns_message(CORPUS[key])
    query = parse_dns_message(query_answered_by(response))
    assert not query.flags.qr and query.id == response.id
    assert query.questions == response.questions[:1]
    assert (query.answers, query.authority, query.additional) == ((), (), ())
    assert query.flags.rd == response.flags.rd and query.flags.cd == response.flags.cd
    refused = parse_dns_message(build_negative_answer(query_answered_by(response),
                                                      rcode="REFUSED"))
    assert refused.rcode == DNS_RCODE_REFUSED and refused.id == response.id


def test_a_response_without_a_question_answers_no_query() -> None:
    bare = parse_dns_message(b"\x00\x07\x81\x80" + b"\x00" * 8)
    with pytest.raises(ParseError, match="without a question"):
        query_answered_by(bare)
