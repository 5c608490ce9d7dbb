"""The lab's network from an agent, without Clawgress rules: names, HTTP(S), DNS, streams."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gatewayd.lab import (
    DNS_SERVER,
    METADATA,
    METADATA_NAME,
    SMALL_TXT_NAME,
    TUNNEL_NAME,
    TXT_RECORDS,
    Lab,
)
from gatewayd.lab.pki import issue_lab_pki

PROBE = Path(__file__).with_name("lab_dns_probe.py")
UDP_PROBE = Path(__file__).with_name("lab_udp_probe.py")
CURL = ["curl", "--silent", "--show-error", "--max-time", "10"]


def run(lab: Lab, agent: str, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = lab.exec(agent, argv, capture_output=True, text=True, timeout=30, **kwargs)
    assert done.returncode == 0, (argv, done.returncode, done.stderr)
    return done


def curl_json(lab: Lab, agent: str, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run(lab, agent, [*CURL, *args]).stdout)
    return data


def dns(lab: Lab, server: str, name: str, kind: str, *flags: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        run(lab, "a1", [sys.executable, str(PROBE), server, name, kind, *flags]).stdout
    )
    return data


def test_namespaces_have_the_planned_addresses(running_lab: Lab) -> None:
    report = running_lab.status()
    assert report["up"] is True
    by_name = {n["name"]: n for n in report["namespaces"]}
    gateway = by_name[running_lab.plan.gateway_ns]["addresses"]
    assert gateway["wl0"] == ["10.77.0.1/24", "fd77::1/64"]
    assert gateway["up0"] == ["10.78.0.1/24", "fd78::1/64"]
    for i in running_lab.plan.agent_indexes:
        address = running_lab.agent_address(i)
        eth0 = by_name[running_lab.plan.agent_ns(i)]["addresses"]["eth0"]
        assert eth0 == [f"{address.v4}/24", f"{address.v6}/64"]
    upstream = set(by_name[running_lab.plan.upstream_ns]["addresses"]["eth0"])
    for endpoint in (*running_lab.plan.services.values(), DNS_SERVER):
        assert f"{endpoint.v4}/32" in upstream
        assert f"{endpoint.v6}/128" in upstream
    assert {p["name"] for p in report["processes"] if p["alive"]} == {"dns", "upstream"}


@pytest.mark.parametrize("family", ["-4", "-6"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_agent_reaches_a_lab_name_routed_not_natted(
    running_lab: Lab, family: str, scheme: str
) -> None:
    served = curl_json(running_lab, "a2", family, f"{scheme}://api.openai.com/")
    expected = running_lab.addresses["api.openai.com"]
    agent = running_lab.agent_address(2)
    v6 = family == "-6"
    assert served["name"] == "api.openai.com"
    assert served["scheme"] == scheme
    assert served["address"] == str(expected.v6 if v6 else expected.v4)
    # The upstream sees the agent's own address: the gateway routes, it does not NAT.
    assert served["client"] == str(agent.v6 if v6 else agent.v4)


def test_every_lab_name_is_served_over_https(running_lab: Lab) -> None:
    for name in running_lab.names:
        assert curl_json(running_lab, "a1", f"https://{name}/")["name"] == name


def test_https_is_verified_against_the_lab_ca(running_lab: Lab, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(
        issue_lab_pki("other", ["api.openai.com"], [], dt.datetime.now(dt.UTC)).ca_cert_pem
    )
    done = running_lab.exec("a1", [*CURL, "https://api.openai.com/"], capture_output=True,
                            env={"CURL_CA_BUNDLE": str(other_ca)})
    assert done.returncode == 60  # peer certificate cannot be authenticated


@pytest.mark.parametrize("server", [str(DNS_SERVER.v4), str(DNS_SERVER.v6)])
def test_dns_answers_a_and_aaaa_with_the_lab_ttl(running_lab: Lab, server: str) -> None:
    expected = running_lab.addresses["github.com"]
    a = dns(running_lab, server, "github.com", "A")
    aaaa = dns(running_lab, server, "github.com", "AAAA")
    assert a == {"rcode": 0, "answers": [[str(expected.v4), 42]]}
    assert aaaa == {"rcode": 0, "answers": [[str(expected.v6), 42]]}


def test_dns_knows_the_metadata_name_and_nothing_else(running_lab: Lab) -> None:
    meta = dns(running_lab, str(DNS_SERVER.v4), METADATA_NAME, "A")
    assert meta["answers"] == [[str(METADATA.v4), 42]]
    missing = dns(running_lab, str(DNS_SERVER.v4), "not-a-lab-name.example", "A")
    assert missing == {"rcode": 3, "answers": []}  # NXDOMAIN


def test_agents_resolve_through_their_resolv_conf(running_lab: Lab) -> None:
    resolv = run(running_lab, "a1", ["cat", "/etc/resolv.conf"]).stdout
    assert f"nameserver {DNS_SERVER.v4}" in resolv
    hosts = run(running_lab, "a1", ["getent", "ahostsv4", "pastebin.com"]).stdout
    assert hosts.split()[0] == str(running_lab.addresses["pastebin.com"].v4)


def test_stream_sends_lines_as_it_goes(running_lab: Lab) -> None:
    proc = running_lab.popen(
        "a1", [*CURL, "--no-buffer", "http://example.com/stream?seconds=1.2&interval_ms=200"],
        stdout=subprocess.PIPE, text=True,
    )
    start = time.monotonic()
    arrivals = []
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            arrivals.append((time.monotonic() - start, json.loads(line)["seq"]))
    assert proc.returncode == 0
    assert [seq for _, seq in arrivals] == list(range(7))
    # Lines arrive over the second, not all at the end.
    assert arrivals[0][0] < 0.7
    assert arrivals[-1][0] >= 1.0


def test_keep_alive_reuses_the_connection(running_lab: Lab) -> None:
    done = run(running_lab, "a1", [*CURL, "--verbose", "-o", "/dev/null", "-o", "/dev/null",
                                   "http://github.com/", "http://github.com/bytes?n=10"])
    assert "Re-using existing connection" in done.stderr


def test_bytes_and_echo(running_lab: Lab) -> None:
    size = run(running_lab, "a1", [*CURL, "-o", "/dev/null", "-w", "%{size_download}",
                                   "https://example.com/bytes?n=3000000"]).stdout
    assert size == "3000000"
    echoed = run(running_lab, "a1", [*CURL, "--data-binary", "@-", "https://example.com/echo"],
                 input="x" * 100_000)
    assert json.loads(echoed.stdout) == {"received": 100_000}


def test_exec_passes_the_exit_code_and_the_lab_ca(running_lab: Lab) -> None:
    assert running_lab.exec("a1", ["sh", "-c", "exit 5"]).returncode == 5
    env = run(running_lab, "a1", ["sh", "-c", "echo $SSL_CERT_FILE $CURL_CA_BUNDLE"]).stdout
    # Agents trust the lab CA (its servers) and the gateway CA (intercepted TLS).
    assert env.split() == [str(running_lab.paths.trust_bundle)] * 2
    trusted = running_lab.paths.trust_bundle.read_bytes()
    assert running_lab.ca_bundle.read_bytes() in trusted
    assert trusted.count(b"BEGIN CERTIFICATE") == 2


def test_the_gateway_forwards_and_addresses_are_usable_at_once(running_lab: Lab) -> None:
    forwarding = run(running_lab, "gw", ["sysctl", "-n", "net.ipv4.ip_forward",
                                         "net.ipv6.conf.all.forwarding"]).stdout.split()
    assert forwarding == ["1", "1"]
    for target in ("gw", "up", "a1"):
        assert "tentative" not in run(running_lab, target, ["ip", "-6", "addr"]).stdout


def test_the_host_cli_uses_the_lab_config(running_lab: Lab) -> None:
    def clawgress(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "gatewayd", "--config", str(running_lab.config_path), *args],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    clawgress("agent", "add", "lab-researcher", "--team", "t", "--project", "p", "--env", "lab")
    address = str(running_lab.agent_address(1).v4)
    clawgress("lease", "grant", address, "--agent", "lab-researcher", "--ttl", "5m")
    [lease] = json.loads(clawgress("lease", "list", "--json"))
    assert lease["agent_id"] == "lab-researcher"
    assert lease["iface"] == "wl0"
    assert running_lab.paths.store.exists()
    clawgress("keys", "trusted")


# --- targets for bypass tests: more names, ports and protocols, reached with no engine ------

# The names for bypass tests and what they resolve to (written out: tests rely on them).
BYPASS_NAMES = {
    "cloudflare-dns.com": ("10.78.0.17", "fd78::17"),
    "dns.google": ("10.78.0.18", "fd78::18"),
    "cdn.lab": ("10.78.0.16", "fd78::16"),  # example.com's address
    "rebind.lab": ("127.0.0.1", "::1"),
    "gateway.lab": ("10.78.0.1", "fd78::1"),
    "private.lab": ("192.168.77.7", "fd99::7"),
}


@pytest.mark.parametrize("server", [str(DNS_SERVER.v4), str(DNS_SERVER.v6)])
def test_bypass_names_resolve_to_their_addresses(running_lab: Lab, server: str) -> None:
    assert running_lab.dns_ttl == 42
    for name, (v4, v6) in BYPASS_NAMES.items():
        assert running_lab.addresses[name].as_dict() == {"v4": v4, "v6": v6}
        assert dns(running_lab, server, name, "A") == {"rcode": 0, "answers": [[v4, 42]]}
        assert dns(running_lab, server, name, "AAAA") == {"rcode": 0, "answers": [[v6, 42]]}
    for name in (TUNNEL_NAME, SMALL_TXT_NAME):  # TXT only: the name exists, no address
        assert dns(running_lab, server, name, "A") == {"rcode": 0, "answers": []}
        assert dns(running_lab, server, name, "AAAA") == {"rcode": 0, "answers": []}


def test_the_big_txt_answer_needs_tcp_and_the_small_one_does_not(running_lab: Lab) -> None:
    server = str(DNS_SERVER.v4)
    big = [list(TXT_RECORDS[TUNNEL_NAME]), 42]
    assert sum(1 + len(s) for s in TXT_RECORDS[TUNNEL_NAME]) >= 1100
    # Over UDP without EDNS the answer does not fit in 512 bytes: truncated.
    over_udp = dns(running_lab, server, TUNNEL_NAME, "TXT")
    assert over_udp["truncated"] is True
    for server in (str(DNS_SERVER.v4), str(DNS_SERVER.v6)):
        assert dns(running_lab, server, TUNNEL_NAME, "TXT", "--tcp") == {
            "rcode": 0, "answers": [big]
        }
    small = dns(running_lab, str(DNS_SERVER.v4), SMALL_TXT_NAME, "TXT")
    assert small == {"rcode": 0, "answers": [[list(TXT_RECORDS[SMALL_TXT_NAME]), 42]]}


@pytest.mark.parametrize("family", ["-4", "-6"])
@pytest.mark.parametrize(
    ("url", "name", "scheme", "port"),
    [
        ("https://cloudflare-dns.com:853/", "cloudflare-dns.com", "https", 853),
        ("https://dns.google:853/", "dns.google", "https", 853),
        ("https://dns.google:8443/", "dns.google", "https", 8443),
        ("https://example.com:8443/", "example.com", "https", 8443),
        ("http://example.com:8080/", "example.com", "http", 8080),
        ("http://pastebin.com:8080/", "pastebin.com", "http", 8080),
        ("https://dns.google/", "dns.google", "https", 443),
    ],
)
def test_more_ports_answer_like_80_and_443(
    running_lab: Lab, family: str, url: str, name: str, scheme: str, port: int
) -> None:
    # TLS is verified against the lab CA, for the name in the URL.
    served = curl_json(running_lab, "a1", family, url)
    expected = running_lab.addresses[name]
    assert served["name"] == name
    assert (served["scheme"], served["port"]) == (scheme, port)
    assert served["address"] == str(expected.v6 if family == "-6" else expected.v4)
    assert served["client"] == str(running_lab.agent_address(1).v6 if family == "-6"
                                   else running_lab.agent_address(1).v4)


def test_a_dot_style_tls_handshake_on_853(running_lab: Lab) -> None:
    """What a DNS-over-TLS client does: TLS to 853 (ALPN "dot"), the name verified."""
    script = (
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context()\n"
        "ctx.set_alpn_protocols(['dot'])\n"
        "raw = socket.create_connection((sys.argv[1], 853), timeout=5)\n"
        "with ctx.wrap_socket(raw, server_hostname=sys.argv[1]) as tls:\n"
        "    print(tls.version())\n"
    )
    for name in ("cloudflare-dns.com", "dns.google"):
        done = run(running_lab, "a2", [sys.executable, "-c", script, name])
        assert done.stdout.strip() in ("TLSv1.2", "TLSv1.3")


def test_the_cdn_name_is_served_at_example_coms_address(running_lab: Lab) -> None:
    served = curl_json(running_lab, "a1", "-4", "https://cdn.lab/")  # the certificate names it
    assert served["address"] == str(running_lab.addresses["example.com"].v4)
    assert served["name"] == "example.com"  # the address's name; the Host header differs
    assert served["host"] == "cdn.lab"


@pytest.mark.parametrize("port", [443, 853])
@pytest.mark.parametrize("name", ["cloudflare-dns.com", "example.com", "api.openai.com"])
def test_udp_is_echoed_on_443_and_853(running_lab: Lab, name: str, port: int) -> None:
    endpoint = running_lab.addresses[name]
    for address in (str(endpoint.v4), str(endpoint.v6)):
        reply = json.loads(run(running_lab, "a1", [sys.executable, str(UDP_PROBE), address,
                                                   str(port)]).stdout)
        assert reply["received"] == reply["sent"], (name, address, port)
