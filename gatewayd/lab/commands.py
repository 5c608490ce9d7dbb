"""The command lines the lab runs, as argument lists (never a shell).

``in_namespace`` wraps a command in ``ip netns exec NS``, which also bind-mounts
``/etc/netns/NS/*`` over ``/etc`` (that is how agents get the lab's ``resolv.conf``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gatewayd.lab.plan import DNS_SERVER, LabPlan
from gatewayd.lab.state import StatePaths

HTTP_PORT = 80
HTTPS_PORT = 443
DNS_PORT = 53
# More upstream listeners, for bypass tests: a DNS-over-TLS stand-in (TLS, answered like
# 443), HTTPS and HTTP on non-standard ports, and UDP echo on QUIC's and DoQ's ports.
DOT_PORT = 853
ALT_HTTPS_PORT = 8443
ALT_HTTP_PORT = 8080
QUIC_PORT = 443
DOQ_PORT = 853
UPSTREAM_TCP_PORTS: tuple[int, ...] = (HTTP_PORT, HTTPS_PORT, DOT_PORT, ALT_HTTPS_PORT,
                                       ALT_HTTP_PORT)
UDP_ECHO_PORTS: tuple[int, ...] = (QUIC_PORT, DOQ_PORT)

# Per namespace, before any link exists: forwarding on the gateway, and no IPv6 duplicate
# address detection anywhere (addresses are usable at once; the lab assigns them all).
SYSCTLS_ALL: dict[str, str] = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.dad_transmits": "0",
    "net.ipv6.conf.default.dad_transmits": "0",
    # Router advertisements are not used: routes are static.
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
}
SYSCTLS_GATEWAY: dict[str, str] = {
    **SYSCTLS_ALL,
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv6.conf.default.forwarding": "1",
}
# Where br_netfilter is loaded (Docker loads it), packets crossing a bridge go through the
# IP hooks from inside the bridge, which loses the socket TPROXY assigns: the L7 engine's
# transparent listener would never see them. The lab's workload network is a bridge, so
# its gateway turns that off (per namespace; ignored where br_netfilter is not loaded).
SYSCTLS_GATEWAY_BRIDGE: dict[str, str] = {
    "net.bridge.bridge-nf-call-iptables": "0",
    "net.bridge.bridge-nf-call-ip6tables": "0",
}


def in_namespace(ip: str, namespace: str, argv: Sequence[str]) -> list[str]:
    return [ip, "netns", "exec", namespace, *argv]


def sysctl_argv(sysctl: str, settings: Mapping[str, str], *,
                optional: bool = False) -> list[str]:
    """``sysctl -w`` of ``settings``; with ``optional``, keys this kernel lacks are skipped."""
    flags = ["-e"] if optional else []
    return [sysctl, *flags, "-q", "-w", *(f"{k}={v}" for k, v in settings.items())]


def dns_server_argv(plan: LabPlan, ttl: int, dnsmasq: str = "/usr/sbin/dnsmasq") -> list[str]:
    """dnsmasq answering the lab names (A and AAAA) and the TXT-only names with ``ttl``,
    NXDOMAIN for the rest (over UDP and TCP: answers over 512 bytes need TCP)."""
    if ttl < 0:
        raise ValueError("a DNS TTL is zero or more seconds")
    argv = [
        dnsmasq,
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        f"--listen-address={DNS_SERVER.v4}",
        f"--listen-address={DNS_SERVER.v6}",
        f"--port={DNS_PORT}",
        f"--local-ttl={ttl}",
        "--log-facility=-",
        "--log-queries",
    ]
    for name, endpoint in plan.dns_names.items():
        argv.append(f"--address=/{name}/{endpoint.v4}")
        argv.append(f"--address=/{name}/{endpoint.v6}")
    for name, strings in plan.txt_records.items():
        # dnsmasq splits the value at commas; the strings are plain [a-z0-9-].
        argv.append(f"--txt-record={name},{','.join(strings)}")
    # Everything else does not exist (rather than REFUSED for want of an upstream server).
    argv.append("--address=/#/")
    return argv


def upstream_argv(python: str, plan: LabPlan, paths: StatePaths) -> list[str]:
    argv = [
        python, "-m", "gatewayd.lab.upstream",
        "--http-port", str(HTTP_PORT),
        "--https-port", str(HTTPS_PORT),
        "--alt-http-port", str(ALT_HTTP_PORT),
        "--alt-https-port", str(DOT_PORT),
        "--alt-https-port", str(ALT_HTTPS_PORT),
        *(a for port in UDP_ECHO_PORTS for a in ("--udp-echo-port", str(port))),
        "--cert", str(paths.upstream_cert),
        "--key", str(paths.upstream_key),
    ]
    for name, endpoint in plan.services.items():
        argv += ["--service", f"{name}={endpoint.v4},{endpoint.v6}"]
    return argv


def clawgress_argv(python: str, paths: StatePaths, *args: str) -> list[str]:
    return [python, "-m", "gatewayd", "--config", str(paths.config), *args]
