from __future__ import annotations

from pathlib import Path

import pytest

from gatewayd.lab.commands import (
    SYSCTLS_ALL,
    SYSCTLS_GATEWAY,
    clawgress_argv,
    dns_server_argv,
    in_namespace,
    sysctl_argv,
    upstream_argv,
)
from gatewayd.lab.plan import LAB_NAMES, METADATA_NAME, LabPlan
from gatewayd.lab.state import StatePaths


def test_dns_server_answers_every_name_in_both_families() -> None:
    plan = LabPlan()
    argv = dns_server_argv(plan, 30, dnsmasq="/usr/sbin/dnsmasq")
    assert argv[0] == "/usr/sbin/dnsmasq"
    for name, endpoint in plan.dns_names.items():
        assert f"--address=/{name}/{endpoint.v4}" in argv
        assert f"--address=/{name}/{endpoint.v6}" in argv
    assert f"--address=/{METADATA_NAME}/169.254.169.254" in argv
    assert len([a for a in argv if a.startswith("--address=/")]) == 2 * len(LAB_NAMES) + 2 + 1


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
