"""L7 engine cost: a 4 KiB JSON POST through the L7 engine, side by side with references.

Brings up the network-namespace lab (one agent, the gateway, the upstream; see
``docs/lab.md``) with the real engine (``clawgress run``: the verdict engine and, in its
event loop, the L7 engine), and measures in interleaved rounds five ways for the agent to
send the same request to the same server (``l7_server.py`` in the upstream namespace, on the
address of the lab name ``api.openai.com``, in place of the lab's own upstream):

A. *direct*: to the server's port 8080, a flow the policy allows at L4 by address and port
   (the SYN is decided by the engine, the rest stays in the kernel: no L7). With it, the TLS
   reference *direct_tls*: HTTPS to the server's port 8443, allowed the same way, with SNI
   ``api.openai.com``;
B. *haproxy*: HAProxy (the Debian package) in the gateway namespace, a plain HTTP reverse
   proxy (``mode http``, keep-alive on both sides, one thread) listening on the gateway's
   workload address, port 8400, forwarding to the server's port 8080;
C. *l7_plain*: plain HTTP to ``api.openai.com`` port 80, which the policy sends to
   ``inspect``: diverted by TPROXY to the L7 engine, parsed, decided per request and
   forwarded to the server (no TLS interception);
D. *l7_tls*: HTTPS to ``api.openai.com`` port 443, also ``inspect``: the engine ends the
   client's TLS with a leaf of the gateway CA (the client trusts the lab's ``trust.pem``: lab
   CA + gateway CA), decides each request, and forwards it over its own TLS connection to the
   server, verified against the lab CA;
E. *mitmproxy*: ``mitmdump`` in the gateway namespace as a reverse proxy
   (``--mode reverse:http://SERVER:8080``, quiet, no flow storage) on the gateway's workload
   address, port 8401: the Python proxy peer.

How the agent reaches the two reference proxies: the engine keeps running in every phase,
and the policy allows the benchmark agent to the gateway's own workload address on ports
8400 and 8401 (a guarded destination, so the rule names it by a /32). A new connection to
HAProxy or mitmproxy is then decided at L4 by the engine exactly like a direct one (its SYN
queued and allowed, the rest in the kernel), and not by the L7 engine; every configuration
pays the same L4 verdict per new connection, so what a proxy adds over *direct* is its hop
alone. This keeps one gateway state for the whole run (no engine restart between phases, so
no start-up sweep and no reload in a measured phase), unlike ``dataplane.py``, which stops
the engine and flushes the table for its plain phase; here the direct phase is the
reference, and it already is the kernel fast path after the SYN.

Each round runs A, B, C, D, E in turn and measures in each (``l7_client.py``):

* new connection: sequential requests, each on a new connection, timed from the start of
  ``connect()`` (and the TLS handshake) to the answer's last byte; p50 and p99;
* keep-alive: sequential requests on one connection, each timed from its write to the
  answer's last byte; p50 and p99;
* requests per second at saturation: ``--connections`` keep-alive connections, closed loop
  (each sends its next request as soon as its answer is in), on one uvloop event loop;
  the proxy's CPU time (user and system, all threads) over the run is read from ``/proc``:
  CPU per request, and the cores that makes at the rate measured (about 1: the proxy, not
  the client, was the bottleneck);

then, for C, latency at half of saturation: requests paced (open loop) at 50% of that
round's l7_plain rate on the same number of keep-alive connections, and the same pace
*direct*, right after; the added p99 is the difference. The same pace through HAProxy
follows, as a reference with no goal: a hop on the engine's core, at a load that leaves
that core idle most of the time, so its tail shows what waking that core costs on the
machine, whoever the proxy is.

The paced phases are measured by ``l7_pace.c``, a small C load generator (epoll and a
timerfd, no dependency) that the benchmark compiles at the start of each run with ``cc``
(``l7_client.py --pacer`` runs it, in the agent's namespace and on the client's CPU). It
sends each request at its own due time (start + i / rate: the timer is armed at each
absolute due time, and the process sleeps in between) on an idle connection, or on the
next one to become idle, and times it from that due time to the last byte of its answer:
a late wake-up of the client or a wait for a free connection is in the figure, never
hidden (coordinated omission corrected strictly). The requests due in the measured window
are the ones measured, whenever their answers come, so a stall at the end of the window
counts too. The asyncio client's pacer is not used there: its event loop sleeps in ticks
of a millisecond or more, so requests left in bursts, and it was seen to fall tens of
milliseconds behind on the core it shares with the server, a lag of the client's own
that went into every configuration's p99, HAProxy's included. A run stops if the pacer
cannot be compiled.

Added latency is the configuration's p50 (p99) minus direct's in the same round (l7_tls
minus direct_tls). Every answer is checked (200, and the server's body naming the request
body's length and CRC-32) and not timed if wrong (``request_errors``, goal 0). Every phase's
audit records are checked too (``audit_mismatches``, goal 0): C and D must leave one
``http.request`` per request (via ``transparent``, tls ``none`` / ``intercepted``, decided
``inspect`` by the benchmark's rule, status 200) and A, B and E none at all, so a path that
bypassed or broke the engine never yields a fast number.

Figure names without ``keepalive`` are the new-connection ones. Goals (the issue's):
``l7_plain_added_p50_us`` <= 500 µs and ``l7_plain_vs_haproxy_added_p50_ratio`` <= 10
(new connection; the issue says "(c) added p50", so the same two goals hold on
keep-alive); ``l7_plain_added_p99_half_saturation_us`` <= 3000 µs;
``l7_plain_rps_vs_mitmproxy`` >= 10 (keep-alive, at saturation). Medians of the rounds,
the spread (min-max of the rounds) and ratios within rounds go to the table and
``bench-results/l7.json``; the exit code is 1 when a goal is missed. The lab is always
taken down at the end (also on Ctrl-C or SIGTERM). Needs root.

Set-up the benchmark does itself: it compiles ``l7_pace.c`` (``cc -O2``, into its work
folder; gcc is in ``tools/debian-packages.txt``). HAProxy is installed with ``apt-get
install haproxy`` when ``haproxy`` is missing, mitmproxy with ``pip install mitmproxy``
into a virtual environment of its own (``MITM_VENV``, never the project's: its pins
conflict); both are said in the output. The per-source new-flow limits before the queue
are raised in the lab's gateway.yaml (the benchmark's one agent opens thousands of
connections). By default the agent's client and the upstream server are pinned to CPU 0,
and the engine, HAProxy and mitmproxy to CPU 1 (one core each, and the same one):
``--no-pin`` to let the scheduler place them.

The gateway runs with the AI analyzer and DLP off (``ai.enabled``, ``dlp.enabled``:
false), so that the L7 path itself is what is measured; their per-request costs are
``tools/bench/ai.py``'s and ``tools/bench/dlp.py``'s. ``--inspections`` keeps them on (the
gateway's default configuration).

``--profile`` samples the engine with py-spy (installed like mitmproxy, in a virtual
environment of its own) while l7_plain and l7_tls are at saturation, and writes the
functions with the most samples to ``bench-results/l7-profile-*.txt`` (with the collapsed
stacks, for flame graphs); sampling slows the engine, so such a run's figures are not the
ones to publish.

Run: ``python -m tools.bench.l7`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatewayd.lab import processes
from gatewayd.lab.lab import UPSTREAM_PROCESS, Lab
from gatewayd.lab.plan import DNS_SERVER, GATEWAY_WORKLOAD
from gatewayd.lab.state import load_record
from tools.bench.lab_bench import PIN_GATEWAY, PIN_LOAD, LabBench, interrupt_on_sigterm
from tools.bench.report import RESULTS as RESULTS_DIR
from tools.bench.report import Report, median, percentile

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "l7_client.py"
SERVER = HERE / "l7_server.py"
PACER_SOURCE = HERE / "l7_pace.c"  # the paced phases' load generator
PACER_CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror")

AGENT = "l7-bench"
SERVER_NAME = "api.openai.com"  # a lab name: the agent resolves it through the lab resolver
DIRECT_PORT, DIRECT_TLS_PORT = 8080, 8443
INSPECT_PORT, INSPECT_TLS_PORT = 80, 443
GATEWAY_ADDRESS = str(GATEWAY_WORKLOAD.v4)  # 10.77.0.1, the gateway's workload address
HAPROXY_PORT, MITM_PORT = 8400, 8401
DNS_ADDRESS = str(DNS_SERVER.v4)
INSPECT_RULE = "bench-inspect"
BENCH_FLOW_RATE = 1_000_000
BENCH_FLOW_BURST = 100_000
MITM_HOME = Path("/var/tmp/clawgress-bench")
MITM_VENV = MITM_HOME / "mitmproxy-venv"
MITM_CONFDIR = MITM_HOME / "mitmproxy-conf"
PY_SPY_VENV = MITM_HOME / "py-spy-venv"
PROFILE_RATE = 500  # py-spy samples per second
PROFILE_TOP = 40
SLOW_KEPT = 2000  # l7_client.py keeps this many slow paced requests (SLOW_KEPT there)

DIRECT, DIRECT_TLS, HAPROXY, L7_PLAIN, L7_TLS, MITM = (
    "direct", "direct_tls", "haproxy", "l7_plain", "l7_tls", "mitmproxy")
CONFIGS = (DIRECT, DIRECT_TLS, HAPROXY, L7_PLAIN, L7_TLS, MITM)
# Each configuration's latency reference (added = configuration minus reference).
REFERENCE = {HAPROXY: DIRECT, L7_PLAIN: DIRECT, L7_TLS: DIRECT_TLS, MITM: DIRECT}
SATURATED = (DIRECT, HAPROXY, L7_PLAIN, L7_TLS, MITM)

POLICY = f"""\
apiVersion: clawgress.io/v1
kind: Policy
metadata:
  id: l7-bench
  description: The L7 benchmark's agent reaches its server directly, through the reference
    proxies on the gateway, and through the L7 engine.
spec:
  priority: 100
  rules:
    - id: bench-dns
      action: allow
      identity: {{agent: {AGENT}}}
      destination:
        cidrs: [{DNS_ADDRESS}/32]
        ports: [53]
      reason: the lab resolver
    - id: bench-direct
      action: allow
      identity: {{agent: {AGENT}}}
      destination:
        cidrs: [SERVER_ADDRESS/32]
        ports: [{DIRECT_PORT}, {DIRECT_TLS_PORT}]
        protocol: tcp
      reason: the direct reference (L4 only)
    - id: bench-proxies
      action: allow
      identity: {{agent: {AGENT}}}
      destination:
        cidrs: [{GATEWAY_ADDRESS}/32]
        ports: [{HAPROXY_PORT}, {MITM_PORT}]
        protocol: tcp
      reason: the reference proxies on the gateway (HAProxy, mitmproxy)
    - id: {INSPECT_RULE}
      action: inspect
      identity: {{agent: {AGENT}}}
      destination:
        hosts: [{SERVER_NAME}]
        ports: [{INSPECT_PORT}, {INSPECT_TLS_PORT}]
        protocol: tcp
      reason: every request to the benchmark's server by name goes through the L7 engine
"""

HAPROXY_CONFIG = """\
# The L7 benchmark's HAProxy hop: plain HTTP, keep-alive on both sides, one thread.
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend bench
    bind {listen}
    default_backend upstream
backend upstream
    http-reuse safe
    server s1 {server}
"""


@dataclass
class Settings:
    rounds: int
    new_conn: int
    keepalive: int
    warmup: int
    connections: int
    load_s: float
    load_warmup_s: float
    paced_s: float
    pin: bool
    inspections: bool = False  # the AI analyzer and DLP on (the default configuration)

    @classmethod
    def of(cls, quick: bool, pin: bool, inspections: bool = False) -> Settings:
        if quick:
            return cls(rounds=2, new_conn=150, keepalive=300, warmup=20, connections=32,
                       load_s=1.0, load_warmup_s=0.3, paced_s=1.5, pin=pin,
                       inspections=inspections)
        return cls(rounds=5, new_conn=400, keepalive=1000, warmup=50, connections=32,
                   load_s=2.0, load_warmup_s=0.5, paced_s=3.0, pin=pin,
                   inspections=inspections)


@dataclass
class Phase:
    """One configuration in one round."""

    new_conn: list[float] = field(default_factory=list)
    keepalive: list[float] = field(default_factory=list)
    rps: float = float("nan")
    client_cpu: float = float("nan")  # the load client's CPU use (fraction of one core)
    gateway_cpu: float | None = None  # the proxy's CPU seconds over the load run
    gateway_sys: float | None = None  # of which in the kernel
    load_completed: int = 0
    requests: int = 0  # answers the client got in this phase (warm-up included)
    connections: int = 0  # connections the client opened in this phase
    audited: int = 0  # http.request records as expected
    unexpected: int = 0  # http.request records that should not be there
    intercepted: int = 0  # tls.decision records with tls = intercepted


@dataclass
class Round:
    phases: dict[str, Phase] = field(default_factory=dict)
    paced: dict[str, dict[str, Any]] = field(default_factory=dict)  # l7_plain, direct


class Bench(LabBench):
    NAME = "l7"
    s: Settings

    def __init__(self, lab: Lab, settings: Settings, workdir: Path) -> None:
        super().__init__(lab, settings, workdir)
        self.server_address = str(lab.addresses[SERVER_NAME].v4)
        self.server: subprocess.Popen[str] | None = None
        self.haproxy: subprocess.Popen[str] | None = None
        self.mitm: subprocess.Popen[str] | None = None
        self.engine_pid: int | None = None
        self.rounds: list[Round] = []
        self.errors: dict[str, dict[str, int]] = {}
        self.setup_notes: list[str] = []
        self.versions: dict[str, str] = {}
        self.odd: dict[str, int] = {}  # audit mismatches, described
        self.py_spy: Path | None = None  # --profile: sample the engine at saturation
        self.profiles: dict[str, list[Path]] = {}
        self.pacer: Path | None = None  # the compiled l7_pace.c
        self.pacer_built_with = "?"  # the compiler's version
        self.request_path = "?"  # how the engine's L7 request path runs, as it logged

    # --- set-up ---------------------------------------------------------------------------

    def setup(self) -> None:
        lab = self.lab
        self.set_dataplane(new_flow_rate=BENCH_FLOW_RATE, new_flow_burst=BENCH_FLOW_BURST)
        if not self.s.inspections:
            # The L7 path itself: the AI analyzer's and DLP's costs per request are their
            # own benchmarks' (tools/bench/ai.py, tools/bench/dlp.py).
            self.set_config("ai", enabled=False)
            self.set_config("dlp", enabled=False)
        self.publish_agent_policy(AGENT, "l7",
                                  POLICY.replace("SERVER_ADDRESS", self.server_address))
        for ns in ("a1", "gw"):
            # Ephemeral ports: thousands of new connections (and the proxies' upstream
            # connections, closed by them, wait in TIME_WAIT in the gateway).
            lab.exec(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000"],
                     check=True)
        lab.exec("gw", ["sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"], check=True)
        self._stop_lab_upstream()
        a = self.server_address
        self.server = self._start_ready(
            "up", [self.python, str(SERVER),
                   "--listen", f"{a}:{DIRECT_PORT}", "--listen", f"{a}:{INSPECT_PORT}",
                   "--tls-listen", f"{a}:{DIRECT_TLS_PORT}",
                   "--tls-listen", f"{a}:{INSPECT_TLS_PORT}",
                   "--tls-cert", str(lab.paths.upstream_cert),
                   "--tls-key", str(lab.paths.upstream_key)], self.cpu("load"))
        self._start_engine()
        self._start_haproxy()
        self._start_mitmproxy()

    def _stop_lab_upstream(self) -> None:
        record = load_record(self.lab.paths)
        proc = record.processes.get(UPSTREAM_PROCESS) if record is not None else None
        if proc is None:
            raise SystemExit("l7: the lab records no upstream process")
        if processes.terminate([(proc.pid, proc.start_time)]):
            raise SystemExit(f"l7: the lab upstream (pid {proc.pid}) did not end")

    def _start_engine(self) -> None:
        pid, offset, _ = self.start_engine()
        if '"l7.started"' not in self.audit_since(offset):
            raise SystemExit("l7: the engine did not start its L7 listeners (see"
                             f" {self.lab.paths.log('engine')})")
        self.engine_pid = pid
        self.request_path = self.engine_says("L7 request path: ")

    def engine_says(self, prefix: str) -> str:
        """What the engine's log says after ``prefix`` (its latest such line), or "?"."""
        said = "?"
        log = self.lab.paths.log("engine")
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                at = line.find(prefix)
                if at >= 0:
                    said = line[at + len(prefix):].strip()
        return said

    def _start_haproxy(self) -> None:
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise SystemExit("l7: haproxy is not installed")
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(HAPROXY_CONFIG.format(listen=f"{GATEWAY_ADDRESS}:{HAPROXY_PORT}",
                                             server=f"{self.server_address}:{DIRECT_PORT}"))
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True,
                               text=True, check=False)
        if check.returncode != 0:
            raise SystemExit(f"l7: the HAProxy configuration is refused: {check.stderr}")
        self.haproxy = self._spawn("haproxy", [haproxy, "-db", "-f", str(cfg)])
        self._wait_listening(self.haproxy, HAPROXY_PORT, "haproxy", 10.0)

    def _start_mitmproxy(self) -> None:
        MITM_CONFDIR.mkdir(parents=True, exist_ok=True)
        self.mitm = self._spawn("mitmdump", [
            str(MITM_VENV / "bin" / "mitmdump"),
            "--mode", f"reverse:http://{self.server_address}:{DIRECT_PORT}",
            "--listen-host", GATEWAY_ADDRESS, "--listen-port", str(MITM_PORT),
            "--quiet", "--set", "flow_detail=0", "--set", f"confdir={MITM_CONFDIR}"])
        self._wait_listening(self.mitm, MITM_PORT, "mitmdump", 60.0)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[str]:
        """A reference proxy in the gateway namespace, its output in the work folder."""
        with (self.workdir / f"{name}.log").open("w") as log:
            return self.lab.popen("gw", [*self.taskset(self.cpu("gw")), *argv],
                                  stdout=log, stderr=subprocess.STDOUT, text=True)

    def _wait_listening(self, proc: subprocess.Popen[str], port: int, what: str,
                        timeout: float) -> None:
        tcp = Path("/proc") / str(proc.pid) / "net" / "tcp"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = (self.workdir / f"{what}.log").read_text(errors="replace")
                raise SystemExit(f"l7: {what} exited at start: {out.strip()[-500:]}")
            try:
                if port in processes.listening_ports(tcp.read_text(), udp=False):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"l7: {what} did not listen on port {port} within {timeout:g} s")


    def stop_all(self) -> None:
        for proc in (self.mitm, self.haproxy, self.server):
            self.stop_process(proc)

    # --- measurements ---------------------------------------------------------------------

    def target(self, config: str) -> list[str]:
        """The client's target and options for ``config``."""
        a = self.server_address
        trust = str(self.lab.paths.trust_bundle)
        return {
            DIRECT: [f"{a}:{DIRECT_PORT}"],
            DIRECT_TLS: [f"{a}:{DIRECT_TLS_PORT}", "--tls", "--sni", SERVER_NAME,
                         "--host", SERVER_NAME, "--cafile", trust],
            HAPROXY: [f"{GATEWAY_ADDRESS}:{HAPROXY_PORT}"],
            L7_PLAIN: [f"{SERVER_NAME}:{INSPECT_PORT}", "--host", SERVER_NAME],
            L7_TLS: [f"{SERVER_NAME}:{INSPECT_TLS_PORT}", "--tls", "--host", SERVER_NAME,
                     "--cafile", trust],
            MITM: [f"{GATEWAY_ADDRESS}:{MITM_PORT}"],
        }[config]

    def client(self, config: str, mode: str, *args: str) -> dict[str, Any]:
        argv = [*self.taskset(self.cpu("load")), self.python, str(CLIENT), mode,
                *self.target(config), *args]
        done = self.lab.exec("a1", argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"l7: client {config} {mode} failed: {done.stderr.strip()}")
        result: dict[str, Any] = json.loads(done.stdout)
        errors = self.errors.setdefault(config, {})
        for name, n in result.get("errors", {}).items():
            errors[name] = errors.get(name, 0) + n
        return result

    def gateway_pid(self, config: str) -> int | None:
        if config in (L7_PLAIN, L7_TLS):
            return self.engine_pid
        proc = {HAPROXY: self.haproxy, MITM: self.mitm}.get(config)
        return proc.pid if proc is not None else None

    @staticmethod
    def cpu_seconds(pid: int | None) -> tuple[float, float] | None:
        """A process's CPU time so far (all its threads): user and system seconds."""
        if pid is None:
            return None
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def phase(self, config: str) -> Phase:
        s = self.s
        ph = Phase()
        time.sleep(0.05)  # the previous phase's audit lines are out (see check_audit)
        offset = self.audit.stat().st_size
        new = self.client(config, "seq", "--new-conn", "--count", str(s.new_conn),
                          "--warmup", str(s.warmup))
        ph.new_conn = self._samples(new, config, "new connection", s.new_conn)
        ka = self.client(config, "seq", "--count", str(s.keepalive), "--warmup", str(s.warmup))
        ph.keepalive = self._samples(ka, config, "keep-alive", s.keepalive)
        ph.requests = int(new["completed"]) + int(ka["completed"])
        ph.connections = int(new["completed"]) + 1
        if config in SATURATED:
            pid = self.gateway_pid(config)
            spy = self._profile_start(config, pid)
            try:
                before = self.cpu_seconds(pid)
                sat = self.client(config, "load", "--connections", str(s.connections),
                                  "--duration", str(s.load_s),
                                  "--warmup", str(s.load_warmup_s))
                after = self.cpu_seconds(pid)
            finally:
                self._profile_stop(spy)
            if before is not None and after is not None:
                ph.gateway_cpu = sum(after) - sum(before)
                ph.gateway_sys = after[1] - before[1]
            ph.rps = float(sat["rps"])
            ph.client_cpu = float(sat["client_cpu"])
            ph.load_completed = int(sat["completed"])
            ph.requests += ph.load_completed
            ph.connections += int(sat["opened"])
            if ph.load_completed == 0:
                raise SystemExit(f"l7: no request completed at saturation under {config}:"
                                 f" {sat['errors']}")
        self.check_audit(config, offset, ph)
        return ph

    def _profile_start(self, config: str,
                       pid: int | None) -> subprocess.Popen[bytes] | None:
        """With --profile, py-spy samples the engine (without pausing it) while an L7
        configuration is at saturation."""
        if self.py_spy is None or pid is None or config not in (L7_PLAIN, L7_TLS):
            return None
        files = self.profiles.setdefault(config, [])
        out = self.workdir / f"profile-{config}-{len(files)}.txt"
        files.append(out)
        spy = subprocess.Popen(
            [str(self.py_spy), "record", "--pid", str(pid), "--rate", str(PROFILE_RATE),
             "--nonblocking", "--function", "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached
        return spy

    @staticmethod
    def _profile_stop(spy: subprocess.Popen[bytes] | None) -> None:
        if spy is None:
            return
        spy.send_signal(signal.SIGINT)  # py-spy writes its samples and ends
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()

    def write_profiles(self) -> list[Path]:
        """Each profiled configuration's samples, summed over the rounds, as a table of the
        functions with the most samples on CPU: by themselves (self) and with what they
        call (total); the collapsed stacks beside it, for flame graphs."""
        written = []
        for config, files in self.profiles.items():
            stacks: dict[str, int] = {}
            for path in files:
                if not path.exists():
                    continue
                for line in path.read_text(errors="replace").splitlines():
                    stack, _, count = line.rpartition(" ")
                    if stack and count.isdigit():
                        stacks[stack] = stacks.get(stack, 0) + int(count)
            total = sum(stacks.values())
            if not total:
                continue
            own: dict[str, int] = {}
            inclusive: dict[str, int] = {}
            for stack, samples in stacks.items():
                frames = stack.split(";")
                own[frames[-1]] = own.get(frames[-1], 0) + samples
                for frame in set(frames):
                    inclusive[frame] = inclusive.get(frame, 0) + samples
            lines = [f"# py-spy, {PROFILE_RATE} Hz, the engine at saturation under {config}:"
                     f" {total} samples on CPU over {len(files)} rounds", "",
                     "## self", *(f"{100 * n / total:6.2f}%  {f}" for f, n in
                                  sorted(own.items(), key=lambda x: -x[1])[:PROFILE_TOP]),
                     "", "## total (self + callees)",
                     *(f"{100 * n / total:6.2f}%  {f}" for f, n in
                       sorted(inclusive.items(), key=lambda x: -x[1])[:PROFILE_TOP])]
            RESULTS_DIR.mkdir(exist_ok=True)
            table = RESULTS_DIR / f"l7-profile-{config}.txt"
            table.write_text("\n".join(lines) + "\n")
            (RESULTS_DIR / f"l7-profile-{config}.collapsed").write_text(
                "".join(f"{k} {v}\n" for k, v in stacks.items()))
            written.append(table)
        return written

    def _samples(self, out: dict[str, Any], config: str, what: str, wanted: int) -> list[float]:
        samples: list[float] = out["samples_us"]
        if len(samples) < wanted // 2:
            raise SystemExit(f"l7: only {len(samples)} of {wanted} {what} requests succeeded"
                             f" under {config}: {out['errors']}")
        return samples

    def paced(self, config: str, rate: float) -> dict[str, Any]:
        if self.pacer is None:
            raise SystemExit("l7: the C pacer was not built")
        offset = self.audit.stat().st_size
        out = self.client(config, "load", "--connections", str(self.s.connections),
                          "--duration", str(self.s.paced_s),
                          "--warmup", str(self.s.load_warmup_s), "--rate", f"{rate:.1f}",
                          "--pacer", str(self.pacer))
        ph = Phase(requests=int(out["completed"]), connections=int(out["opened"]))
        self.check_audit(config, offset, ph)
        out["audited"], out["unexpected"] = ph.audited, ph.unexpected
        return out

    def check_audit(self, config: str, offset: int, ph: Phase) -> None:
        """Count the phase's http.request records: C and D must have exactly one per
        answered request (the client sends nothing it does not wait for), as expected
        (transparent, the TLS mode, inspect by the bench rule, 200); the others none."""
        expect_tls = {L7_PLAIN: "none", L7_TLS: "intercepted"}.get(config)
        deadline = time.monotonic() + 5.0
        while True:
            good = bad = intercepted = 0
            with self.audit.open("rb") as f:
                f.seek(offset)
                for line in f:
                    if b'"http.request"' not in line and b'"tls.decision"' not in line:
                        continue
                    event = json.loads(line)
                    if event.get("kind") == "tls.decision":
                        intercepted += event.get("tls") == "intercepted"
                        continue
                    if event.get("kind") != "http.request":
                        continue
                    if (expect_tls is not None and event.get("via") == "transparent"
                            and event.get("tls") == expect_tls
                            and event.get("rule_id") == INSPECT_RULE
                            and event.get("action") == "inspect"
                            and event.get("status") == 200
                            and event.get("host") == SERVER_NAME):
                        good += 1
                    else:
                        bad += 1
                        key = (f"{config}: {event.get('via')}/{event.get('tls')}"
                               f" {event.get('action')} {event.get('status')}"
                               f" {','.join(event.get('flags') or [])}")
                        self.odd[key] = self.odd.get(key, 0) + 1
            # The engine writes its records in batches (at least every reload interval).
            if expect_tls is None or good >= ph.requests or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        ph.intercepted = intercepted
        if expect_tls is None:
            ph.audited, ph.unexpected = 0, good + bad
        else:
            ph.audited = good
            ph.unexpected = bad + abs(ph.requests - good)
            if good != ph.requests:
                key = f"{config}: {ph.requests} answers, {good} records"
                self.odd[key] = self.odd.get(key, 0) + 1

    # --- the rounds -----------------------------------------------------------------------

    def run(self) -> None:
        order = (DIRECT, DIRECT_TLS, HAPROXY, L7_PLAIN, L7_TLS, MITM)
        for n in range(1, self.s.rounds + 1):
            t0 = time.monotonic()
            r = Round()
            for config in order:
                r.phases[config] = self.phase(config)
            rate = 0.5 * r.phases[L7_PLAIN].rps
            r.paced[L7_PLAIN] = self.paced(L7_PLAIN, rate)
            r.paced[DIRECT] = self.paced(DIRECT, rate)
            r.paced[HAPROXY] = self.paced(HAPROXY, rate)
            self.rounds.append(r)
            p = r.phases

            def added(c: str, ph: dict[str, Phase] = p) -> str:
                ref = ph[REFERENCE[c]]
                return "/".join(
                    f"{percentile(getattr(ph[c], m), 50) - percentile(getattr(ref, m), 50):.0f}"
                    for m in ("new_conn", "keepalive"))

            print(f"round {n}/{self.s.rounds} ({time.monotonic() - t0:.0f} s): added p50"
                  f" new/keep-alive (us): haproxy {added(HAPROXY)}, l7 {added(L7_PLAIN)},"
                  f" l7 tls {added(L7_TLS)}, mitmproxy {added(MITM)};"
                  f" req/s direct {p[DIRECT].rps:.0f}, haproxy {p[HAPROXY].rps:.0f},"
                  f" l7 {p[L7_PLAIN].rps:.0f}, l7 tls {p[L7_TLS].rps:.0f},"
                  f" mitmproxy {p[MITM].rps:.0f}; at {rate:.0f}/s p99 l7"
                  f" {r.paced[L7_PLAIN]['p99_us']:.0f} us, direct"
                  f" {r.paced[DIRECT]['p99_us']:.0f} us, haproxy"
                  f" {r.paced[HAPROXY]['p99_us']:.0f} us", flush=True)

    # --- the report -----------------------------------------------------------------------

    def report(self) -> Report:
        report = Report("l7")
        rounds = self.rounds
        n = range(len(rounds))

        def add(name: str, values: list[float], unit: str, goal: str | None = None) -> None:
            report.add(name, median(values), unit, goal, (min(values), max(values)))

        def per(config: str, mode: str, q: float) -> list[float]:
            return [percentile(getattr(r.phases[config], mode), q) for r in rounds]

        for c in CONFIGS:
            for mode, label in (("new_conn", "new_conn"), ("keepalive", "keepalive")):
                add(f"{c}_{label}_p50_us", per(c, mode, 50), "us")
                add(f"{c}_{label}_p99_us", per(c, mode, 99), "us")
        added: dict[tuple[str, str, int], list[float]] = {}
        for c, ref in REFERENCE.items():
            for mode, infix in (("new_conn", ""), ("keepalive", "_keepalive")):
                for q in (50, 99):
                    values = [a - b for a, b in zip(per(c, mode, q), per(ref, mode, q),
                                                    strict=True)]
                    added[(c, mode, q)] = values
                    goal = "<= 500" if (c == L7_PLAIN and q == 50) else None
                    add(f"{c}{infix}_added_p{q}_us", values, "us", goal)
        for mode, infix in (("new_conn", ""), ("keepalive", "_keepalive")):
            # A round where noise made HAProxy's added p50 zero or less has no ratio.
            ratio = [cg / hp for cg, hp in
                     zip(added[(L7_PLAIN, mode, 50)], added[(HAPROXY, mode, 50)], strict=True)
                     if hp > 0]
            name = f"l7_plain{infix}_vs_haproxy_added_p50_ratio"
            if len(ratio) < len(rounds):
                report.notes.append(f"{name}: {len(rounds) - len(ratio)} round(s) left out,"
                                    " where HAProxy's added p50 came out zero or less")
            add(name, ratio or [float("nan")], "x", "<= 10")
        for c in SATURATED:
            add(f"{c}_rps", [r.phases[c].rps for r in rounds], "/s")
        ratio = [r.phases[L7_PLAIN].rps / r.phases[MITM].rps for r in rounds]
        add("l7_plain_rps_vs_mitmproxy", ratio, "x", ">= 10")
        for c in (HAPROXY, L7_PLAIN, L7_TLS, MITM):
            phases = [r.phases[c] for r in rounds]
            if all(ph.gateway_cpu is not None for ph in phases):
                add(f"{c}_gateway_cpu_us_per_request",
                    [1e6 * (ph.gateway_cpu or 0) / max(1, ph.load_completed) for ph in phases],
                    "us")
                add(f"{c}_gateway_sys_us_per_request",
                    [1e6 * (ph.gateway_sys or 0) / max(1, ph.load_completed) for ph in phases],
                    "us")
                # The CPU a request took, times the requests per second measured.
                add(f"{c}_gateway_cpu_at_saturation",
                    [(ph.gateway_cpu or 0) / max(1, ph.load_completed) * ph.rps
                     for ph in phases], "core")
        cpu_per_request = {
            c: [(r.phases[c].gateway_cpu or 0) / max(1, r.phases[c].load_completed)
                for r in rounds] for c in (HAPROXY, L7_PLAIN, MITM)}
        if all(r.phases[c].gateway_cpu is not None for r in rounds for c in cpu_per_request):
            for ref in (HAPROXY, MITM):
                add(f"l7_plain_cpu_per_request_vs_{ref}",
                    [a / b if b > 0 else float("inf") for a, b in
                     zip(cpu_per_request[L7_PLAIN], cpu_per_request[ref], strict=True)], "x")
        for c in SATURATED:
            add(f"{c}_client_cpu_at_saturation", [r.phases[c].client_cpu for r in rounds],
                "core")
        paced = [r.paced[L7_PLAIN] for r in rounds]
        paced_direct = [r.paced[DIRECT] for r in rounds]
        add("l7_plain_half_saturation_rps", [p["rps"] for p in paced], "/s")
        add("l7_plain_p99_half_saturation_us", [p["p99_us"] for p in paced], "us")
        add("direct_p99_half_saturation_us", [p["p99_us"] for p in paced_direct], "us")
        add("l7_plain_added_p99_half_saturation_us",
            [paced[i]["p99_us"] - paced_direct[i]["p99_us"] for i in n], "us", "<= 3000")
        add("l7_plain_added_p50_half_saturation_us",
            [paced[i]["p50_us"] - paced_direct[i]["p50_us"] for i in n], "us")
        # The same pace through HAProxy on the engine's core: what a hop there costs at the
        # tail on this machine, whatever the proxy (a reference, no goal).
        paced_haproxy = [r.paced[HAPROXY] for r in rounds]
        add("haproxy_p99_half_saturation_us", [p["p99_us"] for p in paced_haproxy], "us")
        add("haproxy_added_p99_half_saturation_us",
            [paced_haproxy[i]["p99_us"] - paced_direct[i]["p99_us"] for i in n], "us")
        errors = float(sum(sum(e.values()) for e in self.errors.values()))
        report.add("request_errors", errors, "n", "<= 0")
        mismatches = [float(sum(ph.unexpected for ph in r.phases.values())
                            + sum(p["unexpected"] for p in r.paced.values())) for r in rounds]
        report.add("audit_mismatches", sum(mismatches), "n", "<= 0",
                   (min(mismatches), max(mismatches)))
        s = self.s
        audited = sum(r.phases[c].audited for r in rounds for c in (L7_PLAIN, L7_TLS)) + sum(
            r.paced[L7_PLAIN]["audited"] for r in rounds)
        answered = sum(r.phases[c].requests for r in rounds for c in (L7_PLAIN, L7_TLS)) + sum(
            int(r.paced[L7_PLAIN]["completed"]) for r in rounds)
        tls_conns = sum(r.phases[L7_TLS].connections for r in rounds)
        intercepted = sum(r.phases[L7_TLS].intercepted for r in rounds)
        behind = max(max(p["behind_max_ms"] for p in r.paced.values()) for r in rounds)
        waited = sum(sum(int(p["waited"]) for p in r.paced.values()) for r in rounds)
        pacers = sorted({str(p.get("pacer", "?")) for r in rounds for p in r.paced.values()})
        pacer_cpu = max(max(float(p["client_cpu"]) for p in r.paced.values()) for r in rounds)
        report.notes += [
            f"{len(rounds)} interleaved rounds (direct, direct_tls, haproxy, l7_plain, l7_tls,"
            " mitmproxy; then l7_plain, direct and haproxy paced); medians of rounds, spread ="
            " min-max of rounds; added latency and ratios within each round (l7_tls against"
            " direct_tls, the others against direct)",
            "request: POST /echo, Content-Type application/json, a 4096-byte JSON body"
            " (Content-Length); answer: 200 with a small JSON body naming the length and"
            " CRC-32 received, checked on every request; server: tools/bench/l7_server.py"
            f" (uvloop) on {self.server_address}"
            f" ({SERVER_NAME}) ports {DIRECT_PORT}/{DIRECT_TLS_PORT} (direct, the reference"
            f" proxies' upstream) and {INSPECT_PORT}/{INSPECT_TLS_PORT} (inspected), TLS with"
            " the lab's upstream certificate, no session tickets",
            f"latency: {s.new_conn} new-connection and {s.keepalive} keep-alive sequential"
            f" requests per configuration per round (after {s.warmup} untimed each); a new"
            " connection is timed from connect() (TCP, TLS handshake) to the answer's last"
            " byte, and closed with a reset by the client",
            f"saturation: {s.connections} keep-alive connections, closed loop, {s.load_s:g} s"
            f" measured after {s.load_warmup_s:g} s, one uvloop client process;"
            " *_gateway_cpu_us_per_request is the proxy's (engine's) CPU time over the whole"
            " load run (user + system, all threads) per request answered in it (warm-up"
            " included), *_gateway_sys_us_per_request the kernel's part of it;"
            " *_gateway_cpu_at_saturation = that CPU per request times the measured rate,"
            " in cores: ~1.0 means the proxy, not the client, was the bottleneck;"
            " *_client_cpu_at_saturation is the client's over the"
            " measured window (direct's and haproxy's rates are bounded by the client and"
            " server sharing one core, not by the kernel or HAProxy)",
            f"half saturation: requests paced at 50% of the round's l7_plain rate for"
            f" {s.paced_s:g} s (after {s.load_warmup_s:g} s) on {s.connections} keep-alive"
            " connections, each sent at its own due time and timed from that due time to"
            " the last byte of its answer (a request that found no idle connection waited"
            f" for the next one: {waited} did, over the run); the pacer's timer woke at most"
            f" {behind:.2f} ms after a request was due, and the pacer used at most"
            f" {pacer_cpu:.2f} of a core; direct, then haproxy, at the same pace right after;"
            " added = p99 minus direct p99",
            f"the engine's L7 request path: {self.request_path} (gatewayd/compiled.py;"
            " tools/native.py compiles it)",
            f"pacer of the paced phases: {', '.join(pacers)}"
            + (f" (tools/bench/l7_pace.c: epoll, a timerfd armed at each request's absolute"
               f" due time, no busy loop; built with {self.pacer_built_with},"
               f" {' '.join(PACER_CFLAGS)})" if pacers == ["c"] else ""),
            f"check: the l7 phases got {answered} answers and the engine audited {audited}"
            f" http.request records as expected (via transparent, tls none/intercepted, rule"
            f" {INSPECT_RULE}, inspect, 200; one per answer: the client awaits every request"
            " it sent); the direct and reference-proxy phases must have none;"
            " audit_mismatches counts every difference",
            f"check: the l7_tls phases opened {tls_conns} TLS connections; the engine audited"
            f" {intercepted} tls.decision records with tls = intercepted",
            "the policy: the agent may reach the lab resolver, the server's direct ports by"
            f" address, the gateway's {GATEWAY_ADDRESS} ports {HAPROXY_PORT}/{MITM_PORT} (the"
            f" reference proxies) by address, and {SERVER_NAME} ports"
            f" {INSPECT_PORT}/{INSPECT_TLS_PORT} by name with action inspect; the engine runs"
            " in every phase (see the docstring); the new-flow limits before the queue are"
            f" raised to {BENCH_FLOW_RATE}/s",
            f"HAProxy {self.versions.get('haproxy', '?')}: mode http, nbthread 1,"
            " http-keep-alive, http-reuse safe; mitmproxy"
            f" {self.versions.get('mitmproxy', '?')}: mitmdump --mode reverse, --quiet,"
            " flow_detail=0, in its own virtual environment",
            f"pinned with taskset: agent client and upstream server on CPU {PIN_LOAD}; the"
            f" engine (verdict and L7, one event loop), HAProxy and mitmdump on CPU"
            f" {PIN_GATEWAY}" if s.pin else
            "no CPU pinning: client, server, engine and proxies share the CPUs",
            *self.setup_notes,
            "the AI analyzer and DLP were on (--inspections: the gateway's default)"
            if s.inspections else
            "the AI analyzer and DLP were off (ai.enabled, dlp.enabled: false): the L7 path"
            " itself; their costs are tools/bench/ai.py's and tools/bench/dlp.py's",
        ]
        report.notes.append(self.slow_note())
        if self.odd:
            report.notes.append(f"audit mismatches: {self.odd}")
        if self.errors and errors:
            report.notes.append(f"client errors: {self.errors}")
        return report


    def slow_note(self) -> str:
        """When the slow requests (>= 2 ms) of l7_plain at half saturation were sent: in
        bursts (sent within 50 ms of one another), and how far apart the bursts with a
        request of 10 ms or more began: a steady period points at something the engine
        does on a timer."""
        slow = bursts = 0
        gaps: list[float] = []
        for r in self.rounds:
            kept = [(float(t), int(us)) for t, us in r.paced[L7_PLAIN].get("slow", [])]
            slow += len(kept)
            groups: list[list[tuple[float, int]]] = []
            for t, us in kept:
                if groups and t - groups[-1][-1][0] < 0.05:
                    groups[-1].append((t, us))
                else:
                    groups.append([(t, us)])
            starts = [g[0][0] for g in groups if max(us for _, us in g) >= 10_000]
            bursts += len(starts)
            gaps += [b - a for a, b in itertools.pairwise(starts)]
        every = f", {median(gaps):.2f} s apart (median)" if gaps else ""
        return (f"half saturation: {slow} l7_plain requests took >= 2 ms (at most"
                f" {SLOW_KEPT} a round kept); {bursts} bursts held one of >= 10 ms{every}")


def build_pacer(workdir: Path) -> tuple[Path, str]:
    """Compile the paced phases' load generator (``l7_pace.c``) into ``workdir``: the
    program and the compiler's version. There is no falling back to the asyncio pacer: its
    own lag would be in the p99."""
    cc = shutil.which("cc")
    if cc is None:
        raise SystemExit(f"l7: no C compiler (cc) to build {PACER_SOURCE}: install gcc"
                         " (tools/debian-packages.txt)")
    out = workdir / "l7_pace"
    done = subprocess.run([cc, *PACER_CFLAGS, "-o", str(out), str(PACER_SOURCE)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"l7: cannot compile {PACER_SOURCE} (cc {' '.join(PACER_CFLAGS)}):"
                         f" {(done.stdout + done.stderr).strip()[-1500:]}")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    lines = version.stdout.splitlines()
    return out, lines[0] if lines else "cc"


def ensure_haproxy() -> str | None:
    """Install the Debian haproxy package when ``haproxy`` is missing; a note if it was."""
    if shutil.which("haproxy") is not None:
        return None
    print("l7: haproxy is missing: installing the Debian package (apt-get install haproxy)",
          flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "haproxy"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or shutil.which("haproxy") is None:
        raise SystemExit(f"l7: cannot install haproxy: {done.stderr.strip()[-500:]}")
    # The package's service, if its scripts started one in the host: not ours to keep.
    subprocess.run(["service", "haproxy", "stop"], capture_output=True, check=False)
    return "set-up: installed the Debian haproxy package (apt-get install haproxy)"


def ensure_mitmproxy(python: str) -> str | None:
    """Install mitmproxy into its own virtual environment when it is not there yet."""
    mitmdump = MITM_VENV / "bin" / "mitmdump"
    if mitmdump.exists():
        return None
    print(f"l7: mitmproxy is missing: installing it into {MITM_VENV} (pip install mitmproxy)",
          flush=True)
    MITM_HOME.mkdir(parents=True, exist_ok=True)
    steps = [[python, "-m", "venv", "--clear", str(MITM_VENV)],
             [str(MITM_VENV / "bin" / "pip"), "install", "-q", "mitmproxy"]]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"l7: {' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return f"set-up: installed mitmproxy into {MITM_VENV} (pip install mitmproxy)"


def ensure_py_spy(python: str) -> Path:
    """py-spy (for --profile) in a virtual environment of its own."""
    py_spy = PY_SPY_VENV / "bin" / "py-spy"
    if not py_spy.exists():
        print(f"l7: installing py-spy into {PY_SPY_VENV} (pip install py-spy)", flush=True)
        MITM_HOME.mkdir(parents=True, exist_ok=True)
        for argv in ([python, "-m", "venv", "--clear", str(PY_SPY_VENV)],
                     [str(PY_SPY_VENV / "bin" / "pip"), "install", "-q", "py-spy"]):
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"l7: {' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return py_spy


def versions() -> dict[str, str]:
    out = {}
    done = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=False)
    if done.returncode == 0 and done.stdout:
        out["haproxy"] = done.stdout.split()[2]
    done = subprocess.run([str(MITM_VENV / "bin" / "python"), "-c",
                           "import mitmproxy.version as v; print(v.VERSION)"],
                          capture_output=True, text=True, check=False)
    if done.returncode == 0:
        out["mitmproxy"] = done.stdout.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 short rounds (smoke run)")
    ap.add_argument("--profile", action="store_true",
                    help="sample the engine with py-spy at saturation (l7_plain, l7_tls) and"
                         " write bench-results/l7-profile-*.txt; the figures of such a run"
                         " are not to be published")
    ap.add_argument("--no-pin", action="store_true",
                    help=f"do not pin (default: client and server on CPU {PIN_LOAD}, the"
                         f" engine and the proxies on CPU {PIN_GATEWAY})")
    ap.add_argument("--inspections", action="store_true",
                    help="keep the AI analyzer and DLP on (the gateway's default); without"
                         " it they are off and the L7 path itself is measured")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("l7: needs root (network namespaces, nftables, TPROXY)", file=sys.stderr)
        return 2
    pin = not args.no_pin and {PIN_LOAD, PIN_GATEWAY} <= os.sched_getaffinity(0)
    settings = Settings.of(args.quick, pin, args.inspections)
    setup_notes = [note for note in (ensure_haproxy(), ensure_mitmproxy(sys.executable))
                   if note is not None]

    interrupt_on_sigterm()  # tear the lab down (the finally below)
    workdir = Path(tempfile.mkdtemp(prefix="clawgress-bench-l7-"))
    lab = Lab(f"cgl7{os.getpid()}", workdir / "lab", agents=1)
    bench = Bench(lab, settings, workdir)
    bench.setup_notes = setup_notes
    bench.versions = versions()
    if args.profile:
        bench.py_spy = ensure_py_spy(sys.executable)
    try:
        started = time.monotonic()
        bench.pacer, bench.pacer_built_with = build_pacer(workdir)
        lab.up(engine=False)  # removes what it made if it fails
        bench.setup()
        bench.run()
        report = bench.report()
        report.notes.append(f"wall time {time.monotonic() - started:.0f} s")
        for path in bench.write_profiles():
            report.notes.append(f"profiled with py-spy (the figures are perturbed): {path}")
    finally:
        try:
            bench.stop_all()
        finally:
            lab.down()
            shutil.rmtree(workdir, ignore_errors=True)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
