"""New flows, decided by the engine against the real kernel: what gets through, what is
refused and how fast, what it costs (one trip to userspace per flow), and what the audit
log says about each decision."""

from __future__ import annotations

import errno
import json
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from verdict_net import (
    counting_listener,
    curl,
    dns_query,
    exchange,
    next_local_port,
    tcp_attempt,
    udp_socket,
    url_host,
    wait_for,
)
from verdict_support import (
    A1,
    A2,
    A3,
    AT_ONCE_S,
    DNS,
    EXAMPLE,
    FAMILIES,
    GITHUB,
    OPENAI,
    PASTEBIN,
    Gateway,
)

pytestmark = pytest.mark.netns

RAW_GITHUB = {4: "10.78.0.15", 6: "fd78::15"}  # allowed; a report-mode policy would deny it
GATEWAY_WL = {4: "10.77.0.1", 6: "fd77::1"}    # the gateway itself: guard class
# What an ICMP admin-prohibited from the gateway turns into on a connected UDP socket
# (a closed port upstream would give ECONNREFUSED instead).
ADMIN_PROHIBITED = {4: errno.EHOSTUNREACH, 6: errno.EACCES}


# --- 1. allowed and denied -------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_allowed_flow_gets_through(gateway: Gateway, family: int, scheme: str) -> None:
    done = curl(gateway.lab, "a1", f"{scheme}://{url_host(OPENAI[family])}/")
    assert (done.rc, done.status) == (0, 200), done.stderr
    served = json.loads(done.body)
    assert served["scheme"] == scheme
    assert served["client"] == A1[family]  # routed, not NATed: the agent's own address


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("agent", "destination", "port", "why"),
    [
        ("a1", PASTEBIN, 443, "a deny rule (paste-sites)"),
        ("a2", OPENAI, 443, "the rule is for another team: default deny"),
        ("a1", EXAMPLE, 80, "no rule at all: default deny"),
        ("a1", GATEWAY_WL, 80, "the gateway's own address (guard class)"),
    ],
)
def test_a_denied_tcp_flow_is_reset_at_once(
    gateway: Gateway, family: int, agent: str, destination: dict[int, str], port: int,
    why: str,
) -> None:
    cursor = gateway.cursor()
    done = curl(gateway.lab, agent, f"http://{url_host(destination[family])}:{port}/")
    assert done.rc == 7, (why, done.stderr)  # could not connect
    assert done.elapsed < AT_ONCE_S, f"{why}: refused after {done.elapsed:.3f}s, not at once"
    # A reset, not an ICMP error: connect() says ECONNREFUSED.
    source = {"a1": A1, "a2": A2}[agent][family]
    attempt = tcp_attempt(gateway.ns(agent), source, destination[family], port)
    assert attempt.outcome == "refused", why
    assert attempt.elapsed < AT_ONCE_S
    # The engine refused it (nothing listens on the gateway's port 80 either).
    event = cursor.one("flow.verdict", src_port=attempt.sport)
    assert (event["state"], event["dst_ip"]) == ("deny", destination[family]), why


@pytest.mark.parametrize("family", FAMILIES)
def test_udp_to_a_denied_destination_gets_admin_prohibited_at_once(
    gateway: Gateway, family: int
) -> None:
    # A listener at the denied destination shows nothing got past the gateway.
    with counting_listener(gateway.ns("up"), PASTEBIN[family], 9053, socket.SOCK_DGRAM) as up, \
            udp_socket(gateway.ns("a1"), PASTEBIN[family], 9053) as sock:
        refused, elapsed = exchange(sock, b"hello")
        time.sleep(0.1)
        assert up.total() == 0
    assert isinstance(refused, OSError), "the datagram was answered"
    assert not isinstance(refused, TimeoutError), "no ICMP error came back"
    assert refused.errno == ADMIN_PROHIBITED[family], refused
    assert elapsed < AT_ONCE_S


@pytest.mark.parametrize("family", FAMILIES)
def test_an_allowed_udp_flow_works(gateway: Gateway, family: int) -> None:
    with udp_socket(gateway.ns("a1"), DNS[family], 53) as sock:
        sock.send(dns_query("github.com", qid=0x1234))
        answer = sock.recv(512)
    assert answer[:2] == b"\x12\x34"
    assert answer[3] & 0x0F == 0  # rcode NOERROR
    assert int.from_bytes(answer[6:8], "big") >= 1  # an answer
    assert socket.inet_aton(GITHUB[4]) in answer


# --- 2. unknown sources ----------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_an_unknown_source_is_denied_and_audited_as_unknown(
    gateway: Gateway, family: int
) -> None:
    cursor = gateway.cursor()
    # api.openai.com is open to team research; without a lease nobody is in any team.
    done = curl(gateway.lab, "a3", f"http://{url_host(OPENAI[family])}/")
    assert done.rc == 7, done.stderr
    assert done.elapsed < AT_ONCE_S
    event = cursor.one("flow.verdict", src_ip=A3[family], dst_ip=OPENAI[family])
    assert event["agent_id"] is None
    assert "team_id" not in event
    assert "unknown identity" in event["reason"]
    assert "unknown-identity" in event["flags"]
    assert (event["action"], event["state"], event["iface"]) == ("deny", "deny", "wl0")


@pytest.mark.parametrize("family", FAMILIES)
def test_an_unknown_source_gets_no_dns_either(gateway: Gateway, family: int) -> None:
    cursor = gateway.cursor()
    with udp_socket(gateway.ns("a3"), DNS[family], 53) as sock:
        refused, _ = exchange(sock, dns_query())
    assert isinstance(refused, OSError), "an unknown source got an answer"
    assert refused.errno == ADMIN_PROHIBITED[family], refused
    event = cursor.one("flow.verdict", src_ip=A3[family], dst_port=53)
    assert event["agent_id"] is None
    assert event["protocol"] == "udp"


# --- 3. one trip to userspace per flow --------------------------------------------------


@pytest.fixture
def upload_file(tmp_path: Path) -> Path:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"u" * 2_000_000)
    return path


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("direction", ["download", "upload"])
def test_a_long_tcp_flow_is_queued_once(
    gateway: Gateway, upload_file: Path, family: int, direction: str
) -> None:
    """Megabytes each way, yet only the SYN went to the engine: the rest of the flow
    stays in the kernel on its conntrack mark."""
    cursor = gateway.cursor()
    before = gateway.queued()
    host = url_host(OPENAI[family])
    if direction == "download":
        done = curl(gateway.lab, "a1", f"http://{host}/bytes?n=2000000", "-o", "/dev/null")
    else:
        done = curl(gateway.lab, "a1", f"http://{host}/echo", "--data-binary",
                    f"@{upload_file}")
    queued = gateway.queued() - before
    assert done.rc == 0, done.stderr
    if direction == "upload":
        assert json.loads(done.body) == {"received": 2_000_000}
    assert queued == 1
    cursor.one("flow.verdict", src_port=done.local_port)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_udp_flow_is_queued_once(gateway: Gateway, family: int) -> None:
    cursor = gateway.cursor()
    with counting_listener(gateway.ns("up"), EXAMPLE[family], 9022, socket.SOCK_DGRAM) as up, \
            udp_socket(gateway.ns("a1"), EXAMPLE[family], 9022) as sock:
        sport = sock.getsockname()[1]
        sock.send(b"first")
        wait_for("the first datagram upstream", lambda: up.total() == 1, timeout=3.0)
        before = gateway.queued()
        for _ in range(8):
            sock.send(b"more")
        wait_for("every datagram upstream", lambda: up.total() == 9, timeout=3.0)
        assert gateway.queued() == before
    cursor.one("flow.verdict", src_port=sport)


@pytest.mark.parametrize("family", FAMILIES)
def test_dns_messages_are_read_and_the_flow_decided_once(gateway: Gateway, family: int) -> None:
    """On an allowed DNS flow the engine reads every query and every answer (names it must
    answer itself, addresses it learns), and records the flow once."""
    cursor = gateway.cursor()
    before = gateway.queued()
    with udp_socket(gateway.ns("a1"), DNS[family], 53) as sock:
        sport = sock.getsockname()[1]
        for qid in range(8):
            sock.send(dns_query(qid=qid))
            assert sock.recv(512)[:2] == qid.to_bytes(2, "big")
    assert gateway.queued() - before == 16
    cursor.one("flow.verdict", src_port=sport)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_udp_burst_sent_before_the_verdict_is_one_decision(
    gateway: Gateway, family: int
) -> None:
    """Datagrams of a new UDP flow that arrive while its first one waits for the verdict
    each get an unconfirmed conntrack entry of their own, so each is queued; the engine
    remembers the flow's verdict for a moment and decides and audits it once. The glibc
    resolver does this on many lookups (A and AAAA back to back on one socket).

    The engine is paused while the burst is sent so that every datagram arrives before the
    verdict (otherwise how many do is a race). Each datagram still gets a correct verdict;
    the flow must be decided, and audited, once.
    """
    cursor = gateway.cursor()
    with counting_listener(gateway.ns("up"), EXAMPLE[family], 9021, socket.SOCK_DGRAM) as up, \
            udp_socket(gateway.ns("a1"), EXAMPLE[family], 9021) as sock:
        sport = sock.getsockname()[1]
        with gateway.engine_paused():
            for i in range(10):
                sock.send(b"datagram %d" % i)
            time.sleep(0.1)
        wait_for("10 datagrams upstream", lambda: up.total() == 10, timeout=3)  # all allowed
    events = cursor.settled("flow.verdict", 1, src_port=sport)
    assert len(events) == 1, f"one UDP flow, {len(events)} flow.verdict events"


@pytest.mark.parametrize("family", FAMILIES)
def test_a_denied_udp_flow_is_decided_once(gateway: Gateway, family: int) -> None:
    """A denied datagram is rejected in the forward hook, so its conntrack entry is never
    confirmed and conntrack cannot keep the *deny* state; the ruleset remembers the flow's
    tuple in ``denied4``/``denied6`` instead, so later datagrams of the same flow (same
    socket, same ports) are refused in the kernel: one round trip, one audit line."""
    cursor = gateway.cursor()
    before = gateway.queued()
    with udp_socket(gateway.ns("a1"), PASTEBIN[family], 9022, timeout=0.3) as sock:
        sport = sock.getsockname()[1]
        for _ in range(5):
            exchange(sock, b"retry")
            time.sleep(0.05)
    queued = gateway.queued() - before
    events = cursor.settled("flow.verdict", 5, src_port=sport)
    assert (queued, len(events)) == (1, 1), (
        f"one denied UDP flow: {queued} packets queued, {len(events)} flow.verdict events")


# --- 4. one audit event per verdict, with its fields ------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_every_verdict_writes_one_audit_event_with_its_fields(
    gateway: Gateway, family: int
) -> None:
    lab = gateway.lab
    started = time.time()
    metrics_before = gateway.metrics(newer_than=started)
    queued_before = gateway.queued()
    cursor = gateway.cursor()

    def tcp(agent: str, destination: dict[int, str], port: int) -> tuple[str, int]:
        local = next_local_port()
        scheme = "https" if port == 443 else "http"
        curl(lab, agent, f"{scheme}://{url_host(destination[family])}:{port}/",
             "--local-port", str(local))
        return {"a1": A1, "a2": A2, "a3": A3}[agent][family], local

    flows = {
        "allowed": tcp("a1", OPENAI, 443),
        "shadowed": tcp("a1", RAW_GITHUB, 443),
        "denied by rule": tcp("a1", PASTEBIN, 80),
        "denied by default": tcp("a2", OPENAI, 443),
        "unknown": tcp("a3", GITHUB, 443),
    }
    with udp_socket(gateway.ns("a1"), DNS[family], 53) as sock:
        sock.send(dns_query())
        sock.recv(512)
        flows["udp"] = (A1[family], sock.getsockname()[1])
    queued = gateway.queued() - queued_before
    metrics_after = gateway.metrics(newer_than=time.time())

    expected: dict[str, dict[str, Any]] = {
        "allowed": {"agent_id": "researcher", "team_id": "research", "project_id": "alpha",
                    "environment": "lab", "action": "allow", "state": "allow",
                    "policy_id": "lab", "rule_id": "openai", "dst_ip": OPENAI[family],
                    "dst_port": 443, "protocol": "tcp",
                    "reason": "research may call the OpenAI API", "shadow": None},
        "shadowed": {"agent_id": "researcher", "action": "allow", "rule_id": "code-hosting",
                     "dst_port": 443},
        "denied by rule": {"agent_id": "researcher", "action": "deny", "state": "deny",
                           "policy_id": "lab", "rule_id": "paste-sites", "dst_port": 80,
                           "reason": "paste sites are an exfiltration channel"},
        "denied by default": {"agent_id": "builder", "team_id": "build", "action": "deny",
                              "state": "deny", "policy_id": None, "rule_id": None,
                              "reason": "no rule matched; default deny"},
        "unknown": {"agent_id": None, "action": "deny", "state": "deny", "rule_id": None},
        "udp": {"agent_id": "researcher", "action": "allow", "state": "allow",
                "rule_id": "dns", "dst_ip": DNS[family], "dst_port": 53, "protocol": "udp",
                "reason": "the lab resolver"},
    }
    for name, (src, sport) in flows.items():
        event = cursor.one("flow.verdict", src_ip=src, src_port=sport)
        for key, value in expected[name].items():
            assert event.get(key) == value, f"{name}: {key} is {event.get(key)!r}"
        assert event["ip_version"] == family
        assert event["iface"] == "wl0"
        assert event["layer"] == "l4"
        assert event["gateway"] == gateway.lab.plan.gateway_ns
        assert event["bundle_version"] == gateway.version
        assert event["event_id"]
        assert event["ts"]
    # The report-mode rule that would deny it is recorded, not enforced.
    shadowed = cursor.one("flow.verdict", src_port=flows["shadowed"][1])
    assert shadowed["shadow"] is not None
    assert (shadowed["shadow"]["action"], shadowed["shadow"]["policy_id"],
            shadowed["shadow"]["rule_id"]) == ("deny", "lab-rollout", "no-raw-downloads")

    # Nothing else was decided, and each decision was written once: queued packets,
    # verdict counters and flow.verdict events agree. (The DNS flow's answer is queued
    # too: the engine reads it, without deciding anything.)
    audited = len(cursor.events("flow.verdict"))
    counted = sum(v - metrics_before.get(k, 0) for k, v in metrics_after.items()
                  if k.startswith('clawgress_engine_events_total{event="verdict_'))
    assert (queued - 1, counted, audited) == (len(flows),) * 3


@pytest.mark.parametrize("family", FAMILIES)
def test_a_new_connection_on_a_reset_flows_ports_gets_its_own_verdict(
    gateway: Gateway, family: int
) -> None:
    """A connection the server resets leaves its conntrack entry (marked *allow*) for a
    while, and conntrack lets a new SYN from the same address and port to the same
    destination reopen that entry, mark and all. It is a new flow all the same: its SYN
    is queued, decided and audited, not carried by the old flow's verdict."""
    cursor = gateway.cursor()
    port = next_local_port()
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    accepted = []
    with gateway.ns("up").socket(af, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((EXAMPLE[family], 9031))
        server.listen(8)
        server.settimeout(3)
        for _ in range(3):
            with gateway.ns("a1").socket(af, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.settimeout(2)
                sock.bind((A1[family], port))
                sock.connect((EXAMPLE[family], 9031))
                conn, _ = server.accept()
                accepted.append(conn)
                # The server resets the connection.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                time.sleep(0.1)
    assert len(accepted) == 3
    events = cursor.settled("flow.verdict", 3, src_port=port)
    assert len(events) == 3, f"3 connections on one tuple, {len(events)} verdicts"
    assert {e["action"] for e in events} == {"allow"}
