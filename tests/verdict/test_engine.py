"""The engine's packet callbacks, with a fake queued packet (no kernel needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP  # type: ignore[import-untyped]

from gatewayd.config import parse_config
from gatewayd.netfilter.marks import State
from gatewayd.packets import parse_packet
from gatewayd.verdict import Decider
from gatewayd.verdict.engine import VerdictEngine

from .conftest import MARKS, NOW, RESEARCH, leases, plan


class FakePacket:
    """What NetfilterQueue hands the engine, as far as the engine uses it."""

    def __init__(self, payload: bytes, mark: int = 0, indev: int = 7) -> None:
        self.payload, self.mark, self.indev = payload, mark, indev
        self.verdict: str | None = None

    def get_payload(self) -> bytes:
        return self.payload

    def set_payload(self, payload: bytes) -> None:
        self.payload = payload

    def get_mark(self) -> int:
        return self.mark

    def set_mark(self, mark: int) -> None:
        self.mark = mark

    def accept(self) -> None:
        assert self.verdict is None, "a second verdict"
        self.verdict = "accept"

    def drop(self) -> None:
        assert self.verdict is None, "a second verdict"
        self.verdict = "drop"


@pytest.fixture
def engine(tmp_path: Path) -> VerdictEngine:
    config = parse_config(
        f"store: {{path: {tmp_path}/store.db}}\naudit: {{path: {tmp_path}/audit.log}}\n", "t")
    e = VerdictEngine(config, manage_rules=False)
    e.decider = Decider(plan=plan(), leases=leases(("10.77.0.11", "wl0", RESEARCH)),
                        marks=MARKS, interfaces={7: "wl0"}, gateway="gw")
    return e


def audit(engine: VerdictEngine) -> list[dict[str, object]]:
    engine.audit.flush()
    return [json.loads(line) for line in engine.audit.path.read_text().splitlines()]


def syn(dst: str = "10.78.0.10", port: int = 443) -> bytes:
    return bytes(IP(src="10.77.0.11", dst=dst) / TCP(sport=40000, dport=port, flags="S"))


def test_a_packet_is_stamped_accepted_and_audited(engine: VerdictEngine) -> None:
    pkt = FakePacket(syn())
    engine.on_packet(pkt)
    assert pkt.verdict == "accept"
    assert MARKS.state_of(pkt.mark) is State.ALLOW and MARKS.is_stamped(pkt.mark)
    (event,) = audit(engine)
    assert (event["kind"], event["rule_id"], event["agent_id"]) == ("flow.verdict", "api",
                                                                    "bot-1")
    assert engine.counters["verdict_allow"] == 1


def test_a_failure_to_decide_denies_and_is_audited(engine: VerdictEngine) -> None:
    class Broken(Decider):
        def decide(self, payload: bytes, mark: int, indev: int, now: float):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    assert engine.decider is not None
    d = engine.decider
    engine.decider = Broken(plan=d.plan, leases=d.leases, marks=d.marks,
                            interfaces=d.interfaces, gateway="gw")
    pkt = FakePacket(syn(), mark=0x3)
    engine.on_packet(pkt)
    assert pkt.verdict == "accept"
    assert MARKS.state_of(pkt.mark) is State.DENY and pkt.mark & 0xF == 0x3
    (event,) = audit(engine)
    assert event["flags"] == ["engine-error"] and "RuntimeError" in str(event["reason"])
    assert engine.counters["verdict_failed"] == 1


def test_a_reply_of_a_denied_flow_leaves_as_a_reset(engine: VerdictEngine) -> None:
    reply = bytes(IP(src="10.78.0.10", dst="10.77.0.11")
                  / TCP(sport=443, dport=40000, flags="PA", seq=1000, ack=2000) / b"data")
    pkt = FakePacket(reply, mark=MARKS.reset_bit)
    engine.on_reset(pkt)
    assert pkt.verdict == "accept" and MARKS.is_stamped(pkt.mark)
    out = parse_packet(pkt.payload)
    assert out.tcp_flags & 0x04 and out.seq == 1000 and out.dport == 40000
    garbage = FakePacket(b"\x00\x01")
    engine.on_reset(garbage)
    assert garbage.verdict == "drop"
    assert engine.counters["resets_sent"] == 1 and engine.counters["resets_dropped"] == 1


def test_quarantine_by_a_rule_flags_the_agent_once(engine: VerdictEngine) -> None:
    engine.registry.add_agent("bot-1", team_id="research", project_id="alpha",
                              environment="prod", now=NOW)
    text = ("apiVersion: clawgress.io/v1\nkind: Policy\nmetadata: {id: q}\n"
            "spec: {rules: [{id: paste, action: quarantine, reason: exfil channel,"
            " destination: {cidrs: [10.78.0.13/32]}}]}\n")
    assert engine.decider is not None
    d = engine.decider
    engine.decider = Decider(plan=plan(text), leases=d.leases, marks=d.marks,
                             interfaces=d.interfaces, gateway="gw")
    pkt = FakePacket(syn("10.78.0.13", 80))
    engine.on_packet(pkt)
    assert MARKS.state_of(pkt.mark) is State.DENY
    held = engine.registry.quarantines()["bot-1"]
    assert held.reason == "rule q/paste: exfil channel"
    kinds = [e["kind"] for e in audit(engine)]
    assert kinds == ["flow.verdict", "agent.quarantined"]


def test_a_pending_flow_whose_client_hello_never_came_is_recorded_abandoned(
    engine: VerdictEngine,
) -> None:
    engine.config = parse_config(
        "workload: {interfaces: [{name: wl0, subnets: [10.77.0.0/24]}]}\n"
        f"store: {{path: {engine.config.store.path}}}\naudit: {{path: {engine.audit.path}}}\n",
        "t")
    hellos = engine.observed.hellos
    hellos.start((bytes([10, 77, 0, 11]), 40000, bytes([10, 78, 0, 10]), 443), 1000, NOW)
    engine.expire(NOW + 5)
    assert audit(engine) == []  # still waiting
    engine.expire(NOW + hellos.idle_s + 1)
    (event,) = audit(engine)
    assert (event["kind"], event["src_ip"], event["dst_port"], event["agent_id"]) == (
        "flow.abandoned", "10.77.0.11", 443, "bot-1")
    assert "no ClientHello" in str(event["reason"])
    assert engine.counters["pending_abandoned"] == 1
