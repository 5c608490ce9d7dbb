from __future__ import annotations

from gatewayd.identity import Identity, Lease, LeaseTable
from gatewayd.netfilter.marks import Marks
from gatewayd.policy import Guard, Plan, compile_plan, parse_documents

NOW = 1_800_000_000.0
MARKS = Marks(20)
RESEARCH = Identity("bot-1", "research", "alpha", "prod")
OPS = Identity("bot-2", "ops", "infra", "dev")

POLICY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: lab}
spec:
  rules:
    - {id: api, action: allow, identity: {team: research},
       destination: {cidrs: [10.78.0.10/32, "fd78::10/128"], ports: [443]}}
    - {id: paste, action: deny, destination: {cidrs: [10.78.0.12/32]}}
    - {id: scan, action: inspect, destination: {cidrs: [10.78.0.13/32]}}
    - {id: dns, action: allow, destination: {cidrs: [10.78.0.53/32], ports: [53],
       protocol: udp}}
    - {id: next, action: deny, enforcement_mode: report, priority: 1,
       destination: {cidrs: [10.78.0.10/32]}}
"""


def plan(text: str = POLICY) -> Plan:
    return compile_plan(parse_documents({"lab.yaml": text}), bundle_version=4,
                        guard=Guard.builtin())


def leases(*entries: tuple[str, str, Identity], now: float = NOW) -> LeaseTable:
    pairs = [
        (Lease(i, ip, iface, ident.agent_id, now - 10, now + 3600), ident)
        for i, (ip, iface, ident) in enumerate(entries, 1)
    ]
    return LeaseTable.build(pairs, generation=1, now=now)
