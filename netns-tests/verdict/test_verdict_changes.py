"""Changes in the store reach the data plane without a restart: new flows are decided by
the new policy and leases within a second, and established flows that the change denies
(a revoked or expired lease, a quarantined agent, a policy that now denies them) end within
a second, each ended flow audited as ``flow.ended``.

Times are wall clock, taken after the CLI command returned (its own start-up is not
counted), and compared with ``CUT_WITHIN_S``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from verdict_net import (
    Download,
    curl,
    dns_query,
    exchange,
    next_local_port,
    udp_socket,
    url_host,
    wait_for,
)
from verdict_support import (
    A1,
    A3,
    CUT_WITHIN_S,
    DNS,
    FAMILIES,
    GITHUB,
    OPENAI,
    Gateway,
)

pytestmark = pytest.mark.netns

STREAM = "/stream?seconds=15&interval_ms=100"


def first_time(what: str, probe: Callable[[], bool], timeout: float = 3.0) -> float:
    """Poll ``probe`` every 50 ms; the wall-clock time when it first holds."""
    return wait_for(what, lambda: time.time() if probe() else None, timeout, interval=0.05)


# --- 5. reload without restart ---------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_a_published_policy_decides_new_flows_within_a_second(
    gateway: Gateway, family: int
) -> None:
    url = f"http://{url_host(OPENAI[family])}/"
    engine = gateway.lab.engine_pid()
    assert curl(gateway.lab, "a1", url).status == 200
    cursor = gateway.cursor()

    published = gateway.publish("listeners.yaml", "deny-openai.yaml")
    denied = first_time("api.openai.com to be denied",
                        lambda: curl(gateway.lab, "a1", url).rc == 7)
    assert denied - published < CUT_WITHIN_S
    loaded = cursor.wait("policy.loaded", version=gateway.version)
    assert loaded["source"] == "store"
    verdict = cursor.wait("flow.verdict", src_ip=A1[family], rule_id="openai-closed")
    assert verdict["bundle_version"] == gateway.version
    assert verdict["reason"] == "api.openai.com is closed by the test"

    published = gateway.publish("listeners.yaml")
    allowed = first_time("api.openai.com to be allowed again",
                         lambda: curl(gateway.lab, "a1", url).status == 200)
    assert allowed - published < CUT_WITHIN_S
    assert gateway.lab.engine_pid() == engine  # reloaded, not restarted


@pytest.mark.parametrize("family", FAMILIES)
def test_a_granted_lease_lets_an_unknown_agent_in_within_a_second(
    gateway: Gateway, family: int
) -> None:
    url = f"http://{url_host(OPENAI[family])}/"
    assert curl(gateway.lab, "a3", url).rc == 7
    cursor = gateway.cursor()

    gateway.clawgress("lease", "grant", A3[family], "--agent", "analyst")
    granted = time.time()
    allowed = first_time("a3 to be allowed", lambda: curl(gateway.lab, "a3", url).status == 200)
    assert allowed - granted < CUT_WITHIN_S
    event = cursor.wait("flow.verdict", src_ip=A3[family], action="allow")
    assert (event["agent_id"], event["team_id"], event["rule_id"]) == (
        "analyst", "research", "openai")


# --- 6. ending established flows -------------------------------------------------------


def assert_cut(download: Download, changed: float, what: str) -> float:
    """The download ended with a reset within ``CUT_WITHIN_S`` of ``changed``."""
    rc, ended = download.wait_ended(timeout=CUT_WITHIN_S + 5)
    # 56: "Recv failure: Connection reset by peer", mid-transfer.
    assert rc == 56, f"{what}: curl exit {rc} ({download.stderr()}), not a reset mid-transfer"
    assert ended - changed < CUT_WITHIN_S, f"{what}: cut {ended - changed:.3f}s after"
    # It was live until the change came (lines every 100 ms), then cut.
    assert download.lines[-1][0] > changed - CUT_WITHIN_S, f"{what}: the stream had stalled"
    return ended - changed


@pytest.fixture
def downloads() -> Iterator[list[Download]]:
    made: list[Download] = []
    yield made
    for d in made:
        d.close()


def start_stream(gateway: Gateway, downloads: list[Download], family: int,
                 agent: str = "a1") -> Download:
    """A 15 s stream: a1 from api.openai.com over HTTP, a2 from github.com over HTTPS."""
    host, scheme = (OPENAI, "http") if agent == "a1" else (GITHUB, "https")
    download = Download(gateway.lab, agent, f"{scheme}://{url_host(host[family])}{STREAM}")
    downloads.append(download)
    download.wait_started()
    return download


@pytest.mark.parametrize("family", FAMILIES)
def test_revoking_a_lease_ends_its_flows_within_a_second(
    gateway: Gateway, downloads: list[Download], family: int
) -> None:
    cursor = gateway.cursor()
    download = start_stream(gateway, downloads, family)
    other = start_stream(gateway, downloads, family, agent="a2")

    gateway.clawgress("lease", "revoke", A1[family])
    revoked = time.time()
    assert_cut(download, revoked, "revoked lease")
    ended = cursor.wait("flow.ended", src_port=download.local_port)
    assert (ended["src_ip"], ended["dst_ip"], ended["dst_port"], ended["protocol"]) == (
        A1[family], OPENAI[family], 80, "tcp")
    assert "no lease" in ended["reason"]
    # Only the flows of that lease: a2's download goes on.
    time.sleep(CUT_WITHIN_S)
    assert other.ended_at is None
    assert other.lines[-1][0] > revoked + CUT_WITHIN_S - 0.3
    assert cursor.events("flow.ended", src_port=other.local_port) == []


def test_a_flow_ended_by_a_revocation_names_its_agent(
    gateway: Gateway, downloads: list[Download]
) -> None:
    """``flow.ended`` for a revoked or expired lease names the agent whose lease it was
    (the audit trail of who lost what must say so), and how the lease ended."""
    cursor = gateway.cursor()
    download = start_stream(gateway, downloads, 4)
    gateway.clawgress("lease", "revoke", A1[4])
    download.wait_ended(timeout=CUT_WITHIN_S + 5)
    ended = cursor.wait("flow.ended", src_port=download.local_port)
    assert ended["agent_id"] == "researcher"
    assert "lease revoked" in ended["reason"]


@pytest.mark.parametrize("family", FAMILIES)
def test_quarantining_an_agent_ends_its_flows_and_denies_new_ones(
    gateway: Gateway, downloads: list[Download], family: int
) -> None:
    """``clawgress agent quarantine``: the agent's established flows end within a second,
    its new flows are denied with the quarantine's reason, other agents are untouched;
    ``agent release`` lets it back in."""
    cursor = gateway.cursor()
    download = start_stream(gateway, downloads, family)
    other = start_stream(gateway, downloads, family, agent="a2")
    url = f"http://{url_host(OPENAI[family])}/"
    try:
        gateway.clawgress("agent", "quarantine", "researcher", "--reason",
                          "uploads look like exfiltration")
        quarantined = time.time()
        assert_cut(download, quarantined, "quarantine")
        ended = cursor.wait("flow.ended", src_port=download.local_port)
        assert ended["agent_id"] == "researcher"
        assert ended["reason"] == "agent quarantined: uploads look like exfiltration"
        port = next_local_port()
        refused = curl(gateway.lab, "a1", url, "--local-port", str(port))
        assert refused.rc == 7
        verdict = cursor.wait("flow.verdict", src_port=port)
        assert (verdict["action"], verdict["agent_id"], verdict["flags"]) == (
            "deny", "researcher", ["quarantined"])
        assert verdict["reason"] == ("agent researcher is quarantined: uploads look like"
                                     " exfiltration")
        time.sleep(CUT_WITHIN_S)
        assert other.ended_at is None
    finally:
        gateway.clawgress("agent", "release", "researcher")
    first_time("the released agent to get through",
               lambda: curl(gateway.lab, "a1", url).status == 200)


def test_a_rule_whose_action_is_quarantine_quarantines_the_agent(
    gateway: Gateway, downloads: list[Download]
) -> None:
    """A flow that meets a ``quarantine`` rule is denied, and the engine flags its agent in
    the store: the agent's other flows end and its new ones are denied, until released."""
    cursor = gateway.cursor()
    gateway.publish("listeners.yaml", "quarantine-paste.yaml")
    cursor.wait("policy.loaded", version=gateway.version)
    download = start_stream(gateway, downloads, 4)
    try:
        port = next_local_port()
        assert curl(gateway.lab, "a1", "http://10.78.0.13/", "--local-port", str(port)).rc == 7
        verdict = cursor.wait("flow.verdict", src_port=port)
        assert (verdict["action"], verdict["rule_id"]) == ("quarantine", "paste-quarantines")
        flagged = cursor.wait("agent.quarantined", agent_id="researcher")
        assert flagged["reason"].startswith("rule verdict-tests-quarantine/paste-quarantines")
        assert_cut(download, time.time(), "quarantine by a rule")
        shown = json.loads(gateway.clawgress("agent", "show", "researcher", "--json"))
        assert shown["quarantine"]["reason"] == flagged["reason"]
        assert curl(gateway.lab, "a1", f"http://{url_host(OPENAI[4])}/").rc == 7
    finally:
        gateway.clawgress("agent", "release", "researcher")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_policy_that_now_denies_ends_flows_within_a_second(
    gateway: Gateway, downloads: list[Download], family: int
) -> None:
    cursor = gateway.cursor()
    download = start_stream(gateway, downloads, family)

    published = gateway.publish("listeners.yaml", "deny-openai.yaml")
    assert_cut(download, published, "policy now denies")
    ended = cursor.wait("flow.ended", src_port=download.local_port)
    assert ended["agent_id"] == "researcher"
    assert ended["reason"].startswith("policy now denies it")
    assert "api.openai.com is closed by the test" in ended["reason"]


@pytest.mark.parametrize("family", FAMILIES)
def test_an_expiring_lease_ends_its_flows_within_a_second_of_expiry(
    gateway: Gateway, downloads: list[Download], family: int
) -> None:
    # Granting the same address to the same agent renews it: it now expires in 2 s.
    gateway.clawgress("lease", "grant", A1[family], "--agent", "researcher", "--ttl", "2s")
    expires = gateway.lease_expiry(A1[family])
    cursor = gateway.cursor()
    download = start_stream(gateway, downloads, family)
    assert time.time() < expires, "the stream started after the lease had expired"

    cut = assert_cut(download, expires, "expired lease")
    assert cut > -0.05, f"cut {-cut:.3f}s before the lease expired"
    ended = cursor.wait("flow.ended", src_port=download.local_port)
    assert "no lease" in ended["reason"]


def refused_now(sock: socket.socket) -> bool:
    """A query on ``sock`` is answered with an ICMP error (not an answer, not silence)."""
    answer, _ = exchange(sock, dns_query())
    return isinstance(answer, OSError) and not isinstance(answer, TimeoutError)


def test_a_dns_message_read_after_its_flow_ended_does_not_revive_it(gateway: Gateway) -> None:
    """The engine reads every DNS message of an allowed flow. One that waited in the queue
    while the flow was ended must not put the flow back: the engine stamps what it only
    reads without a state, so the ended flow stays ended."""
    deny = f"{2 << 20:#x}/{0xF << 20:#x}"  # the deny state, in the lab's mark layout
    with udp_socket(gateway.ns("a1"), DNS[4], 53, timeout=0.5) as sock:
        answer, _ = exchange(sock, dns_query())
        assert isinstance(answer, bytes)
        sport = sock.getsockname()[1]
        with gateway.engine_paused():
            sock.send(dns_query(qid=0x0404))  # waits in the queue
            time.sleep(0.1)
            # The flow ends while that query waits (as a lease revocation would end it).
            gateway.ns("gw").run("conntrack", "-U", "-p", "udp", "--orig-src", A1[4],
                                 "--orig-port-src", str(sport), "--mark", deny)
        # The engine passes the waiting query on; the flow must stay ended.
        time.sleep(0.3)
        later = first_time("the ended flow to refuse a query", lambda: refused_now(sock),
                           timeout=2.0)
        assert later
    listing = gateway.ns("gw").run("conntrack", "-L", "-p", "udp", "--orig-src", A1[4],
                                   "--orig-port-src", str(sport)).stdout
    assert f"mark={2 << 20}" in listing, listing


@pytest.mark.parametrize("family", FAMILIES)
def test_revoking_a_lease_ends_its_udp_flows(gateway: Gateway, family: int) -> None:
    cursor = gateway.cursor()
    with udp_socket(gateway.ns("a1"), DNS[family], 53, timeout=0.3) as sock:
        answer, _ = exchange(sock, dns_query())
        assert isinstance(answer, bytes)
        gateway.clawgress("lease", "revoke", A1[family])
        revoked = time.time()
        refused = first_time("the UDP flow to be refused", lambda: refused_now(sock))
        sport = sock.getsockname()[1]
    assert refused - revoked < CUT_WITHIN_S
    ended = cursor.wait("flow.ended", src_port=sport)
    assert (ended["protocol"], ended["dst_port"]) == ("udp", 53)
