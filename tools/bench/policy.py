"""Policy decision latency: the compiled plan against the naive reference evaluator.

For bundles of 10, 1 000 and 10 000 rules (a realistic mix: exact hosts, wildcard
suffixes, CIDRs of several prefix lengths, identity-scoped rules, port ranges, a few L7 and
``when:`` rules), each round times, in turn (A B C A B C ...):

A. the plan as the gateway runs it, on a flow-like stream: 500 agents, each opening
   connections to its own dozen destinations with Zipf-distributed popularity (repeats
   are answered from the plan's memo of fast-path decisions);
B. the plan with its memo off, on requests that are all different (the cold path: every
   decision walks the indexes);
C. the naive reference evaluator on the same rules and the requests of B.

It reports medians of the rounds' p50/p99 with their spread, and ratios within rounds.
Run: ``python -m tools.bench.policy`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from gatewayd.identity import Identity
from gatewayd.policy import Guard, Request, compile_plan, reference
from gatewayd.policy.documents import PolicyDocument, SourcedDocument
from tools.bench.report import Report, median, percentile

SIZES = (10, 1000, 10_000)
TLDS = ("com", "net", "org", "io", "ai", "dev")
ACTIONS = ("allow",) * 6 + ("deny",) * 3 + ("inspect", "alert", "log-only")


def _host(rng: random.Random) -> str:
    words = ("api", "cdn", "data", "auth", "git", "llm", "files", "ml", "svc", "edge")
    return f"{rng.choice(words)}{rng.randrange(100_000)}.{rng.choice(words)}.{rng.choice(TLDS)}"


def build_documents(n_rules: int, seed: int) -> tuple[list[SourcedDocument], dict[str, Any]]:
    """``n_rules`` rules in policies of at most 100 rules, and the pools requests draw on."""
    rng = random.Random(seed)
    teams = [f"team{i}" for i in range(20)]
    agents = [f"agent{i}" for i in range(500)]
    hosts: list[str] = []
    suffixes: list[str] = []
    nets: list[ipaddress.IPv4Network] = []
    rules: list[dict[str, Any]] = []
    for i in range(n_rules):
        kind = rng.random()
        dest: dict[str, Any] = {}
        if kind < 0.6:
            h = _host(rng)
            hosts.append(h)
            dest["hosts"] = [h]
        elif kind < 0.75:
            s = f"{rng.choice(('svc', 'corp', 'int'))}{rng.randrange(10_000)}.{rng.choice(TLDS)}"
            suffixes.append(s)
            dest["hosts"] = [f"*.{s}"]
        elif kind < 0.9:
            plen = rng.choice((8, 16, 24, 32))
            addr = ipaddress.IPv4Address(rng.randrange(1 << 24, 223 << 24))
            net = ipaddress.IPv4Network(f"{addr}/{plen}", strict=False)
            nets.append(net)
            dest["cidrs"] = [str(net)]
        # else: any destination, scoped by identity below
        port = rng.random()
        if port < 0.6:
            dest["ports"] = [443]
        elif port < 0.7:
            dest["ports"] = [80, 443]
        elif port < 0.8:
            dest["ports"] = ["8000-9000"]
        ident: dict[str, Any] = {}
        who = rng.random()
        if kind >= 0.9 or who < 0.2:
            ident["agent"] = rng.choice(agents)
        elif who < 0.5:
            ident["team"] = rng.choice(teams)
        if rng.random() < 0.3:
            ident["environment"] = rng.choice(("prod", "dev"))
        rule: dict[str, Any] = {"id": f"r{i}", "action": rng.choice(ACTIONS), "identity": ident,
                                "destination": dest}
        extra = rng.random()
        if extra < 0.02:
            rule["l7"] = {"methods": ["POST"], "paths": ["/v1/*"]}
        elif extra < 0.025:
            rule["when"] = "time.hour >= 8 && time.hour < 20"
        if rng.random() < 0.05:
            rule["priority"] = rng.choice((10, 100, 5000))
        rules.append(rule)
    docs = []
    for p in range(0, len(rules), 100):
        raw = {"apiVersion": "clawgress.io/v1", "kind": "Policy",
               "metadata": {"id": f"policy{p // 100}"}, "spec": {"rules": rules[p:p + 100]}}
        docs.append(SourcedDocument(PolicyDocument.model_validate(raw), f"p{p}.yaml", 0))
    pools = {"teams": teams, "agents": agents, "hosts": hosts, "suffixes": suffixes,
             "nets": nets}
    return docs, pools


def build_requests(pools: dict[str, Any], count: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        identity = Identity(rng.choice(pools["agents"]), rng.choice(pools["teams"]), "proj",
                            rng.choice(("prod", "dev")))
        pick = rng.random()
        host: str | None
        if pick < 0.5 and pools["hosts"]:
            host = rng.choice(pools["hosts"])
        elif pick < 0.65 and pools["suffixes"]:
            host = f"x{rng.randrange(99)}.{rng.choice(pools['suffixes'])}"
        else:
            host = _host(rng)
        if rng.random() < 0.3 and pools["nets"]:
            net = rng.choice(pools["nets"])
            ip = net.network_address + rng.randrange(net.num_addresses)
        else:
            ip = ipaddress.IPv4Address(rng.randrange(1 << 24, 223 << 24))
        out.append(Request(identity=identity, host=host, dest_ip=ip,
                           port=rng.choice((443, 443, 443, 80, 8443))))
    return out


def build_flows(pools: dict[str, Any], count: int, seed: int) -> list[Request]:
    """A flow-like stream: each agent keeps going back to its own few destinations."""
    rng = random.Random(seed)
    distinct = build_requests(pools, 12 * len(pools["agents"]), seed + 7)
    weights = [1 / (k + 1) ** 1.1 for k in range(12)]
    per_agent: dict[str, list[Request]] = {}
    for i, agent in enumerate(pools["agents"]):
        team = rng.choice(pools["teams"])
        env = rng.choice(("prod", "dev"))
        identity = Identity(agent, team, "proj", env)
        per_agent[agent] = [
            Request(identity=identity, host=r.host, dest_ip=r.dest_ip, port=r.port)
            for r in distinct[12 * i: 12 * i + 12]
        ]
    agents = pools["agents"]
    return [rng.choices(per_agent[rng.choice(agents)], weights)[0] for _ in range(count)]


def time_calls(fn: Callable[[Request], object], requests: list[Request]) -> list[float]:
    """Per-call latencies in microseconds."""
    clock = time.perf_counter_ns
    out = []
    for r in requests:
        t0 = clock()
        fn(r)
        out.append((clock() - t0) / 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="few rounds and requests (smoke run)")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else 7
    n_plan = 2000 if args.quick else 20_000
    guard = Guard.builtin()
    report = Report("policy")
    now = 1_790_000_000.0
    warm50: dict[int, float] = {}
    cold50: dict[int, float] = {}
    for size in SIZES:
        docs, pools = build_documents(size, seed=size)
        t0 = time.perf_counter()
        plan = compile_plan(docs, bundle_version=1, guard=guard)
        compile_ms = (time.perf_counter() - t0) * 1000
        cold_plan = compile_plan(docs, bundle_version=1, guard=guard, memo_size=0)
        flows = build_flows(pools, n_plan, seed=size + 2)
        requests = build_requests(pools, n_plan, seed=size + 1)
        # The naive evaluator is orders of magnitude slower: give it fewer requests.
        n_ref = max(50, min(n_plan, 2_000_000 // size)) // (4 if args.quick else 1)
        ref_requests = requests[:n_ref]
        for r in requests[:200] + flows[:200]:  # all three agree on what they are timed on
            want = reference.evaluate(docs, r, guard=guard, bundle_version=1, now=now)
            assert plan.evaluate(r, now) == want
            assert cold_plan.evaluate(r, now) == want

        def run_plan(r: Request, plan: Any = plan) -> object:
            return plan.evaluate(r, now)

        def run_cold(r: Request, plan: Any = cold_plan) -> object:
            return plan.evaluate(r, now)

        def run_ref(r: Request, docs: Any = docs) -> object:
            return reference.evaluate(docs, r, guard=guard, bundle_version=1, now=now)

        time_calls(run_plan, flows)  # warm-up: the memo fills as it would in service
        time_calls(run_cold, requests[:1000])
        series: dict[str, list[float]] = {k: [] for k in
                                          ("w50", "w99", "c50", "c99", "r50", "r99", "ratio")}
        for _ in range(rounds):
            a = time_calls(run_plan, flows)
            b = time_calls(run_cold, requests)
            c = time_calls(run_ref, ref_requests)
            series["w50"].append(percentile(a, 50))
            series["w99"].append(percentile(a, 99))
            series["c50"].append(percentile(b, 50))
            series["c99"].append(percentile(b, 99))
            series["r50"].append(percentile(c, 50))
            series["r99"].append(percentile(c, 99))
            series["ratio"].append(percentile(c, 50) / percentile(b, 50))

        def add(name: str, key: str, unit: str = "us", goal: str | None = None,
                series: dict[str, list[float]] = series) -> float:
            values = series[key]
            report.add(name, median(values), unit, goal, (min(values), max(values)))
            return median(values)

        big = size == 10_000
        warm50[size] = add(f"plan_p50_us_{size}_rules", "w50", goal="<= 5" if big else None)
        add(f"plan_p99_us_{size}_rules", "w99")
        cold50[size] = add(f"plan_cold_p50_us_{size}_rules", "c50")
        add(f"plan_cold_p99_us_{size}_rules", "c99")
        add(f"reference_p50_us_{size}_rules", "r50")
        add(f"reference_p99_us_{size}_rules", "r99")
        add(f"plan_cold_speedup_p50_vs_reference_{size}_rules", "ratio", "x",
            ">= 100" if big else None)
        report.add(f"compile_ms_{size}_rules", compile_ms, "ms")
    report.add("plan_p50_growth_10_to_10000_rules", warm50[10_000] / warm50[10], "x", "<= 2")
    report.add("plan_cold_p50_growth_10_to_10000_rules", cold50[10_000] / cold50[10], "x")
    report.notes.append(
        f"{rounds} interleaved rounds (plan on flows, cold plan, reference); {n_plan} requests"
        " per round for the plan, fewer for the reference at large sizes; per-call"
        " perf_counter_ns timing"
    )
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
