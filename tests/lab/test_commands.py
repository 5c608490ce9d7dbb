from __future__ import annotations

from pathlib import Path

import pytest

from gatewayd.lab.commands import (
    ALT_HTTP_PORT,
    ALT_HTTPS_PORT,
    DOT_PORT,
    SYSCTLS_ALL,
    SYSCTLS_GATEWAY,
    UDP_ECHO_PORTS,
    UPSTREAM_TCP_PORTS,
    clawgress_argv,
    dns_server_argv,
    in_namespace,
    sysctl_argv,
    upstream_argv,
)
from gatewayd.lab.plan import (
    CDN_NAME,
    LAB_NAMES,
    METADATA_NAME,
    REBIND_NAME,
    SMALL_TXT_NAME,
    TUNNEL_NAME,
    LabPlan,
)
from gatewayd.lab.state import StatePaths


def test_dns_server_answers_every_name_in_both_families() -> None:
    plan = LabPlan()
    argv = dns_server_argv(plan, 30, dnsmasq="/usr/sbin/dnsmasq")
    assert argv[0] == "/usr/sbin/dnsmasq"
    for name, endpoint in plan.dns_names.items():
        assert f"--address=/{name}/{endpoint.v4}" in argv
        assert f"--address=/{name}/{endpoint.v6}" in argv
    assert f"--address=/{METADATA_NAME}/169.254.169.254" in argv
    # The services, metadata.lab, cdn.lab, rebind.lab, gateway.lab, private.lab; then "#".
    assert len([a for a in argv if a.startswith("--address=/")]) == 2 * len(LAB_NAMES) + 10 + 1


def test_dns_server_answers_the_bypass_names() -> None:
    argv = dns_server_argv(LabPlan(), 30)
    for flag in (f"--address=/{CDN_NAME}/10.78.0.16", f"--address=/{CDN_NAME}/fd78::16",
                 f"--address=/{REBIND_NAME}/127.0.0.1", f"--address=/{REBIND_NAME}/::1",
                 "--address=/gateway.lab/10.78.0.1", "--address=/gateway.lab/fd78::1",
                 "--address=/private.lab/192.168.77.7", "--address=/private.lab/fd99::7",
                 "--address=/cloudflare-dns.com/10.78.0.17", "--address=/dns.google/fd78::18"):
        assert flag in argv


def test_dns_server_serves_the_txt_records() -> None:
    plan = LabPlan()
    argv = dns_server_argv(plan, 30)
    txt = {a.split("=", 1)[1].split(",", 1)[0]: a.split("=", 1)[1].split(",")[1:]
           for a in argv if a.startswith("--txt-record=")}
    assert txt == {name: list(strings) for name, strings in plan.txt_records.items()}
    assert set(txt) == {TUNNEL_NAME, SMALL_TXT_NAME}
    # Before the catch-all, like every other record.
    assert argv.index(f"--txt-record={TUNNEL_NAME},{','.join(txt[TUNNEL_NAME])}") < len(argv) - 1


def test_dns_server_is_self_contained() -> None:
    argv = dns_server_argv(LabPlan(), 30)
    for flag in ("--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                 "--bind-interfaces", "--listen-address=10.78.0.53",
                 "--listen-address=fd78::53", "--local-ttl=30"):
        assert flag in argv
    # Unknown names: NXDOMAIN, listed last so every lab name is more specific.
    assert argv[-1] == "--address=/#/"


@pytest.mark.parametrize("ttl", [0, 1, 3600])
def test_dns_ttl_is_passed(ttl: int) -> None:
    assert f"--local-ttl={ttl}" in dns_server_argv(LabPlan(), ttl)


def test_dns_ttl_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="TTL"):
        dns_server_argv(LabPlan(), -1)


def test_upstream_command_lists_every_service(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    argv = upstream_argv("/venv/bin/python", LabPlan(), paths)
    assert argv[:3] == ["/venv/bin/python", "-m", "gatewayd.lab.upstream"]
    assert argv[argv.index("--cert") + 1] == str(paths.upstream_cert)
    assert argv[argv.index("--key") + 1] == str(paths.upstream_key)
    services = [argv[i + 1] for i, a in enumerate(argv) if a == "--service"]
    assert services[0] == "api.openai.com=10.78.0.10,fd78::10"
    assert len(services) == len(LAB_NAMES)
    assert "cloudflare-dns.com=10.78.0.17,fd78::17" in services


def test_upstream_command_asks_for_every_listener(tmp_path: Path) -> None:
    argv = upstream_argv("/py", LabPlan(), StatePaths(tmp_path))

    def values(flag: str) -> list[int]:
        return [int(argv[i + 1]) for i, a in enumerate(argv) if a == flag]

    assert values("--http-port") == [80]
    assert values("--https-port") == [443]
    assert values("--alt-http-port") == [ALT_HTTP_PORT] == [8080]
    assert values("--alt-https-port") == [DOT_PORT, ALT_HTTPS_PORT] == [853, 8443]
    assert values("--udp-echo-port") == list(UDP_ECHO_PORTS) == [443, 853]
    # What `lab up` waits for is what the upstream is asked to listen on.
    assert set(UPSTREAM_TCP_PORTS) == {80, 443, 853, 8443, 8080}


def test_commands_are_wrapped_for_their_namespace(tmp_path: Path) -> None:
    argv = clawgress_argv("/py", StatePaths(tmp_path), "rules", "apply")
    assert argv == ["/py", "-m", "gatewayd", "--config", str(tmp_path / "gateway.yaml"),
                    "rules", "apply"]
    assert in_namespace("/sbin/ip", "x-gw", argv) == ["/sbin/ip", "netns", "exec", "x-gw", *argv]


def test_sysctls() -> None:
    assert sysctl_argv("/sbin/sysctl", {"a.b": "1", "c.d": "0"}) == [
        "/sbin/sysctl", "-q", "-w", "a.b=1", "c.d=0"
    ]
    assert SYSCTLS_GATEWAY["net.ipv4.ip_forward"] == "1"
    assert SYSCTLS_GATEWAY["net.ipv6.conf.all.forwarding"] == "1"
    assert "net.ipv4.ip_forward" not in SYSCTLS_ALL
    for settings in (SYSCTLS_ALL, SYSCTLS_GATEWAY):
        assert settings["net.ipv6.conf.default.accept_dad"] == "0"
