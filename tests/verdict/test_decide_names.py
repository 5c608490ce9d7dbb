"""The decider with names: DNS answers teach it, TLS ClientHellos decide pending flows, and
queries for denied names and answers that rebind are answered by the gateway."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR  # type: ignore[import-untyped]
from scapy.layers.inet import IP, TCP, UDP  # type: ignore[import-untyped]

from gatewayd.config import Config, NamesSection
from gatewayd.netfilter.marks import State
from gatewayd.policy import Guard, compile_plan, parse_documents
from gatewayd.verdict import Decider
from gatewayd.verdict.decide import Observed
from gatewayd.verdict.dns_transports import is_encrypted_dns

from .conftest import MARKS, NOW, OPS, RESEARCH, leases, plan

POLICY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: names}
spec:
  priority: 100
  rules:
    - {id: dns, action: allow, destination: {cidrs: [10.78.0.53/32], ports: [53]}}
    - {id: openai, action: allow, identity: {team: research},
       destination: {hosts: [api.openai.com], ports: [443], protocol: tcp}}
    - {id: example, action: allow, destination: {hosts: [example.com], ports: [9000]}}
    - {id: code, action: allow, destination: {hosts: [github.com, www.example.com],
       ports: [443], protocol: tcp}}
    - {id: web-any, action: allow, destination: {hosts: [www.example.com], ports: [443]}}
    - {id: paste, action: deny, priority: 10, destination: {hosts: [pastebin.com]}}
    - {id: lab, action: deny, priority: 900, destination: {cidrs: [10.78.0.0/24]}}
"""
IFACES = {7: "wl0"}
AGENT, OTHER, RESOLVER = "10.77.0.11", "10.77.0.12", "10.78.0.53"
OPENAI, EXAMPLE, PASTE = "10.78.0.10", "10.78.0.16", "10.78.0.13"
GITHUB = "10.78.0.14"
PENDING = MARKS.value(State.PENDING)
OBSERVED = MARKS.value(State.ALLOW)


def interface_for(ip: object) -> str | None:
    return "wl0" if str(ip).startswith("10.77.") else None


def decider(observed: Observed | None = None, **settings: object) -> Decider:
    table = leases((AGENT, "wl0", RESEARCH), (OTHER, "wl0", OPS))
    names_plan = compile_plan(parse_documents({"names.yaml": POLICY}), bundle_version=1,
                              guard=Guard.from_config(Config()))
    return Decider(plan=names_plan, leases=table, marks=MARKS, interfaces=IFACES,
                   gateway="gw", interface_for=interface_for,
                   observed=observed or Observed.from_settings(NamesSection(**settings)))


def answer(name: str, *addresses: str, ttl: int = 300, dst: str = AGENT,
           rdtype: str = "A") -> bytes:
    records = None
    for address in addresses:
        rr = DNSRR(rrname=name, type=rdtype, rdata=address, ttl=ttl)
        records = rr if records is None else records / rr
    return bytes(IP(src=RESOLVER, dst=dst) / UDP(sport=53, dport=33333)
                 / DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=records))


def query(name: str, qtype: str = "A") -> bytes:
    return bytes(IP(src=AGENT, dst=RESOLVER) / UDP(sport=33333, dport=53)
                 / DNS(id=9, rd=1, qd=DNSQR(qname=name, qtype=qtype)))


def learn(d: Decider, name: str, *addresses: str) -> None:
    v = d.decide(answer(name, *addresses), OBSERVED, 9, NOW)
    assert v.state is State.ALLOW and v.observed and v.rewrite is None


def syn(dst: str, dport: int, src: str = AGENT, seq: int = 1000) -> bytes:
    return bytes(IP(src=src, dst=dst) / TCP(sport=40000, dport=dport, flags="S", seq=seq))


def segment(dst: str, dport: int, data: bytes, seq: int, src: str = AGENT) -> bytes:
    return bytes(IP(src=src, dst=dst) / TCP(sport=40000, dport=dport, flags="PA", seq=seq)
                 / data)


def client_hello(sni: str | None) -> bytes:
    context = ssl.create_default_context()
    if sni is None:
        context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def tls_flow(d: Decider, dst: str, sni: str | None, src: str = AGENT) -> object:
    first = d.decide(syn(dst, 443, src), 0, 7, NOW)
    assert first.state is State.PENDING and first.observed
    return d.decide(segment(dst, 443, client_hello(sni), 1001, src), PENDING, 7, NOW + 0.01)


# --- flows decided by names ---------------------------------------------------------------


def test_a_flow_to_an_address_the_agent_resolved_is_decided_by_the_name() -> None:
    d = decider()
    assert d.decide(syn(EXAMPLE, 9000), 0, 7, NOW).state is State.DENY  # not resolved yet
    learn(d, "example.com", EXAMPLE)
    v = d.decide(syn(EXAMPLE, 9000), 0, 7, NOW)
    assert v.state is State.ALLOW
    e = v.event().fields
    assert (e["rule_id"], e["host"], e["names"]) == ("example", "example.com", ["example.com"])
    udp = bytes(IP(src=AGENT, dst=EXAMPLE) / UDP(sport=5000, dport=9000) / b"x")
    assert d.decide(udp, 0, 7, NOW).state is State.ALLOW  # any protocol


def test_names_are_the_agents_own() -> None:
    d = decider()
    learn(d, "example.com", EXAMPLE)
    assert d.decide(syn(EXAMPLE, 9000, src=OTHER), 0, 7, NOW).state is State.DENY


def test_names_that_disagree_on_one_address_decide_restrictively() -> None:
    d = decider()
    learn(d, "example.com", EXAMPLE)
    learn(d, "pastebin.com", EXAMPLE)
    v = d.decide(syn(EXAMPLE, 9000), 0, 7, NOW)
    assert v.state is State.DENY and "names-disagree" in v.event().fields["flags"]


def test_names_survive_a_new_decider() -> None:
    observed = Observed.from_settings(NamesSection())
    learn(decider(observed), "example.com", EXAMPLE)
    assert decider(observed).decide(syn(EXAMPLE, 9000), 0, 7, NOW).state is State.ALLOW


# --- TLS: pending flows and the ClientHello --------------------------------------------------


def test_tls_flow_is_pending_then_decided_by_its_sni() -> None:
    d = decider()
    learn(d, "api.openai.com", OPENAI)
    v = tls_flow(d, OPENAI, "api.openai.com")
    assert v.state is State.ALLOW  # type: ignore[attr-defined]
    e = v.event().fields  # type: ignore[attr-defined]
    assert (e["rule_id"], e["host"], e["sni"]) == ("openai", "api.openai.com", "api.openai.com")
    assert e["ja4"].startswith("t13d") and e["tls_versions"]


def test_a_sni_the_agent_did_not_resolve_there_is_flagged_and_gives_nothing() -> None:
    d = decider()
    learn(d, "api.openai.com", OPENAI)
    learn(d, "github.com", GITHUB)
    v = tls_flow(d, GITHUB, "api.openai.com")  # fronting through github.com's address
    e = v.event().fields  # type: ignore[attr-defined]
    # The server, which saw the SYN, gets a reset in place of the refused ClientHello.
    rst = IP(v.reply)  # type: ignore[attr-defined]
    assert (rst.src, rst.dst, rst[TCP].dport, rst[TCP].seq) == (AGENT, GITHUB, 443, 1001)
    assert rst[TCP].flags.R
    assert v.state is State.DENY and "sni-mismatch" in e["flags"]  # type: ignore[attr-defined]
    assert "not a name the agent resolved" in e["reason"]


def test_sni_mismatch_in_flag_mode_decides_by_the_sni() -> None:
    d = decider(sni_mismatch="flag")
    v = tls_flow(d, OPENAI, "api.openai.com")  # never resolved
    assert v.state is State.ALLOW  # type: ignore[attr-defined]
    assert "sni-mismatch" in v.event().fields["flags"]  # type: ignore[attr-defined]


def test_no_sni_is_decided_by_address() -> None:
    d = decider()
    learn(d, "api.openai.com", OPENAI)
    v = tls_flow(d, OPENAI, None)
    assert v.state is State.DENY  # type: ignore[attr-defined]
    assert "no-sni" in v.event().fields["flags"]  # type: ignore[attr-defined]


def test_a_first_payload_that_is_not_tls_is_decided_by_the_resolved_names() -> None:
    d = decider()
    learn(d, "api.openai.com", OPENAI)
    assert d.decide(syn(OPENAI, 443), 0, 7, NOW).state is State.PENDING
    v = d.decide(segment(OPENAI, 443, b"GET / HTTP/1.1\r\n\r\n", 1001), PENDING, 7, NOW)
    assert v.state is State.ALLOW and "not-tls" in v.event().fields["flags"]


def test_a_hello_in_one_byte_segments_is_decided_once_and_in_order() -> None:
    d = decider()
    learn(d, "api.openai.com", OPENAI)
    hello = client_hello("api.openai.com")
    assert d.decide(syn(OPENAI, 443), 0, 7, NOW).state is State.PENDING
    # A segment beyond the next expected byte is dropped, to come again in order.
    ahead = d.decide(segment(OPENAI, 443, hello[5:6], 1006), PENDING, 7, NOW)
    assert ahead.drop and ahead.observed
    for i in range(len(hello) - 1):
        v = d.decide(segment(OPENAI, 443, hello[i:i + 1], 1001 + i), PENDING, 7, NOW)
        assert v.state is State.PENDING and v.observed and not v.drop
    last = d.decide(segment(OPENAI, 443, hello[-1:], 1000 + len(hello)), PENDING, 7, NOW)
    assert last.state is State.ALLOW and not last.observed


def test_ech_outer_name_by_default_and_deny_when_configured() -> None:
    corpus = Path(__file__).parents[1] / "packets" / "tls_corpus" / "chrome136.bin"
    hello = corpus.read_bytes()  # ECH GREASE, SNI www.example.com
    for mode, expected in (("outer-name", State.ALLOW), ("deny", State.DENY)):
        d = decider(ech=mode)
        learn(d, "www.example.com", EXAMPLE)
        d2 = d.decide(syn(EXAMPLE, 443), 0, 7, NOW)
        assert d2.state is State.PENDING
        v = d.decide(segment(EXAMPLE, 443, hello, 1001), PENDING, 7, NOW)
        assert "ech" in v.event().fields["flags"]
        assert v.state is expected


def test_a_pending_flow_the_engine_forgot_is_denied() -> None:
    d = decider()
    v = d.decide(segment(OPENAI, 443, b"\x16\x03\x01", 5), PENDING, 7, NOW)
    assert v.state is State.DENY and v.event().fields["flags"] == ["pending-lost"]


def test_an_oversized_hello_is_denied() -> None:
    d = decider(max_client_hello=512)
    learn(d, "api.openai.com", OPENAI)
    d.decide(syn(OPENAI, 443), 0, 7, NOW)
    big = b"\x16\x03\x01\x04\x00\x01\x00\x03\xfc" + b"\x00" * 100
    v = d.decide(segment(OPENAI, 443, big, 1001), PENDING, 7, NOW)
    assert v.state is State.DENY and "client-hello-too-large" in v.event().fields["flags"]


def test_no_pending_when_the_hello_cannot_change_a_deny() -> None:
    d = decider()
    v = d.decide(syn(PASTE, 443), 0, 7, NOW)  # no name resolved there, address denied
    assert v.state is State.DENY and not v.observed
    learn(d, "api.openai.com", OPENAI)
    assert d.decide(syn(OPENAI, 8443), 0, 7, NOW).state is State.DENY  # not a TLS port


def test_no_pending_for_a_policy_without_host_rules() -> None:
    table = leases((AGENT, "wl0", RESEARCH))
    d = Decider(plan=plan(), leases=table, marks=MARKS, interfaces=IFACES, gateway="gw")
    assert d.decide(syn(OPENAI, 443), 0, 7, NOW).state is State.ALLOW


# --- DNS ---------------------------------------------------------------------------------


def test_a_query_for_a_denied_name_is_answered_by_the_gateway() -> None:
    v = decider().decide(query("pastebin.com"), 0, 7, NOW)
    assert v.drop and v.reply is not None
    reply = IP(v.reply)
    assert (reply.src, reply.dst, reply[UDP].sport, reply[UDP].dport) == (RESOLVER, AGENT, 53,
                                                                           33333)
    assert reply[DNS].qr == 1 and reply[DNS].rcode == 3 and reply[DNS].id == 9
    (event,) = v.extra
    assert event.kind == "dns.denied" and event.fields["rule_id"] == "paste"


def test_denied_queries_can_be_refused_or_dropped() -> None:
    refused = decider(denied_query="refused").decide(query("pastebin.com"), 0, 7, NOW)
    assert refused.reply is not None and IP(refused.reply)[DNS].rcode == 5
    dropped = decider(denied_query="drop").decide(query("pastebin.com"), 0, 7, NOW)
    assert dropped.drop and dropped.reply is None


def test_other_queries_pass_and_later_queries_on_the_flow_are_read_too() -> None:
    d = decider()
    first = d.decide(query("example.com"), 0, 7, NOW)
    assert first.state is State.ALLOW and not first.drop
    later = d.decide(query("pastebin.com"), OBSERVED, 7, NOW + 5)
    assert later.drop and later.observed


@pytest.mark.parametrize(("name", "address", "kind"), [
    ("rebind.example", "127.0.0.1", "loopback"),
    ("meta.example", "169.254.169.254", "metadata"),
    ("inside.example", "192.168.1.5", "private"),
])
def test_answers_pointing_inside_are_refused_and_not_learnt(name: str, address: str,
                                                            kind: str) -> None:
    d = decider()
    v = d.decide(answer(name, address), OBSERVED, 9, NOW)
    assert v.rewrite is not None
    rewritten = IP(v.rewrite)
    assert rewritten[DNS].rcode == 5 and rewritten[DNS].ancount == 0
    assert (rewritten.src, rewritten.dst) == (RESOLVER, AGENT)
    (event,) = v.extra
    assert event.kind == "dns.refused" and event.fields["refused"][0]["class"] == kind
    assert d.observed.names.names_for("bot-1", bytes(map(int, address.split("."))), NOW) == ()


def test_an_address_a_rule_names_may_be_resolved_to() -> None:
    d = decider()  # the lab rule names 10.78.0.0/24, inside 10.0.0.0/8
    learn(d, "example.com", EXAMPLE)


def test_oversized_txt_answers_are_a_signal() -> None:
    d = decider()
    big = bytes(IP(src=RESOLVER, dst=AGENT) / UDP(sport=53, dport=33333) / DNS(
        id=7, qr=1, qd=DNSQR(qname="t.example", qtype="TXT"),
        an=DNSRR(rrname="t.example", type="TXT", rdata=["x" * 250, "y" * 250, "z" * 100])))
    v = d.decide(big, OBSERVED, 9, NOW)
    (event,) = v.extra
    assert event.kind == "dns.signal" and event.fields["txt_bytes"] == 600
    assert d.observed.names.txt_signals["bot-1"] == 1


def test_dns_over_tcp_answers_are_read_across_segments() -> None:
    d = decider()
    message = bytes(DNS(id=7, qr=1, qd=DNSQR(qname="example.com"),
                        an=DNSRR(rrname="example.com", type="A", rdata=EXAMPLE, ttl=300)))
    framed = len(message).to_bytes(2, "big") + message

    def reply(flags: str, seq: int, data: bytes = b"") -> bytes:
        return bytes(IP(src=RESOLVER, dst=AGENT) / TCP(sport=53, dport=40001, flags=flags,
                                                       seq=seq) / data)

    assert d.decide(reply("SA", 500), OBSERVED, 9, NOW).observed
    d.decide(reply("PA", 501, framed[:10]), OBSERVED, 9, NOW)
    assert d.decide(syn(EXAMPLE, 9000), 0, 7, NOW).state is State.DENY
    d.decide(reply("PA", 511, framed[10:]), OBSERVED, 9, NOW)
    assert d.decide(syn(EXAMPLE, 9000), 0, 7, NOW).state is State.ALLOW


def test_the_ja4_is_the_flows_workload_fingerprint_signal() -> None:
    d = decider()
    learn(d, "api.openai.com", OPENAI)
    e = tls_flow(d, OPENAI, "api.openai.com").event().fields  # type: ignore[attr-defined]
    assert e["signals"] == {"workload_fingerprint": e["ja4"]}


def test_flows_to_encrypted_dns_are_flagged() -> None:
    d = decider()
    dot = d.decide(syn("10.99.0.1", 853), 0, 7, NOW).event().fields
    assert "encrypted-dns" in dot["flags"]
    doh = d.decide(syn("8.8.8.8", 443), 0, 7, NOW).event().fields
    assert "encrypted-dns" in doh["flags"]
    plain = d.decide(syn("8.8.8.8", 80), 0, 7, NOW).event().fields
    assert "encrypted-dns" not in plain["flags"]


def test_is_encrypted_dns_by_name_address_and_port() -> None:
    assert is_encrypted_dns("dns.google", "192.0.2.1", 443)
    assert is_encrypted_dns(None, "1.1.1.1", 443)
    assert is_encrypted_dns(None, "192.0.2.1", 853)
    assert not is_encrypted_dns("dns.google", "192.0.2.1", 80)
    assert not is_encrypted_dns("api.openai.com", "192.0.2.1", 443)


# --- QUIC --------------------------------------------------------------------------------

QUIC = Path(__file__).parents[1] / "packets" / "quic_corpus"


def quic(dst: str, name: str) -> bytes:
    return bytes(IP(src=AGENT, dst=dst) / UDP(sport=44444, dport=443)
                 / (QUIC / name).read_bytes())


def test_quic_is_refused_by_default_even_to_an_allowed_name() -> None:
    d = decider()
    learn(d, "www.example.com", EXAMPLE)
    v = d.decide(quic(EXAMPLE, "aioquic-h3.bin"), 0, 7, NOW)
    e = v.event().fields
    assert v.state is State.DENY and e["flags"] == ["quic"] and "names.quic" in e["reason"]


def test_quic_by_sni_decides_like_tls() -> None:
    d = decider(quic="sni")
    learn(d, "www.example.com", EXAMPLE)
    v = d.decide(quic(EXAMPLE, "aioquic-h3.bin"), 0, 7, NOW)
    e = v.event().fields
    assert v.state is State.ALLOW and e["sni"] == "www.example.com"
    assert e["rule_id"] == "web-any" and e["ja4"].startswith("q13") and e["alpn"] == ["h3"]


def test_quic_sni_not_resolved_there_is_decided_by_address() -> None:
    d = decider(quic="sni")
    learn(d, "github.com", EXAMPLE)  # another name on that address
    v = d.decide(quic(EXAMPLE, "aioquic-h3.bin"), 0, 7, NOW)
    assert v.state is State.DENY and "sni-mismatch" in v.event().fields["flags"]


def test_quic_hello_over_two_datagrams_is_refused() -> None:
    d = decider(quic="sni")
    learn(d, "big.example.com", EXAMPLE)
    v = d.decide(quic(EXAMPLE, "aioquic-two-datagrams.1.bin"), 0, 7, NOW)
    assert v.state is State.DENY and "quic-hello-split" in v.event().fields["flags"]


def test_udp_on_a_quic_port_that_is_not_quic_goes_by_the_resolved_names() -> None:
    d = decider(quic="sni")
    learn(d, "example.com", EXAMPLE)
    udp = bytes(IP(src=AGENT, dst=EXAMPLE) / UDP(sport=5000, dport=443) / b"wireguard?")
    v = d.decide(udp, 0, 7, NOW)
    e = v.event().fields
    assert "not-quic" in e["flags"] and e["host"] == "example.com"
    assert v.state is State.DENY  # example.com is allowed on 9000 only


def test_a_tcp_query_for_a_denied_name_resets_its_flow() -> None:
    d = decider()
    syn53 = bytes(IP(src=AGENT, dst=RESOLVER) / TCP(sport=40053, dport=53, flags="S", seq=10))
    assert d.decide(syn53, 0, 7, NOW).state is State.ALLOW

    def framed(name: str, qid: int) -> bytes:
        message = bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=name)))
        return len(message).to_bytes(2, "big") + message

    def segment53(data: bytes, seq: int) -> bytes:
        return bytes(IP(src=AGENT, dst=RESOLVER) / TCP(sport=40053, dport=53, flags="PA",
                                                       seq=seq) / data)

    allowed = framed("example.com", 1)
    ok = d.decide(segment53(allowed, 11), OBSERVED, 7, NOW)
    assert ok.state is State.ALLOW and ok.observed and not ok.drop
    denied = framed("pastebin.com", 2)
    start = 11 + len(allowed)
    ahead = d.decide(segment53(denied[3:], start + 3), OBSERVED, 7, NOW)
    assert ahead.drop  # beyond a gap: dropped until the bytes before it come
    assert d.decide(segment53(denied[:3], start), OBSERVED, 7, NOW).state is State.ALLOW
    v = d.decide(segment53(denied[3:], start + 3), OBSERVED, 7, NOW)
    assert v.state is State.DENY and MARKS.state_of(v.mark) is State.DENY
    (event,) = v.extra
    assert (event.kind, event.fields["answer"], event.fields["rule_id"]) == (
        "dns.denied", "reset", "paste")
    assert v.reply is not None and IP(v.reply)[TCP].flags.R  # the resolver's side too


def test_only_the_listed_resolvers_teach_names() -> None:
    d = decider(resolvers=[RESOLVER])
    rogue = bytes(IP(src=EXAMPLE, dst=AGENT) / UDP(sport=53, dport=33333)
                  / DNS(id=7, qr=1, qd=DNSQR(qname="api.openai.com"),
                        an=DNSRR(rrname="api.openai.com", type="A", rdata=PASTE, ttl=300)))
    v = d.decide(rogue, OBSERVED, 9, NOW)
    assert v.state is State.ALLOW and v.rewrite is None and not v.extra
    assert d.observed.names.names_for("bot-1", bytes([10, 78, 0, 13]), NOW) == ()
    learn(d, "api.openai.com", OPENAI)  # from the listed resolver
    assert d.observed.names.names_for("bot-1", bytes([10, 78, 0, 10]), NOW) == (
        "api.openai.com",)


def test_packets_read_but_not_decided_leave_the_flows_state_alone() -> None:
    """A DNS message or a ClientHello segment is stamped without a state: the commit chain
    leaves the flow as it is, so a flow ended while the packet waited stays ended."""
    d = decider()
    answer_verdict = d.decide(answer("example.com", EXAMPLE), OBSERVED, 9, NOW)
    query_verdict = d.decide(query("example.com"), OBSERVED, 7, NOW)
    learn(d, "api.openai.com", OPENAI)
    d.decide(syn(OPENAI, 443), 0, 7, NOW)
    partial = d.decide(segment(OPENAI, 443, client_hello("api.openai.com")[:10], 1001),
                       PENDING, 7, NOW)
    for v in (answer_verdict, query_verdict, partial):
        assert v.observed
        assert MARKS.is_stamped(v.mark) and MARKS.state_of(v.mark) is State.UNDECIDED
