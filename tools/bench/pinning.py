"""What the lab benchmarks share to place their processes: the load generators (the
agent's client, the upstream's servers) on one CPU, the gateway's engine and proxies on
the other, as a gateway host would not share its cores with agents or servers; and the
start of a helper process that says ``ready`` once it listens."""

from __future__ import annotations

import subprocess
from typing import Protocol

from gatewayd.lab import Lab

PIN_LOAD, PIN_GATEWAY = 0, 1


class _Pinned(Protocol):
    pin: bool


class PinnedProcesses:
    """Mixed into a benchmark with ``lab``, settings ``s`` (with ``pin``) and ``NAME``."""

    lab: Lab
    s: _Pinned
    NAME = "bench"

    def cpu(self, role: str) -> int | None:
        """The CPU for a process in ``role``'s namespace (``gw``: the gateway's), or
        ``None`` when not pinning."""
        if not self.s.pin:
            return None
        return PIN_GATEWAY if role == "gw" else PIN_LOAD

    @staticmethod
    def taskset(cpu: int | None) -> list[str]:
        return [] if cpu is None else ["taskset", "-c", str(cpu)]

    def _start_ready(self, target: str, argv: list[str],
                     cpu: int | None) -> subprocess.Popen[str]:
        proc = self.lab.popen(target, [*self.taskset(cpu), *argv], stdout=subprocess.PIPE,
                              text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            proc.wait()
            raise SystemExit(f"{self.NAME}: {argv[1]} did not start (said {line!r})")
        return proc
