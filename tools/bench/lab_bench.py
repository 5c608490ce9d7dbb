"""What the lab benchmarks share: the ``clawgress`` CLI on the lab's configuration, the
benchmark agent and its signed policy, the engine started pinned and waited for in the
audit log, helper processes started and stopped, CPU placement, and SIGTERM.

Placement: the load generators (the agent's client, the upstream's servers) on one CPU,
the gateway's engine and proxies on the other, as a gateway host would not share its
cores with agents or servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

import yaml

from gatewayd.lab import Lab

PIN_LOAD, PIN_GATEWAY = 0, 1


class _Pinned(Protocol):
    pin: bool


class LabBench:
    """The base of a lab benchmark: ``NAME`` prefixes its errors; ``lab``, settings ``s``
    (with ``pin``) and ``workdir`` are set by ``__init__``."""

    NAME = "bench"

    def __init__(self, lab: Lab, settings: _Pinned, workdir: Path) -> None:
        self.lab = lab
        self.s = settings
        self.workdir = workdir
        self.python = lab.python
        self.cli = [self.python, "-m", "gatewayd", "--config", str(lab.config_path)]
        self.audit = lab.state_dir / "audit.log"

    # --- the gateway ----------------------------------------------------------------------

    def clawgress(self, *args: str) -> str:
        done = subprocess.run([*self.cli, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{self.NAME}: clawgress {' '.join(args)} failed:"
                             f" {(done.stdout + done.stderr).strip()}")
        return done.stdout

    def set_dataplane(self, **settings: Any) -> None:
        """Change ``dataplane`` settings in the lab's gateway.yaml (before the engine starts)."""
        self.set_config("dataplane", **settings)

    def set_config(self, section: str, **settings: Any) -> None:
        """Change one section's settings in the lab's gateway.yaml (before the engine
        starts)."""
        path = self.lab.config_path
        data = yaml.safe_load(path.read_text())
        data.setdefault(section, {}).update(settings)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def publish_agent_policy(self, agent: str, project: str, policy: str) -> None:
        """Register ``agent`` (team bench), lease it agent 1's IPv4 address, and publish
        ``policy`` as the lab's signed bundle, version 1."""
        self.clawgress("agent", "add", agent, "--team", "bench", "--project", project,
                       "--env", "lab")
        self.clawgress("lease", "grant", str(self.lab.agent_address(1).v4), "--agent", agent,
                       "--ttl", "1d")
        policy_dir = self.workdir / "policy"
        policy_dir.mkdir()
        (policy_dir / "bench.yaml").write_text(policy)
        bundle = self.workdir / "bench-policy.tgz"
        self.clawgress("policy", "bundle", str(policy_dir), "-o", str(bundle), "--version", "1")
        self.clawgress("policy", "sign", str(bundle), "--key", str(self.lab.signing_key))
        self.clawgress("policy", "publish", str(bundle))

    def start_engine(self) -> tuple[int, int, float]:
        """Start the lab's engine (it applies the ruleset itself), pinned to the gateway's
        CPU, and wait until it audits ``engine.started`` (its start-up sweep of the
        conntrack table done). Returns its pid, the audit log's size before it started and
        how long the wait took."""
        offset = self.audit.stat().st_size if self.audit.exists() else 0
        pid = self.lab.start_engine()
        cpu = self.cpu("gw")
        if cpu is not None:
            subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True,
                           stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        self.wait_audited(offset, "engine.started")
        return pid, offset, time.monotonic() - t0

    def wait_audited(self, offset: int, kind: str, timeout: float = 30.0) -> None:
        """Wait until the audit log, past ``offset``, holds an event of ``kind``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f'"{kind}"' in self.audit_since(offset):
                return
            time.sleep(0.01)
        raise SystemExit(f"{self.NAME}: the engine did not audit {kind} within {timeout:g} s")

    def audit_since(self, offset: int) -> str:
        if not self.audit.exists():
            return ""
        with self.audit.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    # --- processes ------------------------------------------------------------------------

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
        """A helper process that says ``ready`` once it listens."""
        proc = self.lab.popen(target, [*self.taskset(cpu), *argv], stdout=subprocess.PIPE,
                              text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            proc.wait()
            raise SystemExit(f"{self.NAME}: {argv[1]} did not start (said {line!r})")
        return proc

    @staticmethod
    def stop_process(proc: subprocess.Popen[Any] | None) -> None:
        """Terminate ``proc`` if it runs (killed if it has not ended 5 s later)."""
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in this process, so the benchmark's ``finally``
    takes the lab down; a helper forked from it (pyroute2 forks to enter namespaces) dies
    as by default."""
    main_pid = os.getpid()

    def terminated(signum: int, frame: object) -> None:
        if os.getpid() != main_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
