"""The namespace helpers every kernel test builds on: always cleaned up, isolated."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from nsutil import AGENT_V4, NETNS_DIR, UPSTREAM_V4, Lab, namespaces, tcp_pair

pytestmark = pytest.mark.netns


def _fail_inside(names: list[str], pids: list[int]) -> None:
    with namespaces("a", "b") as ns:
        names += [n.name for n in ns.values()]
        proc = ns["a"].popen("sleep", "60")
        # A process nobody waits for: started in the background by a shell that exits.
        orphan = ns["b"].run("sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!").stdout
        pids += [proc.pid, int(orphan)]
        raise RuntimeError("boom")


def test_namespaces_are_removed_with_their_processes_even_on_error() -> None:
    names: list[str] = []
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        _fail_inside(names, pids)
    assert len(set(names)) == 2
    assert all(str(os.getpid()) in n for n in names)
    for name in names:
        assert not (NETNS_DIR / name).exists()
    assert len(pids) == 2
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return "\nState:\tZ" in status


def test_entered_comes_back_to_the_host_namespace() -> None:
    host = os.readlink("/proc/thread-self/ns/net")
    with namespaces("x") as ns:
        with ns["x"].entered():
            assert os.readlink("/proc/thread-self/ns/net") != host
        with pytest.raises(ZeroDivisionError), ns["x"].entered():
            _ = 1 / 0
        assert os.readlink("/proc/thread-self/ns/net") == host


def test_lab_routes_agent_to_upstream_through_the_gateway(gateway_lab: Lab) -> None:
    with tcp_pair(gateway_lab.agent, gateway_lab.upstream, UPSTREAM_V4) as (client, server):
        client.sendall(b"hi")
        assert server.recv(2) == b"hi"
        assert server.getpeername()[0] == AGENT_V4
    forwarding = gateway_lab.gateway.run("sysctl", "-n", "net.ipv4.ip_forward").stdout
    assert forwarding.strip() == "1"
    # The host sees none of the lab's links.
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert "wl0" not in host_links.stdout
