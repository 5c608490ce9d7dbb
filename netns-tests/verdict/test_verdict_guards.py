"""What the kernel refuses before the engine sees it, and what keeps the ruleset in place:
spoofed sources, the lease's interface, protocols other than TCP and UDP, unsolicited
inbound connections, and drift (rules removed under the running engine come back)."""

from __future__ import annotations

import re
import shlex
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from nsutil import Namespace
from verdict_net import (
    counting_listener,
    curl,
    extra_address,
    tcp_attempt,
    url_host,
    wait_for,
)
from verdict_support import (
    A1,
    A2,
    A3,
    AT_ONCE_S,
    DRIFT_CHECK_S,
    EXAMPLE,
    FAMILIES,
    OPENAI,
    PASTEBIN,
    Gateway,
)

pytestmark = pytest.mark.netns

UPSTREAM_SELF = {4: "10.78.0.2", 6: "fd78::2"}
SPOOFED = {4: "10.99.0.5", 6: "fd99::5"}  # outside the workload subnets
HOST_PREFIX = {4: 32, 6: 128}


class UpstreamProbe:
    """Counts packets arriving in the upstream namespace from given sources (a table of
    the test's own there, before anything else sees them; removed afterwards)."""

    TABLE = "cgverdict_probe"

    def __init__(self, ns: Namespace, sources: list[str]) -> None:
        self.ns = ns
        rules = "\n".join(
            f'{"ip6" if ":" in s else "ip"} saddr {s} counter comment "{s}"' for s in sources)
        ns.run("nft", "-f", "-", input=(
            f"table inet {self.TABLE} {{\n"
            "  chain arrivals {\n"
            "    type filter hook prerouting priority raw - 10; policy accept;\n"
            f"{rules}\n"
            "  }\n"
            "}\n"))

    def count(self, source: str) -> int:
        listing = self.ns.nft("list", "chain", "inet", self.TABLE, "arrivals").stdout
        match = re.search(rf'counter packets (\d+) bytes \d+ comment "{re.escape(source)}"',
                          listing)
        assert match, listing
        return int(match.group(1))

    def remove(self) -> None:
        self.ns.nft("delete", "table", "inet", self.TABLE, check=False)


@contextmanager
def upstream_probe(gateway: Gateway, *sources: str) -> Iterator[UpstreamProbe]:
    probe = UpstreamProbe(gateway.ns("up"), list(sources))
    try:
        yield probe
    finally:
        probe.remove()


# --- 9. anti-spoofing ------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_a_source_outside_the_workload_subnets_is_dropped_in_the_kernel(
    gateway: Gateway, family: int
) -> None:
    a1 = gateway.ns("a1")
    dst, port = EXAMPLE[family], 9060
    antispoof = gateway.rule_counter("antispoof", "spoofed source")
    queued = gateway.queued()
    cursor = gateway.cursor()
    with upstream_probe(gateway, SPOOFED[family], A1[family]) as probe, \
            counting_listener(gateway.ns("up"), dst, port) as upstream, \
            extra_address(a1, f"{SPOOFED[family]}/{HOST_PREFIX[family]}"):
        spoofed = tcp_attempt(a1, SPOOFED[family], dst, port, timeout=1.0)
        # The same listener from a1's own address: the probe and the listener work.
        genuine = tcp_attempt(a1, A1[family], dst, port)
        time.sleep(0.2)
        assert spoofed.outcome == "timeout"  # dropped silently, retransmitted, dropped
        assert genuine.outcome == "connected"
        assert probe.count(SPOOFED[family]) == 0, "a spoofed packet reached the upstream"
        assert probe.count(A1[family]) > 0
        assert upstream.ports() == {genuine.sport}
    assert gateway.rule_counter("antispoof", "spoofed source") - antispoof >= 1
    assert gateway.queued() - queued == 1  # the genuine connection only
    assert cursor.events("flow.verdict", src_ip=SPOOFED[family]) == []


@pytest.mark.parametrize("family", FAMILIES)
def test_a_neighbours_address_on_the_same_interface_takes_its_identity(
    gateway: Gateway, family: int
) -> None:
    """What the lease model does NOT protect against, shown so that nobody assumes it does.

    A lease binds an address to an agent *on an interface* (here the bridge ``wl0`` all
    agents share), not to a MAC address or a bridge port. An agent on the same segment
    that takes a neighbour's leased address passes anti-spoofing (the source is in the
    subnet) and is decided as that neighbour. Binding identities to ports needs one
    workload interface per agent (a routed veth each), or IP/MAC binding on the bridge.

    The connection itself may fail (replies go wherever the gateway's neighbour cache
    points); the decision is what matters here.
    """
    a1, gw = gateway.ns("a1"), gateway.ns("gw")
    cursor = gateway.cursor()
    try:
        with counting_listener(gateway.ns("up"), EXAMPLE[family], 9061), \
                extra_address(a1, f"{A2[family]}/{HOST_PREFIX[family]}"):
            attempt = tcp_attempt(a1, A2[family], EXAMPLE[family], 9061, timeout=1.0)
            event = cursor.wait("flow.verdict", src_ip=A2[family], src_port=attempt.sport)
    finally:
        # a1 may have answered neighbour solicitations for a2's address.
        for version in ("-4", "-6"):
            gw.run("ip", version, "neigh", "flush", "dev", "wl0", check=False)
    assert (event["agent_id"], event["team_id"], event["iface"]) == ("builder", "build", "wl0")
    assert event["action"] == "allow"


def test_a_lease_for_another_interface_gives_no_identity(gateway: Gateway) -> None:
    """A lease binds an address on one interface only: traffic from that address arriving
    on another interface has no identity. The CLI refuses such a lease against the
    gateway's own configuration (the address must lie in the interface's subnets, and
    subnets may not overlap), so it is written through a configuration that names the
    same subnets ``wl9``, with the same store: the engine (which knows only ``wl0``)
    holds a lease of 10.77.0.13 on ``wl9`` while a3's packets arrive on ``wl0``."""
    refused = gateway.run_clawgress("lease", "grant", A3[4], "--agent", "analyst",
                                    "--iface", "wl9")
    assert refused.returncode != 0
    other = gateway.work / "other-interface.yaml"
    text = gateway.lab.config_path.read_text()
    assert "name: wl0" in text
    other.write_text(text.replace("name: wl0", "name: wl9"))
    gateway.clawgress("lease", "grant", A3[4], "--agent", "analyst", "--iface", "wl9",
                      config=other)
    time.sleep(0.75)  # the engine reloads
    cursor = gateway.cursor()
    url = f"http://{OPENAI[4]}/"

    denied = curl(gateway.lab, "a3", url)
    assert denied.rc == 7
    event = cursor.wait("flow.verdict", src_ip=A3[4])
    assert event["agent_id"] is None
    assert "unknown identity" in event["reason"]

    # The same lease on the interface a3 is really behind: a3 is the analyst.
    gateway.clawgress("lease", "revoke", A3[4])
    gateway.clawgress("lease", "grant", A3[4], "--agent", "analyst")
    allowed = wait_for("a3 allowed", lambda: curl(gateway.lab, "a3", url).status == 200, 3)
    assert allowed


# --- other protocols, and inbound ------------------------------------------------------


def ping(ns: Namespace, dst: str, timeout: float = 1.0) -> bool:
    """One ICMP echo request from ``ns`` (a raw socket); whether a reply came back."""
    v6 = ":" in dst
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    request, reply = (128, 129) if v6 else (8, 0)
    body = struct.pack("!HH", 0x4347, 1) + b"clawgress!"  # an even length
    header = struct.pack("!BBH", request, 0, 0)
    if not v6:  # the kernel fills in the ICMPv6 checksum, not the ICMP one
        total = sum(struct.unpack(f"!{len(header + body) // 2}H", header + body))
        total = (total & 0xFFFF) + (total >> 16)
        header = struct.pack("!BBH", request, 0, ~(total + (total >> 16)) & 0xFFFF)
    with ns.socket(family, socket.SOCK_RAW, proto) as sock:
        sock.settimeout(timeout)
        sock.sendto(header + body, (dst, 0))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(2048)
            except TimeoutError:
                return False
            icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
            if icmp[0] == reply and icmp[4:6] == body[:2]:
                return True
    return False


@pytest.mark.parametrize("family", FAMILIES)
def test_protocols_other_than_tcp_and_udp_do_not_leave(gateway: Gateway, family: int) -> None:
    dropped = gateway.rule_counter("classify", "only tcp and udp leave")
    queued = gateway.queued()
    assert not ping(gateway.ns("a1"), EXAMPLE[family]), "an ICMP echo went through"
    assert gateway.rule_counter("classify", "only tcp and udp leave") - dropped == 1
    assert gateway.queued() == queued
    # Without the gateway's rules in the way the same echo is answered (the probe works).
    assert ping(gateway.ns("gw"), EXAMPLE[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_an_unsolicited_inbound_connection_is_dropped(gateway: Gateway, family: int) -> None:
    dropped = gateway.rule_counter("forward_filter", "unsolicited inbound")
    queued = gateway.queued()
    with counting_listener(gateway.ns("a1"), A1[family], 7001) as agent:
        attempt = tcp_attempt(gateway.ns("up"), UPSTREAM_SELF[family], A1[family], 7001,
                              timeout=1.0)
        time.sleep(0.1)
        assert agent.total() == 0
    assert attempt.outcome == "timeout"  # dropped, not refused: nothing tells it apart
    assert gateway.rule_counter("forward_filter", "unsolicited inbound") - dropped >= 1
    assert gateway.queued() == queued
    # The other way round works, replies included.
    assert curl(gateway.lab, "a1", f"http://{url_host(OPENAI[family])}/").status == 200


# --- 10. drift -------------------------------------------------------------------------


def xtables_rules(gw: Namespace) -> list[str]:
    """Our tagged xtables rules (``-A`` lines), both families."""
    rules = []
    for tool in ("iptables-nft", "ip6tables-nft"):
        for table, chain in (("mangle", "PREROUTING"), ("filter", "FORWARD")):
            out = gw.run(tool, "-w", "-t", table, "-S", chain).stdout
            rules += [f"{tool} {table} {line}" for line in out.splitlines() if "clawgress" in line]
    return rules


def ruleset_shape(gateway: Gateway) -> str:
    """The table as listed without counters and without the flood sets' elements, and our
    xtables rules: what ``apply`` makes, not what traffic did to it."""
    listed = gateway.ns("gw").run("nft", "-s", "list", "table", "inet", "clawgress", check=False)
    table = listed.stdout if listed.returncode == 0 else "(no table inet clawgress)"
    table = re.sub(r"\s*elements = \{[^}]*\}", "", table)
    return table + "\n".join(xtables_rules(gateway.ns("gw")))


def break_ruleset(gateway: Gateway, how: str) -> None:
    gw = gateway.ns("gw")
    if how == "flush table":
        gateway.nft("flush", "table", "inet", "clawgress")
    elif how == "delete table":
        gateway.nft("delete", "table", "inet", "clawgress")
    elif how == "delete a rule":
        listing = gateway.nft("-a", "list", "chain", "inet", "clawgress", "commit")
        handle = re.findall(r'comment "fail-closed" # handle (\d+)', listing)[0]
        gateway.nft("delete", "rule", "inet", "clawgress", "commit", "handle", handle)
    elif how == "delete the xtables queue rule":
        [rule] = [r for r in xtables_rules(gw) if "mangle" in r and r.startswith("iptables")]
        tool, table, *spec = shlex.split(rule)
        assert spec[0] == "-A"
        gw.run(tool, "-w", "-t", table, "-D", *spec[1:])
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["flush table", "delete table", "delete a rule", "delete the xtables queue rule"])
def test_a_changed_ruleset_is_restored_and_audited(gateway: Gateway, how: str) -> None:
    applied = ruleset_shape(gateway)
    cursor = gateway.cursor()
    engine = gateway.lab.engine_pid()

    break_ruleset(gateway, how)
    broken = time.monotonic()
    assert ruleset_shape(gateway) != applied
    event = cursor.wait("ruleset.restored", timeout=DRIFT_CHECK_S + 2)
    restored = time.monotonic() - broken
    assert restored < DRIFT_CHECK_S + 1.0, f"restored {restored:.2f}s later"
    assert event["drift"]
    assert event["digest"]
    assert ruleset_shape(gateway) == applied
    assert gateway.lab.engine_pid() == engine

    # Decisions work as before.
    assert curl(gateway.lab, "a1", f"https://{OPENAI[4]}/").status == 200
    denied = curl(gateway.lab, "a1", f"http://{url_host(PASTEBIN[6])}/")
    assert denied.rc == 7
    assert denied.elapsed < AT_ONCE_S
    assert curl(gateway.lab, "a3", f"http://{OPENAI[4]}/").rc == 7
    cursor.wait("flow.verdict", src_ip=A3[4], agent_id=None)
    assert len(cursor.events("ruleset.restored")) == 1


def test_the_restored_event_says_what_drifted_in_words(gateway: Gateway) -> None:
    """``ruleset.restored`` says in one line what had drifted (``Drift.describe()``)."""
    cursor = gateway.cursor()
    break_ruleset(gateway, "delete the xtables queue rule")
    event = cursor.wait("ruleset.restored", timeout=DRIFT_CHECK_S + 2)
    assert event["drift"] == "iptables-nft rule in mangle PREROUTING is missing (queue 0)"
