"""Bypasses of a policy written by host name, tried against the real kernel and engine.

The policy (``examples/lab-names/names.yaml``) allows a1 (researcher) api.openai.com over
TLS on 443, everyone code hosting (github.com) over TLS on 443 and the tests' listeners on
example.com:9000-9099; it denies pastebin.com outright and the lab's service network by
address, so a flow reaches a service only by a name the agent resolved for its address.
Each test tries one way around that — no SNI, a fake SNI, DNS rebinding, QUIC, DoH and
DoT, TXT tunnelling, a ClientHello cut into 1-byte segments, other ports, IPv6, another
agent's names, IP fragments, not-TLS on 443, a Host header that disagrees with the SNI —
and asserts what really happened: reset or refused (and when), timed out, or data
received; what the upstream got; and the audit event.

The engine remembers an agent's names for at least 60 s, and the lab lives for the whole
module: a1 resolves freely here, a2 only github.com, and a test that needs an agent that
resolved nothing leases a3 to ``analyst`` (team research) for its duration.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rcode
import dns.rrset
import pytest
from names_net import (
    Outcome,
    datagram_listener,
    plain_exchange,
    resolve,
    resolved,
    send_raw,
    tls_get,
    tls_get_segmented,
    udp_fragments,
)
from names_support import NamesGateway
from nsutil import Namespace
from verdict_net import curl, dns_query, exchange, next_local_port, udp_socket, wait_for
from verdict_support import (
    A1,
    A2,
    A3,
    ANALYST,
    AT_ONCE_S,
    EXAMPLE,
    FAMILIES,
    GITHUB,
    OPENAI,
    PASTEBIN,
    RELOAD_S,
)

pytestmark = pytest.mark.netns

RESOLVERS = {4: "10.78.0.53", 6: "fd78::53"}
GATEWAY_UP = {4: "10.78.0.1", 6: "fd78::1"}  # gateway.lab: the gateway's own uplink address
DNS_GOOGLE = {4: "10.78.0.18", 6: "fd78::18"}
GITHUB_NAME, OPENAI_NAME, EXAMPLE_NAME = "github.com", "api.openai.com", "example.com"
QTYPE = {4: "A", 6: "AAAA"}
CURL_FAMILY = {4: "-4", 6: "-6"}
# What an ICMP admin-prohibited from the gateway turns into on a connected UDP socket.
ADMIN_PROHIBITED = {4: errno.EHOSTUNREACH, 6: errno.EACCES}
JA4 = re.compile(r"^t13d\d{4}(h2|h1)_[0-9a-f]{12}_[0-9a-f]{12}$")
TXT_METRIC = 'clawgress_dns_txt_signals_total{agent="researcher"}'
# Long enough for a datagram the gateway let through to arrive (it arrives in ms).
QUIET_S = 1.0


def tls(gateway: NamesGateway, agent: str, family: int, dst: str, *, sni: str | None,
        port: int = 443, host: str | None = None) -> Outcome:
    src = {"a1": A1, "a2": A2, "a3": A3}[agent][family]
    return tls_get(gateway.ns(agent), gateway.lab.ca_bundle, src, dst, port, sni=sni,
                   host=host)


def assert_reset_at_connect(outcome: Outcome, why: str) -> None:
    """Refused on the SYN: the gateway's reset, at once."""
    assert (outcome.stage, outcome.error) == ("connect", "refused"), f"{why}: {outcome}"
    assert outcome.elapsed < AT_ONCE_S, f"{why}: refused after {outcome.elapsed:.3f}s"


def assert_reset_after_hello(outcome: Outcome, why: str) -> None:
    """Connected (the SYN was admitted pending), then reset once the ClientHello was read:
    no server answer reached the client."""
    assert (outcome.stage, outcome.error) == ("handshake", "reset"), f"{why}: {outcome}"
    assert outcome.status is None, why
    assert outcome.body == b"", why
    assert outcome.elapsed < AT_ONCE_S, f"{why}: reset after {outcome.elapsed:.3f}s"


def shown(event: dict[str, Any]) -> str:
    """An audit event as it reads in the log, for failure messages."""
    return json.dumps(event, sort_keys=True)


def assert_fields(event: dict[str, Any], **expected: Any) -> None:
    for key, value in expected.items():
        assert event.get(key) == value, (
            f"{key} is {event.get(key)!r}, not {value!r}: {shown(event)}")


@pytest.fixture
def fresh_agent(gateway: NamesGateway) -> Iterator[str]:
    """a3 leased to ``analyst`` (team research, may call api.openai.com), an agent that
    resolves nothing in this module; the leases are revoked afterwards, whatever happens."""
    now = time.time()
    with gateway.registry() as registry:
        for ip in A3.values():
            registry.grant_lease(ip, ANALYST, now=now)
    try:
        time.sleep(3 * RELOAD_S)  # let the engine load the leases
        yield "a3"
    finally:
        with gateway.registry() as registry:
            for ip in A3.values():
                registry.revoke_lease(ip, now=time.time(), reason="test done")
        time.sleep(3 * RELOAD_S)


# --- 1. an allowed name over TLS --------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_an_allowed_name_over_tls_works_and_is_audited_by_its_sni(
    gateway: NamesGateway, family: int
) -> None:
    cursor = gateway.cursor()
    done = curl(gateway.lab, "a1", f"https://{OPENAI_NAME}/", CURL_FAMILY[family])
    assert (done.rc, done.status) == (0, 200), done.stderr
    served = json.loads(done.body)
    assert (served["name"], served["address"], served["client"]) == (
        OPENAI_NAME, OPENAI[family], A1[family])
    event = cursor.one("flow.verdict", src_ip=A1[family], src_port=done.local_port)
    assert_fields(event, agent_id="researcher", dst_ip=OPENAI[family], dst_port=443,
                  action="allow", state="allow", rule_id="openai", host=OPENAI_NAME,
                  sni=OPENAI_NAME, names=[OPENAI_NAME], ip_version=family)
    assert JA4.match(event["ja4"]), event["ja4"]
    assert "h2" in event["alpn"]  # curl offers HTTP/2 first
    assert "0x0304" in event["tls_versions"]
    assert event["flags"] == []


@pytest.mark.parametrize("family", FAMILIES)
def test_a_tls_flow_costs_two_queued_packets(gateway: NamesGateway, family: int) -> None:
    """The SYN (admitted pending) and the segment carrying the ClientHello; the rest of
    the flow, bare ACKs included, stays in the kernel."""
    resolved(gateway.ns("a1"), OPENAI_NAME, family)
    cursor = gateway.cursor()
    before = gateway.queued()
    done = tls(gateway, "a1", family, OPENAI[family], sni=OPENAI_NAME)
    queued = gateway.queued() - before
    assert done.ok, str(done)
    assert done.status == 200, str(done)
    assert json.loads(done.body)["name"] == OPENAI_NAME
    assert queued == 2
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="allow", host=OPENAI_NAME, sni=OPENAI_NAME, alpn=["http/1.1"])
    assert JA4.match(event["ja4"]), event["ja4"]


# --- 2. the allowed address without SNI -------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_an_allowed_address_without_sni_is_reset(gateway: NamesGateway, family: int) -> None:
    resolved(gateway.ns("a1"), OPENAI_NAME, family)
    cursor = gateway.cursor()
    done = tls(gateway, "a1", family, OPENAI[family], sni=None)
    assert_reset_after_hello(done, "TLS without SNI to api.openai.com's address")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="deny", action="deny", sni=None, host=None,
                  names=[OPENAI_NAME], rule_id="lab-network", dst_ip=OPENAI[family])
    assert event["flags"] == ["no-sni"]
    assert event["ja4"].startswith("t13i")  # the fingerprint says: no SNI


# --- 3. a fake SNI ----------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_an_allowed_sni_to_another_names_address_is_denied(
    gateway: NamesGateway, family: int
) -> None:
    """Domain fronting: a1 resolved api.openai.com and github.com (open to everyone on 443,
    so the flow is held pending for its SNI); TLS to github.com's address claiming
    api.openai.com."""
    a1 = gateway.ns("a1")
    resolved(a1, OPENAI_NAME, family)
    assert resolved(a1, GITHUB_NAME, family) == GITHUB[family]
    cursor = gateway.cursor()
    done = tls(gateway, "a1", family, GITHUB[family], sni=OPENAI_NAME)
    assert_reset_after_hello(done, "SNI api.openai.com to github.com's address")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="deny", dst_ip=GITHUB[family], dst_port=443, sni=OPENAI_NAME,
                  host=None, names=[GITHUB_NAME], rule_id="lab-network")
    assert event["flags"] == ["sni-mismatch"], shown(event)


def test_fronting_where_no_resolved_name_could_allow_is_refused_at_the_syn(
    gateway: NamesGateway,
) -> None:
    """The same toward example.com's address, which no rule opens on 443: no ClientHello
    could change that, so the SYN is refused and the SNI never read."""
    a1 = gateway.ns("a1")
    resolved(a1, OPENAI_NAME, 4)
    assert resolved(a1, EXAMPLE_NAME, 4) == EXAMPLE[4]
    cursor = gateway.cursor()
    done = tls(gateway, "a1", 4, EXAMPLE[4], sni=OPENAI_NAME)
    assert_reset_at_connect(done, "TLS to example.com's address on 443")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="deny", host="example.com", names=["example.com"],
                  rule_id="lab-network")
    assert "sni" not in event, shown(event)


@pytest.mark.parametrize("family", FAMILIES)
def test_another_names_sni_to_an_allowed_address_is_denied(
    gateway: NamesGateway, family: int
) -> None:
    """Domain fronting the other way round: api.openai.com's address, SNI example.com."""
    a1 = gateway.ns("a1")
    resolved(a1, OPENAI_NAME, family)
    resolved(a1, EXAMPLE_NAME, family)
    cursor = gateway.cursor()
    done = tls(gateway, "a1", family, OPENAI[family], sni=EXAMPLE_NAME)
    assert_reset_after_hello(done, "SNI example.com to api.openai.com's address")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="deny", sni=EXAMPLE_NAME, host=None, names=[OPENAI_NAME],
                  rule_id="lab-network")
    assert event["flags"] == ["sni-mismatch"]


@pytest.mark.parametrize("family", FAMILIES)
def test_an_allowed_sni_without_resolving_it_is_denied(
    gateway: NamesGateway, fresh_agent: str, family: int
) -> None:
    """analyst (team research) may call api.openai.com, but never resolved it: TLS to its
    real address with SNI api.openai.com is a hard-coded address. No name was resolved
    there and the address is denied, so no ClientHello could allow it: refused at the SYN."""
    cursor = gateway.cursor()
    done = tls(gateway, fresh_agent, family, OPENAI[family], sni=OPENAI_NAME)
    assert_reset_at_connect(done, "TLS to an address the agent never resolved")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, agent_id=ANALYST, state="deny", dst_ip=OPENAI[family],
                  rule_id="lab-network")
    assert not event.get("names"), shown(event)


# --- 4. DNS: denied names and rebinding -------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["A", "AAAA"])
def test_a_denied_name_gets_nxdomain_from_the_gateway(gateway: NamesGateway, kind: str,
                                                      family: int) -> None:
    """The lab resolver knows pastebin.com; NXDOMAIN can only come from the gateway (over
    the resolver's IPv4 or IPv6 address: the gateway's answer goes out either way)."""
    cursor = gateway.cursor()
    reply = resolve(gateway.ns("a1"), "pastebin.com", kind, server=RESOLVERS[family])
    assert (reply.rcode, reply.answers) == (3, []), reply
    event = cursor.one("dns.denied", name="pastebin.com")
    assert_fields(event, agent_id="researcher", answer="nxdomain", rule_id="paste-sites",
                  qtype={"A": 1, "AAAA": 28}[kind], src_ip=A1[family],
                  resolver=RESOLVERS[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_answers_on_a_socket_the_gateway_answered_before_are_still_read(
    gateway: NamesGateway, family: int
) -> None:
    """One UDP socket, as a stub resolver keeps: the gateway answers the denied name itself,
    and the next answer on the same ports still passes through the engine (here: a
    rebinding answer, which only the engine turns into REFUSED)."""
    with udp_socket(gateway.ns("a1"), RESOLVERS[family], 53) as sock:
        denied, _ = exchange(sock, dns_query("pastebin.com", qid=0x0101))
        assert isinstance(denied, bytes), denied
        assert denied[3] & 0x0F == 3, denied
        rebind, _ = exchange(sock, dns_query("rebind.lab", qid=0x0202))
        assert isinstance(rebind, bytes), rebind
        assert rebind[:2] == b"\x02\x02", rebind
        assert rebind[3] & 0x0F == 5, rebind


@pytest.mark.parametrize("family", FAMILIES)
def test_a_denied_name_over_tcp_resets_the_query(gateway: NamesGateway, family: int) -> None:
    """Over TCP the gateway cannot answer inside the stream: the query never leaves and the
    flow is reset."""
    cursor = gateway.cursor()
    query = dns_query("pastebin.com", qid=0x0303)
    with gateway.ns("a1").entered(), \
            socket.create_connection((RESOLVERS[family], 53), timeout=3) as sock:
        sock.sendall(len(query).to_bytes(2, "big") + query)
        with pytest.raises(ConnectionResetError):
            sock.recv(512)
    event = cursor.one("dns.denied", name="pastebin.com")
    assert_fields(event, answer="reset", rule_id="paste-sites", src_ip=A1[family])
    # The resolver's side was reset too: the lab's dnsmasq serves TCP one connection at a
    # time, so a half-open one would hold the next query until it timed out.
    started = time.monotonic()
    reply = resolve(gateway.ns("a1"), "example.com", "A", tcp=True, server=RESOLVERS[family])
    assert reply.rcode == 0, reply
    assert time.monotonic() - started < 1.0


def test_an_answer_pointing_inside_is_refused_over_ipv6_too(gateway: NamesGateway) -> None:
    cursor = gateway.cursor()
    reply = resolve(gateway.ns("a1"), "metadata.lab", "AAAA", server=RESOLVERS[6])
    assert (reply.rcode, reply.answers) == (5, []), reply
    cursor.one("dns.refused")


@pytest.mark.parametrize("kind", ["A", "AAAA"])
@pytest.mark.parametrize(
    ("name", "guard"),
    [("rebind.lab", "loopback"), ("gateway.lab", "gateway"), ("private.lab", "private"),
     ("metadata.lab", "metadata")],
)
def test_an_answer_pointing_inside_is_refused(
    gateway: NamesGateway, name: str, guard: str, kind: str
) -> None:
    cursor = gateway.cursor()
    reply = resolve(gateway.ns("a1"), name, kind)
    assert (reply.rcode, reply.answers) == (5, []), reply
    event = cursor.one("dns.refused")
    assert_fields(event, agent_id="researcher", answer="refused")
    assert [(r["name"], r["class"]) for r in event["refused"]] == [(name, guard)]


@pytest.mark.parametrize("family", FAMILIES)
def test_tls_to_a_refused_names_address_is_denied(gateway: NamesGateway, family: int) -> None:
    """gateway.lab resolves to the gateway's own address; the answer was refused, so the
    name is not learnt and the flow is decided by address (guard class). Nothing listens
    on the gateway's 443 either: the audit event says who refused it."""
    a1 = gateway.ns("a1")
    assert resolve(a1, "gateway.lab", QTYPE[family]).rcode == 5
    cursor = gateway.cursor()
    done = tls(gateway, "a1", family, GATEWAY_UP[family], sni="gateway.lab")
    assert_reset_at_connect(done, "TLS to gateway.lab's address")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="deny", action="deny", dst_ip=GATEWAY_UP[family])
    assert event.get("host") is None, shown(event)
    assert not event.get("names"), shown(event)
    assert "guarded:gateway" in event["flags"]


# --- 5. QUIC ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_quic_to_an_allowed_name_is_denied(gateway: NamesGateway, family: int) -> None:
    """UDP 443 (QUIC) is refused outright by default (``names.quic: deny``), even to a name
    the agent resolved: no echo comes back, an ICMP error does, at once."""
    resolved(gateway.ns("a1"), OPENAI_NAME, family)
    # The echo answers when the engine is not in the way (the gateway's own socket).
    with udp_socket(gateway.ns("gw"), OPENAI[family], 443) as control:
        echoed, _ = exchange(control, b"quic initial")
    assert echoed == b"quic initial", echoed
    cursor = gateway.cursor()
    with udp_socket(gateway.ns("a1"), OPENAI[family], 443) as sock:
        sport = sock.getsockname()[1]
        answer, elapsed = exchange(sock, b"quic initial")
    assert isinstance(answer, OSError), f"echoed: {answer!r}"
    assert answer.errno == ADMIN_PROHIBITED[family], answer
    assert elapsed < AT_ONCE_S
    event = cursor.one("flow.verdict", src_port=sport)
    assert_fields(event, action="deny", state="deny", protocol="udp", dst_port=443,
                  host=None, names=[OPENAI_NAME], flags=["quic"], rule_id=None)
    assert "names.quic: deny" in event["reason"], shown(event)


# --- 6. DNS over HTTPS and over TLS -----------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("url", "name"),
    [("https://cloudflare-dns.com/dns-query", "cloudflare-dns.com"),
     ("https://dns.google/", "dns.google")],
)
def test_dns_over_https_is_denied(gateway: NamesGateway, family: int, url: str,
                                  name: str) -> None:
    cursor = gateway.cursor()
    done = curl(gateway.lab, "a1", url, CURL_FAMILY[family])
    assert done.rc == 7, done.stderr  # could not connect
    assert done.elapsed < AT_ONCE_S
    event = cursor.one("flow.verdict", src_ip=A1[family], protocol="tcp", dst_port=443)
    assert_fields(event, state="deny", host=name, names=[name])
    assert "encrypted-dns" in event["flags"], shown(event)


@pytest.mark.parametrize("family", FAMILIES)
def test_dns_over_tls_is_denied(gateway: NamesGateway, family: int) -> None:
    assert resolved(gateway.ns("a1"), "dns.google", family) == DNS_GOOGLE[family]
    # Port 853 handshakes when the engine is not in the way.
    control = tls_get(gateway.ns("gw"), gateway.lab.ca_bundle, GATEWAY_UP[family],
                      DNS_GOOGLE[family], 853, sni="dns.google")
    assert control.ok, str(control)
    cursor = gateway.cursor()
    done = tls(gateway, "a1", family, DNS_GOOGLE[family], sni="dns.google", port=853)
    assert_reset_at_connect(done, "DoT to dns.google")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="deny", dst_port=853, host="dns.google")
    assert "encrypted-dns" in event["flags"], shown(event)


# --- 7. TXT tunnelling ------------------------------------------------------------------


def txt_signals(gateway: NamesGateway) -> float:
    return gateway.metrics(newer_than=time.time()).get(TXT_METRIC, 0.0)


def test_a_large_txt_answer_over_tcp_passes_and_is_signalled(gateway: NamesGateway) -> None:
    before = txt_signals(gateway)
    cursor = gateway.cursor()
    reply = resolve(gateway.ns("a1"), "tunnel.lab", "TXT", tcp=True)
    assert reply.rcode == 0, reply
    assert not reply.truncated, reply
    assert len(reply.answers) == 1, reply
    assert len(reply.answers[0]) == 5, reply  # type: ignore[arg-type]
    assert reply.txt_bytes == 1200  # the whole answer reached the agent
    event = cursor.one("dns.signal")
    assert txt_signals(gateway) == before + 1
    assert_fields(event, agent_id="researcher", signal="txt-tunnelling",
                  names=["tunnel.lab"])
    # The TXT payload itself: five strings of 239 bytes (their length octets not counted).
    assert event["txt_bytes"] == 5 * 239, shown(event)


def test_a_small_txt_answer_is_not_signalled(gateway: NamesGateway) -> None:
    before = txt_signals(gateway)
    cursor = gateway.cursor()
    reply = resolve(gateway.ns("a1"), "small.lab", "TXT", tcp=True)
    assert reply.rcode == 0, reply
    assert reply.txt_bytes == 20, reply
    assert cursor.settled("dns.signal", 1) == []
    assert txt_signals(gateway) == before


# --- 8. a ClientHello in 1-byte segments ------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_a_client_hello_in_one_byte_segments_is_reassembled_and_allowed(
    gateway: NamesGateway, family: int
) -> None:
    resolved(gateway.ns("a1"), OPENAI_NAME, family)
    cursor = gateway.cursor()
    before = gateway.queued()
    done = tls_get_segmented(gateway.ns("a1"), gateway.lab.ca_bundle, A1[family],
                             OPENAI[family], sni=OPENAI_NAME)
    queued = gateway.queued() - before
    assert done.ok, str(done)
    assert done.status == 200, str(done)
    assert json.loads(done.body)["name"] == OPENAI_NAME
    assert done.sent == len(done.hello) > 200
    # Each byte went to the engine in a segment of its own (the SYN, then the bytes).
    assert queued > len(done.hello) // 2, f"{queued} packets queued for {len(done.hello)} bytes"
    events = cursor.settled("flow.verdict", 2, src_port=done.sport)
    assert len(events) == 1, f"one flow, {len(events)} flow.verdict events"
    assert_fields(events[0], state="allow", sni=OPENAI_NAME, host=OPENAI_NAME, flags=[])


@pytest.mark.parametrize("family", FAMILIES)
def test_a_fake_sni_in_one_byte_segments_is_reset_after_the_last_byte(
    gateway: NamesGateway, family: int
) -> None:
    """SNI pastebin.com (the name itself is denied at DNS) to api.openai.com's address."""
    resolved(gateway.ns("a1"), OPENAI_NAME, family)
    cursor = gateway.cursor()
    done = tls_get_segmented(gateway.ns("a1"), gateway.lab.ca_bundle, A1[family],
                             OPENAI[family], sni="pastebin.com")
    assert (done.stage, done.error) == ("handshake", "reset"), str(done)
    assert done.sent == len(done.hello) > 200  # every byte went out before the reset
    assert done.ended - done.last_byte_at < AT_ONCE_S
    events = cursor.settled("flow.verdict", 2, src_port=done.sport)
    assert len(events) == 1, f"one flow, {len(events)} flow.verdict events"
    assert_fields(events[0], state="deny", sni="pastebin.com", host=None,
                  flags=["sni-mismatch"])


# --- 9. other ports, plain HTTP ---------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("url", "port"),
    [(f"https://{OPENAI_NAME}:8443/", 8443), (f"http://{OPENAI_NAME}/", 80),
     (f"http://{OPENAI_NAME}:8080/", 8080)],
)
def test_an_allowed_name_on_another_port_is_denied_at_once(
    gateway: NamesGateway, family: int, url: str, port: int
) -> None:
    cursor = gateway.cursor()
    done = curl(gateway.lab, "a1", url, CURL_FAMILY[family])
    assert done.rc == 7, done.stderr  # could not connect: reset on the SYN
    assert done.elapsed < AT_ONCE_S, f"refused after {done.elapsed:.3f}s, not at once"
    event = cursor.one("flow.verdict", src_ip=A1[family], protocol="tcp", dst_port=port)
    assert_fields(event, state="deny", host=OPENAI_NAME, dst_ip=OPENAI[family])


# --- 10. IPv6 ---------------------------------------------------------------------------


def test_ipv6_by_name_works_and_by_address_is_denied(gateway: NamesGateway) -> None:
    cursor = gateway.cursor()
    by_name = curl(gateway.lab, "a1", f"https://{OPENAI_NAME}/", "-6")
    assert (by_name.rc, by_name.status) == (0, 200), by_name.stderr
    assert json.loads(by_name.body)["address"] == OPENAI[6]
    allowed = cursor.one("flow.verdict", src_port=by_name.local_port)
    assert_fields(allowed, state="allow", ip_version=6, sni=OPENAI_NAME)

    cursor = gateway.cursor()
    direct = curl(gateway.lab, "a1", f"https://[{OPENAI[6]}]/", "-6")
    assert direct.rc != 0, direct
    assert direct.status is None, direct
    assert "reset" in direct.stderr.lower(), direct.stderr
    assert direct.elapsed < AT_ONCE_S
    denied = cursor.one("flow.verdict", src_port=direct.local_port)
    assert_fields(denied, state="deny", ip_version=6, sni=None, flags=["no-sni"])


# --- 11. names are per agent, for any protocol ------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_names_are_per_agent_and_for_any_protocol(gateway: NamesGateway, family: int) -> None:
    """a1 resolved example.com, a2 did not (nothing in this module makes a2 resolve it):
    UDP to the same listener gets through from a1 only."""
    assert resolved(gateway.ns("a1"), EXAMPLE_NAME, family) == EXAMPLE[family]
    cursor = gateway.cursor()
    port = 9040 + family
    with datagram_listener(gateway.ns("up"), EXAMPLE[family], port) as up:
        with udp_socket(gateway.ns("a1"), EXAMPLE[family], port) as sock:
            a1_port = sock.getsockname()[1]
            sock.send(b"from a1")
            wait_for("a1's datagram upstream", up.datagrams, timeout=3.0)
        with udp_socket(gateway.ns("a2"), EXAMPLE[family], port) as sock:
            a2_port = sock.getsockname()[1]
            refused, _ = exchange(sock, b"from a2")
        time.sleep(0.2)
        assert up.datagrams() == [(a1_port, b"from a1")]
    assert isinstance(refused, OSError), refused
    assert refused.errno == ADMIN_PROHIBITED[family], refused
    allowed = cursor.one("flow.verdict", src_ip=A1[family], src_port=a1_port)
    assert_fields(allowed, state="allow", protocol="udp", host=EXAMPLE_NAME, rule_id="example")
    denied = cursor.one("flow.verdict", src_ip=A2[family], src_port=a2_port)
    assert_fields(denied, agent_id="builder", state="deny", rule_id="lab-network")
    assert not denied.get("names"), shown(denied)


# --- 12. IP fragments -------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_a_fragmented_datagram_is_decided_whole(gateway: NamesGateway, family: int) -> None:
    """Three fragments of one datagram: the gateway reassembles them before deciding, so
    the allowed one arrives whole and the denied one not at all."""
    a1, up_ns = gateway.ns("a1"), gateway.ns("up")
    resolved(a1, EXAMPLE_NAME, family)
    payload = bytes(range(256)) * 11 + b"end"  # 2,819 bytes: 3 fragments on the wire
    port = 9050 + family
    cursor = gateway.cursor()
    with datagram_listener(up_ns, EXAMPLE[family], port) as allowed, \
            datagram_listener(up_ns, PASTEBIN[family], port) as denied:
        to_example = next_local_port()
        send_raw(a1, udp_fragments(A1[family], EXAMPLE[family], to_example, port, payload),
                 EXAMPLE[family])
        wait_for("the reassembled datagram upstream", allowed.datagrams, timeout=3.0)
        to_pastebin = next_local_port()
        send_raw(a1, udp_fragments(A1[family], PASTEBIN[family], to_pastebin, port, payload),
                 PASTEBIN[family])
        time.sleep(QUIET_S)
        assert allowed.datagrams() == [(to_example, payload)]
        assert denied.datagrams() == []
    assert_fields(cursor.one("flow.verdict", src_port=to_example), state="allow",
                  host=EXAMPLE_NAME, protocol="udp")
    assert_fields(cursor.one("flow.verdict", src_port=to_pastebin), state="deny",
                  protocol="udp", dst_ip=PASTEBIN[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_orphan_fragments_go_nowhere(gateway: NamesGateway, family: int) -> None:
    """Only the second and third fragments of a datagram to an allowed listener: without
    the first (the one with the ports) nothing is decided and nothing arrives."""
    a1 = gateway.ns("a1")
    resolved(a1, EXAMPLE_NAME, family)
    port = 9060 + family
    cursor = gateway.cursor()
    before = gateway.queued()
    with datagram_listener(gateway.ns("up"), EXAMPLE[family], port) as up:
        sport = next_local_port()
        fragments = udp_fragments(A1[family], EXAMPLE[family], sport, port, b"o" * 2800)
        send_raw(a1, fragments[1:], EXAMPLE[family])
        time.sleep(QUIET_S)
        assert up.datagrams() == []
    assert gateway.queued() == before, "orphan fragments reached the engine"
    assert cursor.events("flow.verdict", src_port=sport) == []


# --- 13. not TLS on 443 -----------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_http_on_443_passes_by_the_resolved_name(
    gateway: NamesGateway, family: int
) -> None:
    """Not a ClientHello: decided by the name the agent resolved for the address (allowed
    on tcp/443). The bytes reach the upstream's TLS server, which cannot read them and
    closes the connection at once (a FIN, not a reset); had they been held back, it would
    have waited 10 s for a handshake."""
    resolved(gateway.ns("a1"), OPENAI_NAME, family)
    cursor = gateway.cursor()
    done = plain_exchange(gateway.ns("a1"), A1[family], OPENAI[family], 443,
                          f"GET / HTTP/1.1\r\nHost: {OPENAI_NAME}\r\n\r\n".encode())
    assert (done.stage, done.error) == ("request", "closed"), str(done)
    assert done.elapsed < AT_ONCE_S, str(done)
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, action="allow", state="allow", host=OPENAI_NAME, rule_id="openai")
    assert event["flags"] == ["not-tls"]
    assert event.get("sni") is None


# --- 14. the Host header is not the SNI -------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_a_host_header_unlike_the_sni_is_decided_by_the_sni(
    gateway: NamesGateway, family: int
) -> None:
    """Inside TLS the Host header is invisible without interception: the flow is github.com
    by its SNI, and the upstream gets the request for pastebin.com."""
    cursor = gateway.cursor()
    done = curl(gateway.lab, "a2", f"https://{GITHUB_NAME}/", CURL_FAMILY[family],
                "-H", "Host: pastebin.com")
    assert (done.rc, done.status) == (0, 200), done.stderr
    served = json.loads(done.body)
    assert (served["name"], served["host"], served["client"]) == (
        GITHUB_NAME, "pastebin.com", A2[family])
    event = cursor.one("flow.verdict", src_ip=A2[family], src_port=done.local_port)
    assert_fields(event, agent_id="builder", state="allow", host=GITHUB_NAME, sni=GITHUB_NAME,
                  rule_id="code-hosting")


# --- a resolver the agent controls ---------------------------------------------------------


@contextlib.contextmanager
def lying_resolver(ns: Namespace, address: str, name: str, answer: str) -> Iterator[None]:
    """A DNS server on ``address``:53 in ``ns`` that answers every query for ``name`` with
    ``answer`` (A), NXDOMAIN otherwise."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with ns.entered():
        sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            asked = query.question[0].name.to_text(omit_final_dot=True)
            if asked == name:
                reply.answer.append(dns.rrset.from_text(asked + ".", 300, "IN", "A", answer))
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def test_a_resolver_that_is_not_the_agents_teaches_nothing(gateway: NamesGateway) -> None:
    """Policy opens port 53 on example.com's address by mistake; the agent runs a DNS server
    there that binds api.openai.com to pastebin.com's address. The lab lists its resolver
    in ``names.resolvers``, so that answer teaches the engine nothing: TLS to pastebin's
    address claiming api.openai.com is decided by address (refused at the SYN)."""
    gateway.publish("names.yaml", "rogue-dns.yaml")
    time.sleep(3 * RELOAD_S)
    with lying_resolver(gateway.ns("up"), EXAMPLE[4], OPENAI_NAME, PASTEBIN[4]):
        reply = resolve(gateway.ns("a1"), OPENAI_NAME, "A", server=EXAMPLE[4])
        assert (reply.rcode, reply.answers) == (0, [PASTEBIN[4]]), reply  # the lie arrived
        cursor = gateway.cursor()
        done = tls(gateway, "a1", 4, PASTEBIN[4], sni=OPENAI_NAME)
    assert_reset_at_connect(done, "TLS to the address the lying resolver gave")
    event = cursor.one("flow.verdict", src_port=done.sport)
    assert_fields(event, state="deny", dst_ip=PASTEBIN[4], rule_id="lab-network")
    assert not event.get("names"), shown(event)
