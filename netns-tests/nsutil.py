"""Network namespaces for the kernel tests: create them, work in them, always remove them.

``namespaces("a", "b")`` creates namespaces with unique names (they carry the test
process's pid), yields them by role and removes them in ``finally``: processes still in
them are killed first, so nothing survives a failing test. A ``Namespace`` runs commands
in itself (``run``, ``popen``: ``ip netns exec``), makes sockets in itself (``socket``), or
lets the calling thread work in it (``entered``: libnftables, NFQUEUE and conntrack
sockets opened inside stay bound to the namespace afterwards).

``lab()`` builds the gateway topology on top:

    agent ──eth0─────wl0── gateway ──up0─────eth0── upstream
         10.77.1.2     10.77.1.1   10.77.2.1    10.77.2.2
         fd77:1::2     fd77:1::1   fd77:2::1    fd77:2::2

with forwarding on in the gateway and default routes through it on both sides.
``Lab.config(...)`` is a gateway configuration with ``wl0`` as the workload interface.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewayd.config import Config, parse_config

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT_S = 30.0
KILL_WAIT_S = 5.0
_seq = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(RuntimeError):
    """This host cannot run the kernel tests (not root, no ``ip netns``)."""


def requirements_problem() -> str | None:
    """Why namespaces cannot be made here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "the netns tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN); run them as root"
    try:
        done = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False
        )
    except FileNotFoundError:
        return "the netns tests need iproute2's `ip` command (apt-get install iproute2)"
    if done.returncode != 0:
        return f"`ip netns list` fails: {done.stderr.strip()}"
    return None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Namespace:
    """One network namespace, named ``name`` under ``/run/netns``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._children: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    def run(
        self,
        *argv: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = COMMAND_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this namespace; with ``check`` a failure raises with its stderr."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"[{self.name}] {' '.join(argv)} exited {done.returncode}:"
                f" {done.stderr.strip() or done.stdout.strip()}"
            )
        return done

    def popen(self, *argv: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in this namespace; it is killed when the namespace goes."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kwargs)
        self._children.append(proc)
        return proc

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with the calling thread in this namespace, and come back after."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(NETNS_DIR / self.name, os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(home)

    def socket(
        self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A socket that lives in this namespace (the caller closes it)."""
        with self.entered():
            return socket.socket(family, kind, proto)

    def sysctl(self, key: str, value: str | int) -> None:
        self.run("sysctl", "-qw", f"{key}={value}")

    def nft(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("nft", *args, check=check)

    def pids(self) -> list[int]:
        done = subprocess.run(
            ["ip", "netns", "pids", self.name],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        return [int(p) for p in done.stdout.split()]

    def remove(self) -> None:
        """Kill what runs here (our children first, then any process left) and delete."""
        for proc in self._children:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=KILL_WAIT_S)
        self._children.clear()
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + KILL_WAIT_S
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run(
            ["ip", "netns", "delete", self.name],
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )


@contextmanager
def namespaces(*roles: str) -> Iterator[dict[str, Namespace]]:
    """Fresh namespaces by role, loopback up, no IPv6 DAD; all removed afterwards."""
    problem = requirements_problem()
    if problem:
        raise NetnsUnavailable(problem)
    made: dict[str, Namespace] = {}
    try:
        for role in roles:
            ns = Namespace(f"cg{os.getpid()}-{next(_seq)}-{role}"[:60])
            subprocess.run(
                ["ip", "netns", "add", ns.name],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=True,
            )
            made[role] = ns
            ns.run("ip", "link", "set", "lo", "up")
            # No duplicate address detection: addresses (link-local ones too) are usable at
            # once, so IPv6 works from the first packet.
            for scope in ("all", "default"):
                ns.sysctl(f"net.ipv6.conf.{scope}.accept_dad", 0)
        yield made
    finally:
        for ns in made.values():
            ns.remove()


def veth(a: Namespace, a_name: str, b: Namespace, b_name: str) -> None:
    """A veth pair from ``a`` (``a_name``) to ``b`` (``b_name``), both up."""
    a.run("ip", "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b.name)
    a.run("ip", "link", "set", a_name, "up")
    b.run("ip", "link", "set", b_name, "up")


def address(ns: Namespace, dev: str, *cidrs: str) -> None:
    for cidr in cidrs:
        extra = ["nodad"] if ":" in cidr else []
        ns.run("ip", "addr", "add", cidr, "dev", dev, *extra)


AGENT_V4, AGENT_V6 = "10.77.1.2", "fd77:1::2"
GATEWAY_WL_V4, GATEWAY_WL_V6 = "10.77.1.1", "fd77:1::1"
GATEWAY_UP_V4, GATEWAY_UP_V6 = "10.77.2.1", "fd77:2::1"
UPSTREAM_V4, UPSTREAM_V6 = "10.77.2.2", "fd77:2::2"
WORKLOAD_V4, WORKLOAD_V6 = "10.77.1.0/24", "fd77:1::/64"
WORKLOAD_IFACE = "wl0"
UPSTREAM_IFACE = "up0"


@dataclass
class Lab:
    agent: Namespace
    gateway: Namespace
    upstream: Namespace

    def config(
        self,
        *,
        fail_mode: str = "fail-open",
        subnets: Sequence[str] = (WORKLOAD_V4, WORKLOAD_V6),
        **dataplane: Any,
    ) -> Config:
        """A configuration with ``wl0`` as the workload interface of environment ``lab``."""
        dp = {"queue_backend": "auto", **dataplane}
        text = (
            "workload:\n"
            "  interfaces:\n"
            f"    - name: {WORKLOAD_IFACE}\n"
            f"      subnets: [{', '.join(repr(s) for s in subnets)}]\n"
            "      environment: lab\n"
            "environments:\n"
            f"  lab: {{fail_mode: {fail_mode}}}\n"
            f"dataplane: {{{', '.join(f'{k}: {v}' for k, v in dp.items())}}}\n"
        )
        return parse_config(text, "lab")


@contextmanager
def lab() -> Iterator[Lab]:
    """agent / gateway / upstream, routed through the gateway (see the module docstring)."""
    with ExitStack() as stack:
        ns = stack.enter_context(namespaces("agent", "gateway", "upstream"))
        agent, gateway, upstream = ns["agent"], ns["gateway"], ns["upstream"]
        veth(agent, "eth0", gateway, WORKLOAD_IFACE)
        veth(gateway, UPSTREAM_IFACE, upstream, "eth0")
        address(agent, "eth0", f"{AGENT_V4}/24", f"{AGENT_V6}/64")
        address(gateway, WORKLOAD_IFACE, f"{GATEWAY_WL_V4}/24", f"{GATEWAY_WL_V6}/64")
        address(gateway, UPSTREAM_IFACE, f"{GATEWAY_UP_V4}/24", f"{GATEWAY_UP_V6}/64")
        address(upstream, "eth0", f"{UPSTREAM_V4}/24", f"{UPSTREAM_V6}/64")
        for side, via4, via6 in (
            (agent, GATEWAY_WL_V4, GATEWAY_WL_V6),
            (upstream, GATEWAY_UP_V4, GATEWAY_UP_V6),
        ):
            side.run("ip", "route", "add", "default", "via", via4)
            side.run("ip", "-6", "route", "add", "default", "via", via6)
        gateway.sysctl("net.ipv4.ip_forward", 1)
        gateway.sysctl("net.ipv6.conf.all.forwarding", 1)
        yield Lab(agent, gateway, upstream)


@contextmanager
def tcp_pair(
    client_ns: Namespace,
    server_ns: Namespace,
    server_ip: str,
    port: int = 8080,
    timeout: float = 5.0,
) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair (client socket, accepted server socket), closed afterwards."""
    family = socket.AF_INET6 if ":" in server_ip else socket.AF_INET
    with ExitStack() as stack:
        listener = stack.enter_context(server_ns.socket(family))
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((server_ip, port))
        listener.listen(1)
        listener.settimeout(timeout)
        client = stack.enter_context(client_ns.socket(family))
        client.settimeout(timeout)
        client.connect((server_ip, port))
        server, _ = listener.accept()
        stack.enter_context(server)
        server.settimeout(timeout)
        yield client, server
