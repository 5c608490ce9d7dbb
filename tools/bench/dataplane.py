"""Data-plane cost: new-flow latency, TLS flows decided by name, new-flow rate, bulk
throughput and queue drops.

Brings up the network-namespace lab (one agent, the gateway, the upstream; see
``docs/lab.md``), then measures, in interleaved rounds, three configurations of the same
gateway namespace:

A. *plain*: plain kernel forwarding, no Clawgress rules at all (engine stopped, our table
   and tagged xtables rules flushed);
B. *accept-all*: the Clawgress ruleset and ``dataplane_accept_all.py``, a minimal NFQUEUE
   handler that stamps every packet *allow* and accepts it (what queueing to userspace
   costs by itself);
C. *clawgress*: the ruleset and the real verdict engine (``clawgress run``), with a signed
   policy that allows the benchmark agent to the benchmark server by address and port,
   and to the TLS server by host name (``TLS_NAME`` on port 443; the lab's service
   network is denied by address, so that name's flows are decided by name only).

Each round runs A, B, C in turn and measures in each:

* connect latency (A, B, C): sequential ``connect()`` from the agent to an
  accept-and-close server in the upstream namespace (``dataplane_client.py latency``,
  ``dataplane_server.py``), p50 and p99; the added latency is the configuration's p50 (p99)
  minus plain's in the same round;
* TLS connect-to-first-byte latency (A, B, C): the agent resolves ``TLS_NAME`` through the
  lab resolver (``dataplane_client.py resolve``: the engine learns the name from the DNS
  answer it sees), then opens sequential TLS connections to that address on port 443 with
  SNI ``TLS_NAME`` (``dataplane_client.py tls``), each timed from the start of
  ``connect()`` to the first application byte, against ``dataplane_server.py --tls-cert``
  (the lab's upstream certificate; handshake, one byte, close) in place of the lab's own
  HTTPS upstream. Under C such a flow is SNI-decided: its SYN is admitted *pending* and its
  ClientHello queued to the engine, which decides by the SNI; checked per round from the
  queue's ``id_sequence`` (packets queued per TLS flow, goal 2) and from the engine's audit
  log (every TLS flow's verdict carries ``sni`` and ``host`` and was decided by the
  host-name rule);
* new flows per second at saturation (A, C): non-blocking connects with a few hundred
  outstanding, on one epoll loop, for a few seconds;
* bulk throughput (A, C): iperf3 from the agent to the upstream, one established flow;
* queue drops at 80% of saturation (C): connects paced at 80% of that round's clawgress
  saturation rate, and the kernel's NFQUEUE drop counters (queue and netlink-socket drops)
  read in the gateway namespace before and after.

Medians of the rounds, the spread (min-max of the rounds) and ratios within rounds go to
the table and ``bench-results/dataplane.json``; the exit code is 1 when a goal is missed
(among them ``tls_added_p50_us`` <= 120 µs and ``tls_queued_per_flow`` == 2).
The lab is always taken down at the end (also on Ctrl-C or SIGTERM). Needs root.

Set-up details that matter for the figures: the per-source new-flow rate limit before the
queue is raised in the lab's gateway.yaml (the benchmark's one agent floods on purpose);
the clawgress figures are taken once the engine has audited ``engine.started`` (after its
start-up sweep of the conntrack table); every flow the clawgress phases completed is
checked against the engine's audited verdicts (``clawgress_flows_without_verdict``). By
default the load generators (agent client, upstream servers) are pinned to CPU 0 and the
handler or engine to CPU 1 (``--no-pin`` to let the scheduler place them).

Run: ``python -m tools.bench.dataplane`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
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

import yaml

from gatewayd.lab import processes
from gatewayd.lab.lab import UPSTREAM_PROCESS, Lab
from gatewayd.lab.plan import DNS_SERVER, UPSTREAM
from gatewayd.lab.state import load_record
from gatewayd.netfilter.queuestats import QueueStats, parse_queue_stats
from tools.bench.lab_bench import PIN_GATEWAY, PIN_LOAD, LabBench, interrupt_on_sigterm
from tools.bench.report import Report, median, percentile

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "dataplane_client.py"
SERVER = HERE / "dataplane_server.py"
ACCEPT_ALL = HERE / "dataplane_accept_all.py"

SERVER_ADDRESS = str(UPSTREAM.v4)  # 10.78.0.2, the upstream's own address
CONNECT_PORT = 9000
IPERF_PORT = 5201
# The TLS case: a lab name (docs/lab.md) the agent resolves through the lab resolver, then
# reaches on the default TLS port; the policy names it by host only.
TLS_NAME = "api.openai.com"
TLS_PORT = 443
DNS_ADDRESS = str(DNS_SERVER.v4)
LAB_SERVICES = "10.78.0.0/24"
AGENT = "dp-bench"
# The per-source new-flow rate limit before the queue, raised so the engine is measured.
BENCH_FLOW_RATE = 1_000_000
BENCH_FLOW_BURST = 100_000
BULK_INTERVAL_S = 0.5

PLAIN, ACCEPT_ALL_CFG, CLAWGRESS = "plain", "accept_all", "clawgress"
# CPUs when pinned: the load generators (agent client, upstream servers) and the gateway's
# userspace (the accept-all handler or the engine).

POLICY = f"""\
apiVersion: clawgress.io/v1
kind: Policy
metadata:
  id: dataplane-bench
  description: The data-plane benchmark's agent may reach its servers.
spec:
  priority: 100
  rules:
    - id: bench-servers
      action: allow
      identity: {{agent: {AGENT}}}
      destination:
        cidrs: [{SERVER_ADDRESS}/32]
        ports: [{CONNECT_PORT}, {IPERF_PORT}]
        protocol: tcp
      reason: the data-plane benchmark
    - id: bench-dns
      action: allow
      identity: {{agent: {AGENT}}}
      destination:
        cidrs: [{DNS_ADDRESS}/32]
        ports: [53]
      reason: the lab resolver
    - id: bench-tls
      action: allow
      identity: {{agent: {AGENT}}}
      destination:
        hosts: [{TLS_NAME}]
        ports: [{TLS_PORT}]
        protocol: tcp
      reason: the data-plane benchmark's TLS case, decided by name
    - id: lab-services
      priority: 900
      action: deny
      destination:
        cidrs: [{LAB_SERVICES}]
      reason: the lab's services are reached by name only (lab names may resolve into it)
"""
TLS_RULE = "bench-tls"


@dataclass
class Settings:
    rounds: int
    connects: int
    connect_warmup: int
    flood_s: float
    flood_warmup_s: float
    inflight: int
    paced_s: float
    bulk_s: int
    tls_connects: int
    tls_warmup: int
    pin: bool

    @classmethod
    def of(cls, quick: bool, pin: bool) -> Settings:
        if quick:
            return cls(rounds=2, connects=500, connect_warmup=100, flood_s=1.5,
                       flood_warmup_s=0.3, inflight=256, paced_s=2.0, bulk_s=2,
                       tls_connects=200, tls_warmup=50, pin=pin)
        return cls(rounds=7, connects=3000, connect_warmup=200, flood_s=3.0,
                   flood_warmup_s=0.5, inflight=256, paced_s=5.0, bulk_s=5,
                   tls_connects=1000, tls_warmup=100, pin=pin)


@dataclass
class TlsRun:
    """One configuration's TLS phase in one round."""

    samples: list[float]
    attempts: int  # TLS flows opened (warm-up included)
    completed: int  # of those, the ones that got their first byte
    queued: int | None = None  # packets the verdict queue took meanwhile (None: no queue)
    # Clawgress: the engine's flow verdicts for port-443 flows in the phase, the ones that
    # were decided by SNI (sni and host = TLS_NAME, by the host-name rule, allowed), and
    # all flow verdicts audited in the phase (the DNS query's included).
    verdicts_443: int = 0
    sni_decided: int = 0
    verdict_lines: int = 0

    @property
    def queued_per_flow(self) -> float:
        assert self.queued is not None
        return self.queued / self.attempts if self.attempts else float("nan")


@dataclass
class Round:
    latency: dict[str, list[float]] = field(default_factory=dict)
    flows_per_s: dict[str, float] = field(default_factory=dict)
    bulk_gbps: dict[str, float] = field(default_factory=dict)
    tls: dict[str, TlsRun] = field(default_factory=dict)
    flood_drops: int = 0
    paced: dict[str, Any] = field(default_factory=dict)
    paced_drops: int = 0
    # Clawgress flows the client completed, and flow.verdict events the engine audited.
    completed: int = 0
    verdicts: int = 0


class Bench(LabBench):
    NAME = "dataplane"
    s: Settings

    def __init__(self, lab: Lab, settings: Settings, workdir: Path) -> None:
        super().__init__(lab, settings, workdir)
        self.server: subprocess.Popen[str] | None = None
        self.tls_server: subprocess.Popen[str] | None = None
        self.tls_address = str(lab.addresses[TLS_NAME].v4)
        self.iperf: subprocess.Popen[str] | None = None
        self.handler: subprocess.Popen[str] | None = None
        self.rounds: list[Round] = []
        self.errors: dict[str, int] = {}
        self.startup_s: list[float] = []
        self.completed = 0  # connects completed since the last reset of this counter

    # --- set-up ---------------------------------------------------------------------------

    def setup(self) -> None:
        lab = self.lab
        # Raise the flood limits: the benchmark's one agent opens thousands of flows a
        # second on purpose. The shared budget of unleased sources too: with the accept-all
        # handler no engine fills the ruleset's set of leased sources.
        self.set_dataplane(new_flow_rate=BENCH_FLOW_RATE, new_flow_burst=BENCH_FLOW_BURST,
                           unleased_flow_rate=BENCH_FLOW_RATE,
                           unleased_flow_burst=BENCH_FLOW_BURST)
        self.publish_agent_policy(AGENT, "dataplane", POLICY)
        # Ephemeral ports: a saturation run opens tens of thousands of flows.
        lab.exec("a1", ["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000"],
                 check=True)
        self.server = self._start_ready(
            "up", [self.python, str(SERVER), SERVER_ADDRESS, str(CONNECT_PORT)], self.cpu("up"))
        # The TLS server takes port 443 of TLS_NAME's address, where the lab's own upstream
        # (HTTP and HTTPS on every address of the namespace) listens: end that one first.
        self._stop_lab_upstream()
        self.tls_server = self._start_ready(
            "up", [self.python, str(SERVER), self.tls_address, str(TLS_PORT),
                   "--tls-cert", str(lab.paths.upstream_cert),
                   "--tls-key", str(lab.paths.upstream_key)], self.cpu("up"))
        self.iperf = lab.popen("up", [*self.taskset(self.cpu("up")), "iperf3", "-s", "-B",
                                      SERVER_ADDRESS, "-p", str(IPERF_PORT)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def _stop_lab_upstream(self) -> None:
        record = load_record(self.lab.paths)
        proc = record.processes.get(UPSTREAM_PROCESS) if record is not None else None
        if proc is None:
            raise SystemExit("dataplane: the lab records no upstream process")
        if processes.terminate([(proc.pid, proc.start_time)]):
            raise SystemExit(f"dataplane: the lab upstream (pid {proc.pid}) did not end")


    # --- configurations -------------------------------------------------------------------

    def to_plain(self) -> None:
        self._stop_handler()
        self.lab.stop_engine(signal.SIGTERM)
        self.lab.exec("gw", [*self.cli, "rules", "flush"], check=True,
                      stdout=subprocess.DEVNULL)

    def to_accept_all(self) -> None:
        self.lab.stop_engine(signal.SIGTERM)
        self.lab.apply_rules()
        self.handler = self._start_ready(
            "gw", [self.python, str(ACCEPT_ALL), "--config", str(self.lab.config_path)],
            self.cpu("gw"))

    def to_clawgress(self) -> None:
        self._stop_handler()
        # The engine has bound its queues; it audits engine.started once its start-up sweep
        # of the conntrack table is done. Measure from then on (see the notes).
        _, _, waited = self.start_engine()
        self.startup_s.append(waited)

    def _stop_handler(self) -> None:
        self.stop_process(self.handler)
        self.handler = None

    def stop_all(self) -> None:
        self._stop_handler()
        for proc in (self.server, self.tls_server, self.iperf):
            self.stop_process(proc)

    # --- measurements ---------------------------------------------------------------------

    def client(self, *args: str) -> dict[str, Any]:
        argv = [*self.taskset(self.cpu("agent")), self.python, str(CLIENT), *args]
        done = self.lab.exec("a1", argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"dataplane: client {' '.join(args)} failed: {done.stderr.strip()}")
        result: dict[str, Any] = json.loads(done.stdout)
        for name, n in result.get("errors", {}).items():
            self.errors[name] = self.errors.get(name, 0) + n
        return result

    def latency(self) -> list[float]:
        out = self.client("latency", f"{SERVER_ADDRESS}:{CONNECT_PORT}",
                          "--count", str(self.s.connects), "--warmup", str(self.s.connect_warmup))
        samples: list[float] = out["samples_us"]
        if len(samples) < self.s.connects // 2:
            raise SystemExit(f"dataplane: only {len(samples)} connects succeeded: {out['errors']}")
        self.completed += self.s.connect_warmup + len(samples)
        return samples

    def saturate(self) -> float:
        out = self.client("flood", f"{SERVER_ADDRESS}:{CONNECT_PORT}",
                          "--duration", str(self.s.flood_s),
                          "--warmup", str(self.s.flood_warmup_s),
                          "--inflight", str(self.s.inflight))
        self.completed += int(out["completed"])
        return float(out["flows_per_s"])

    def paced(self, rate: float) -> dict[str, Any]:
        out = self.client("flood", f"{SERVER_ADDRESS}:{CONNECT_PORT}",
                          "--duration", str(self.s.paced_s),
                          "--warmup", str(self.s.flood_warmup_s), "--rate", f"{rate:.1f}")
        self.completed += int(out["completed"])
        return out

    def tls(self, config: str) -> TlsRun:
        """Resolve TLS_NAME through the lab resolver (the engine learns it from the answer),
        then time TLS flows to it; under clawgress, check they were decided by SNI."""
        out = self.client("resolve", TLS_NAME)
        if self.tls_address not in out["addresses"]:
            raise SystemExit(f"dataplane: {TLS_NAME} resolved to {out['addresses']},"
                             f" not {self.tls_address}")
        queued = config != PLAIN
        if config == CLAWGRESS:
            time.sleep(0.1)  # the audit lines of what came before are written
        offset = self.audit.stat().st_size if self.audit.exists() else 0
        before = self.queue_id() if queued else 0
        out = self.client("tls", f"{self.tls_address}:{TLS_PORT}", "--sni", TLS_NAME,
                          "--count", str(self.s.tls_connects),
                          "--warmup", str(self.s.tls_warmup), "--cafile", str(self.lab.ca_bundle))
        after = self.queue_id() if queued else 0
        samples: list[float] = out["samples_us"]
        attempts = int(out["attempts"])
        failed = sum(out["errors"].values())
        if len(samples) < self.s.tls_connects // 2:
            raise SystemExit(f"dataplane: only {len(samples)} TLS flows succeeded under"
                             f" {config}: {out['errors']}")
        run = TlsRun(samples, attempts, attempts - failed,
                     after - before if queued else None)
        if config == CLAWGRESS:
            run.verdicts_443, run.sni_decided, run.verdict_lines = self.tls_verdicts(offset)
        return run

    def tls_verdicts(self, offset: int) -> tuple[int, int, int]:
        """From ``offset`` of the audit log: flow verdicts for port 443, those decided by
        SNI for TLS_NAME by the host-name rule, and all flow verdicts."""
        time.sleep(0.1)
        on_443 = by_sni = lines = 0
        with self.audit.open("rb") as f:
            f.seek(offset)
            for line in f:
                if b'"flow.verdict"' not in line:
                    continue
                event = json.loads(line)
                if event.get("kind") != "flow.verdict":
                    continue
                lines += 1
                if event.get("dst_port") != TLS_PORT:
                    continue
                on_443 += 1
                if (event.get("sni") == TLS_NAME and event.get("host") == TLS_NAME
                        and event.get("rule_id") == TLS_RULE and event.get("state") == "allow"):
                    by_sni += 1
        return on_443, by_sni, lines

    def verdicts_since(self, offset: int) -> int:
        """flow.verdict events the engine audited after ``offset`` of the audit log."""
        time.sleep(0.1)  # the last verdicts' lines follow their packets' accept
        count = 0
        with self.audit.open("rb") as f:
            f.seek(offset)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                count += chunk.count(b'"flow.verdict"')  # one line never spans two writes
        return count

    def bulk(self) -> float:
        argv = [*self.taskset(self.cpu("agent")), "iperf3", "-c", SERVER_ADDRESS,
                "-p", str(IPERF_PORT), "-t", str(self.s.bulk_s + 1), "-O", "1",
                "-i", str(BULK_INTERVAL_S), "-J"]
        for _ in range(3):  # the server takes one test at a time; retry if it is busy
            done = self.lab.exec("a1", argv, capture_output=True, text=True, check=False)
            try:
                doc = json.loads(done.stdout)
            except json.JSONDecodeError:
                doc = {"error": done.stderr.strip() or "no output"}
            if "error" not in doc:
                # The median of the intervals: a neighbour's burst of CPU use on the shared
                # machine spoils an interval, not the figure.
                rates = [float(i["sum"]["bits_per_second"]) for i in doc.get("intervals", [])
                         if not i["sum"].get("omitted")]
                if not rates:
                    rates = [float(doc["end"]["sum_received"]["bits_per_second"])]
                return median(rates) / 1e9
            time.sleep(0.5)
        raise SystemExit(f"dataplane: iperf3 failed: {doc['error']}")

    def queue_stats(self) -> dict[int, QueueStats]:
        done = self.lab.exec("gw", ["cat", "/proc/net/netfilter/nfnetlink_queue"],
                             capture_output=True, text=True, check=False)
        return parse_queue_stats(done.stdout) if done.returncode == 0 else {}

    def drops(self) -> int:
        """Kernel drops (queue full, netlink socket full) of the verdict queue so far."""
        queue = self._queue_number()
        st = self.queue_stats().get(queue)
        return st.drops if st is not None else 0

    def queue_id(self) -> int:
        """The verdict queue's id_sequence: packets it has taken since it was bound."""
        st = self.queue_stats().get(self._queue_number())
        if st is None:
            raise SystemExit("dataplane: the verdict queue is not bound")
        return st.id_sequence

    def _queue_number(self) -> int:
        data = yaml.safe_load(self.lab.config_path.read_text())
        return int(data.get("dataplane", {}).get("queue", 0))

    # --- the rounds -----------------------------------------------------------------------

    def run(self) -> None:
        for n in range(1, self.s.rounds + 1):
            r = Round()
            t0 = time.monotonic()
            self.to_plain()
            r.latency[PLAIN] = self.latency()
            r.tls[PLAIN] = self.tls(PLAIN)
            r.flows_per_s[PLAIN] = self.saturate()
            r.bulk_gbps[PLAIN] = self.bulk()

            self.to_accept_all()
            r.latency[ACCEPT_ALL_CFG] = self.latency()
            r.tls[ACCEPT_ALL_CFG] = self.tls(ACCEPT_ALL_CFG)

            self.to_clawgress()
            audit_offset = self.audit.stat().st_size
            self.completed = 0
            r.latency[CLAWGRESS] = self.latency()
            # Its flow verdicts (the DNS query's too) are not the connects' below.
            r.tls[CLAWGRESS] = self.tls(CLAWGRESS)
            r.bulk_gbps[CLAWGRESS] = self.bulk()  # close in time to plain's, at the end of A
            before = self.drops()
            r.flows_per_s[CLAWGRESS] = self.saturate()
            mid = self.drops()
            r.flood_drops = mid - before
            r.paced = self.paced(0.8 * r.flows_per_s[CLAWGRESS])
            r.paced_drops = self.drops() - mid
            r.completed = self.completed
            r.verdicts = self.verdicts_since(audit_offset) - r.tls[CLAWGRESS].verdict_lines
            self.rounds.append(r)
            p50 = {k: percentile(v, 50) for k, v in r.latency.items()}
            tls50 = {k: percentile(v.samples, 50) for k, v in r.tls.items()}
            print(f"round {n}/{self.s.rounds} ({time.monotonic() - t0:.0f} s):"
                  f" connect p50 {p50[PLAIN]:.0f}/{p50[ACCEPT_ALL_CFG]:.0f}/{p50[CLAWGRESS]:.0f} us"
                  f" (plain/accept-all/clawgress);"
                  f" TLS first byte p50 {tls50[PLAIN]:.0f}/{tls50[ACCEPT_ALL_CFG]:.0f}/"
                  f"{tls50[CLAWGRESS]:.0f} us,"
                  f" {r.tls[CLAWGRESS].queued_per_flow:.3g} queued/flow,"
                  f" {r.tls[CLAWGRESS].sni_decided}/{r.tls[CLAWGRESS].completed} by SNI;"
                  f" flows/s {r.flows_per_s[PLAIN]:.0f}/{r.flows_per_s[CLAWGRESS]:.0f};"
                  f" bulk {r.bulk_gbps[PLAIN]:.2f}/{r.bulk_gbps[CLAWGRESS]:.2f} Gbit/s;"
                  f" paced {r.paced['offered_per_s']:.0f}/s: {r.paced_drops} queue drops,"
                  f" {r.paced['slow']} slow, p99 {r.paced['p99_us']:.0f} us", flush=True)
        self.to_plain()

    # --- the report -----------------------------------------------------------------------

    def report(self) -> Report:
        report = Report("dataplane")
        rounds = self.rounds

        def add(name: str, values: list[float], unit: str, goal: str | None = None) -> None:
            report.add(name, median(values), unit, goal, (min(values), max(values)))

        p50 = {c: [percentile(r.latency[c], 50) for r in rounds]
               for c in (PLAIN, ACCEPT_ALL_CFG, CLAWGRESS)}
        p99 = {c: [percentile(r.latency[c], 99) for r in rounds]
               for c in (PLAIN, ACCEPT_ALL_CFG, CLAWGRESS)}
        for c in (PLAIN, ACCEPT_ALL_CFG, CLAWGRESS):
            add(f"connect_p50_us_{c}", p50[c], "us")
            add(f"connect_p99_us_{c}", p99[c], "us")
        n = range(len(rounds))
        for q, per in (("p50", p50), ("p99", p99)):
            added_aa = [per[ACCEPT_ALL_CFG][i] - per[PLAIN][i] for i in n]
            added_cg = [per[CLAWGRESS][i] - per[PLAIN][i] for i in n]
            ratio = [cg / aa if aa > 0 else float("inf")
                     for cg, aa in zip(added_cg, added_aa, strict=True)]
            add(f"added_{q}_us_accept_all", added_aa, "us")
            add(f"added_{q}_us_clawgress", added_cg, "us", "<= 60" if q == "p50" else None)
            add(f"added_{q}_ratio_vs_accept_all", ratio, "x", "<= 1.5" if q == "p50" else None)
        configs = (PLAIN, ACCEPT_ALL_CFG, CLAWGRESS)
        tls50 = {c: [percentile(r.tls[c].samples, 50) for r in rounds] for c in configs}
        tls99 = {c: [percentile(r.tls[c].samples, 99) for r in rounds] for c in configs}
        for c in configs:
            add(f"tls_connect_first_byte_p50_us_{c}", tls50[c], "us")
            add(f"tls_connect_first_byte_p99_us_{c}", tls99[c], "us")
        add("tls_added_p50_us", [tls50[CLAWGRESS][i] - tls50[PLAIN][i] for i in n], "us",
            "<= 120")
        add("tls_added_p99_us", [tls99[CLAWGRESS][i] - tls99[PLAIN][i] for i in n], "us")
        add("tls_added_p50_us_accept_all",
            [tls50[ACCEPT_ALL_CFG][i] - tls50[PLAIN][i] for i in n], "us")
        add("tls_queued_per_flow", [r.tls[CLAWGRESS].queued_per_flow for r in rounds], "pkts",
            "== 2")
        add("tls_queued_per_flow_accept_all",
            [r.tls[ACCEPT_ALL_CFG].queued_per_flow for r in rounds], "pkts")
        # Completed TLS flows without an SNI decision, plus port-443 verdicts that were not
        # one (a flow decided otherwise would measure something else).
        not_sni = [float(max(0, t.completed - t.sni_decided) + (t.verdicts_443 - t.sni_decided))
                   for t in (r.tls[CLAWGRESS] for r in rounds)]
        report.add("tls_flows_not_sni_decided", sum(not_sni), "n", "<= 0",
                   (min(not_sni), max(not_sni)))
        plain_rate = [r.flows_per_s[PLAIN] for r in rounds]
        claw_rate = [r.flows_per_s[CLAWGRESS] for r in rounds]
        add("new_flows_per_s_plain", plain_rate, "/s")
        add("new_flows_per_s_clawgress", claw_rate, "/s")
        add("new_flow_rate_ratio_vs_plain",
            [c / p for c, p in zip(claw_rate, plain_rate, strict=True)], "x", ">= 0.7")
        plain_bulk = [r.bulk_gbps[PLAIN] for r in rounds]
        claw_bulk = [r.bulk_gbps[CLAWGRESS] for r in rounds]
        add("bulk_gbps_plain", plain_bulk, "Gb/s")
        add("bulk_gbps_clawgress", claw_bulk, "Gb/s")
        add("bulk_ratio_vs_plain", [c / p for c, p in zip(claw_bulk, plain_bulk, strict=True)],
            "x", ">= 0.95")
        drops = [float(r.paced_drops) for r in rounds]
        report.add("queue_drops_at_80pct_saturation", sum(drops), "pkts", "<= 0",
                   (min(drops), max(drops)))
        add("paced_flows_per_s_at_80pct", [r.paced["offered_per_s"] for r in rounds], "/s")
        add("connect_p99_us_at_80pct", [r.paced["p99_us"] for r in rounds], "us")
        slow = [float(r.paced["slow"]) for r in rounds]
        report.add("slow_connects_at_80pct", sum(slow), "n", None, (min(slow), max(slow)))
        missing = [float(max(0, r.completed - r.verdicts)) for r in rounds]
        report.add("clawgress_flows_without_verdict", sum(missing), "n", None,
                   (min(missing), max(missing)))
        flood_drops = [float(r.flood_drops) for r in rounds]
        report.add("queue_drops_at_saturation", sum(flood_drops), "pkts", None,
                   (min(flood_drops), max(flood_drops)))
        s = self.s
        report.notes += [
            f"{len(rounds)} interleaved rounds (plain, accept-all, clawgress); medians of"
            " rounds, spread = min-max of rounds; added latency and ratios within each round",
            f"connect latency: {s.connects} sequential connect() per configuration per round"
            f" (after {s.connect_warmup} untimed), agent -> gateway -> upstream"
            " accept-and-close server; the client closes with SO_LINGER 0 (a reset)",
            f"saturation: non-blocking connects, {s.inflight} outstanding, {s.flood_s:g} s"
            f" measured after {s.flood_warmup_s:g} s; paced: 80% of that round's clawgress"
            f" rate for {s.paced_s:g} s; drops: nfnetlink_queue queue_dropped + user_dropped"
            " of the verdict queue (totals over rounds; spread per round)",
            f"the new-flow limits before the queue (dataplane.new_flow_rate and"
            f" unleased_flow_rate) are"
            f" raised to {BENCH_FLOW_RATE}/s (burst {BENCH_FLOW_BURST}) in the lab's"
            " gateway.yaml, so the engine is measured, not the limit",
            f"bulk: iperf3, one TCP flow, {s.bulk_s} s after 1 s omitted; the round's figure is"
            f" the median of its {BULK_INTERVAL_S:g} s intervals",
            f"TLS: the agent resolves {TLS_NAME} through the lab resolver once per"
            f" configuration per round (an A query; the engine learns the name from the"
            f" answer), then {s.tls_connects} sequential TLS connections to"
            f" {self.tls_address}:{TLS_PORT} with SNI {TLS_NAME} (after {s.tls_warmup}"
            " untimed), each timed from connect() to the first application byte; server:"
            " handshake with the lab's upstream certificate (verified by the client against"
            " the lab CA), no session tickets, one byte, close; the client resets"
            " (SO_LINGER 0). tls_added_* = configuration minus plain within each round",
            f"TLS under clawgress: the policy names {TLS_NAME} by host on port {TLS_PORT}"
            f" ({TLS_RULE}) and denies the lab service network {LAB_SERVICES} by address;"
            " tls_queued_per_flow = the verdict queue's id_sequence delta over the TLS"
            " flows opened (SYN + ClientHello = 2); tls_flows_not_sni_decided counts"
            " completed TLS flows without an audited verdict carrying sni and host ="
            f" {TLS_NAME} by {TLS_RULE}, plus port-{TLS_PORT} verdicts that were not such",
            "slow_connects_at_80pct: connects >= 0.9 s (a retransmitted SYN: a drop somewhere);"
            " queue_drops_at_saturation is informational",
            f"pinned with taskset: agent client and upstream servers (load) on CPU {PIN_LOAD},"
            f" the accept-all handler or the engine on CPU {PIN_GATEWAY}; kernel work runs"
            " where each packet is processed"
            if s.pin else "no CPU pinning: client, server, handler/engine share the CPUs",
        ]
        tls_runs = [r.tls[CLAWGRESS] for r in rounds]
        report.notes.append(
            f"check: the clawgress TLS phases completed {sum(t.completed for t in tls_runs)}"
            f" TLS flows; the engine audited {sum(t.verdicts_443 for t in tls_runs)}"
            f" port-{TLS_PORT} flow verdicts, {sum(t.sni_decided for t in tls_runs)} of them"
            f" decided by SNI {TLS_NAME} ({TLS_RULE})")
        report.notes.append(
            f"check: the clawgress phases completed {sum(r.completed for r in rounds)} connects"
            f" and the engine audited {sum(r.verdicts for r in rounds)} flow verdicts"
            " (clawgress_flows_without_verdict counts completed connects beyond the verdicts:"
            " flows that bypassed the engine would make the clawgress figures meaningless)")
        report.notes.append(
            "engine start: the figures are taken after the engine audits engine.started (its"
            " start-up conntrack sweep done); that took"
            f" {median(self.startup_s) * 1000:.0f} ms (median; max"
            f" {max(self.startup_s) * 1000:.0f} ms) after its queues were bound")
        if self.errors:
            report.notes.append(f"client connect errors: {self.errors}")
        return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 short rounds (smoke run)")
    ap.add_argument("--no-pin", action="store_true",
                    help=f"do not pin (default: load generators on CPU {PIN_LOAD}, the"
                         f" gateway's handler or engine on CPU {PIN_GATEWAY})")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("dataplane: needs root (network namespaces, nftables, NFQUEUE)", file=sys.stderr)
        return 2
    pin = not args.no_pin and {PIN_LOAD, PIN_GATEWAY} <= os.sched_getaffinity(0)
    settings = Settings.of(args.quick, pin)

    interrupt_on_sigterm()  # tear the lab down (the finally below)
    workdir = Path(tempfile.mkdtemp(prefix="clawgress-bench-dataplane-"))
    lab = Lab(f"cgdp{os.getpid()}", workdir / "lab", agents=1)
    bench = Bench(lab, settings, workdir)
    try:
        started = time.monotonic()
        lab.up(engine=False)  # removes what it made if it fails
        bench.setup()
        bench.run()
        report = bench.report()
        report.notes.append(f"wall time {time.monotonic() - started:.0f} s")
    finally:
        try:
            bench.stop_all()
        finally:
            lab.down()
            shutil.rmtree(workdir, ignore_errors=True)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
