"""``clawgress rules`` and ``clawgress doctor`` against a real gateway namespace."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from netfilter_support import iptables_rules, probed_backend
from nsutil import WORKLOAD_IFACE, Lab

from gatewayd.cli import cli

pytestmark = pytest.mark.netns

Run = Callable[..., Result]


@pytest.fixture
def run(gateway_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(*args, backend=...)``: the CLI inside the gateway namespace, on the lab config."""
    monkeypatch.delenv("CLAWGRESS_CONFIG", raising=False)

    def invoke(*args: str, backend: str = "auto", fail_mode: str = "fail-closed") -> Result:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            f"workload:\n  interfaces:\n    - name: {WORKLOAD_IFACE}\n"
            "      subnets: ['10.77.1.0/24', 'fd77:1::/64']\n      environment: lab\n"
            f"environments:\n  lab: {{fail_mode: {fail_mode}}}\n"
            f"dataplane: {{queue_backend: {backend}}}\n",
            encoding="utf-8",
        )
        with gateway_lab.gateway.entered():
            return CliRunner().invoke(cli, ["--config", str(config), *args])

    return invoke


def test_apply_show_flush(run: Run, gateway_lab: Lab) -> None:
    backend = probed_backend(gateway_lab.gateway)
    applied = run("rules", "apply")
    assert applied.exit_code == 0, applied.output
    m = re.match(r"applied table inet clawgress: backend (\w+), digest (\w{16})\n", applied.stdout)
    assert m is not None
    assert m.group(1) == backend
    shown = run("rules", "show")
    assert shown.exit_code == 0
    assert f'comment "clawgress {m.group(2)}"' in shown.stdout
    assert shown.stdout.count("# iptables-nft") == (2 if backend == "xtables" else 0)
    flushed = run("rules", "flush")
    expected_rules = 4 if backend == "xtables" else 0
    assert flushed.stdout == (
        f"removed table inet clawgress; removed {expected_rules} xtables rule(s)\n"
    )
    listed = gateway_lab.gateway.nft("list", "table", "inet", "clawgress", check=False)
    assert listed.returncode != 0
    assert iptables_rules(gateway_lab.gateway) == []


def test_show_without_table_is_a_one_line_error(run: Run) -> None:
    result = run("rules", "show")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: table inet clawgress is not loaded (clawgress rules apply loads it)\n"
    )


def test_forcing_native_follows_the_kernel(run: Run, gateway_lab: Lab) -> None:
    result = run("rules", "apply", "--json", backend="native")
    if probed_backend(gateway_lab.gateway) == "native":
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["backend"] == "native"
        return
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: dataplane.queue_backend is native but the kernel refuses")


def test_doctor_reports_backend_table_fail_modes_forwarding_queues(
    run: Run, gateway_lab: Lab
) -> None:
    backend = probed_backend(gateway_lab.gateway)
    assert run("rules", "apply").exit_code == 0
    result = run("doctor", "--json")
    assert result.exit_code == 1, result.output  # no engine listens: that is a problem
    report = json.loads(result.stdout)
    assert report["queue_backend"]["in_use"] == backend
    assert report["queue_backend"]["configured"] == "auto"
    assert report["table"]["present"] is True
    assert report["table"]["matches_render"] is True, report["table"]
    assert report["table"]["differences"] == []
    assert report["xtables_rules"]["missing"] == []
    assert report["xtables_rules"]["stray"] == []
    assert report["interfaces"] == [
        {"name": WORKLOAD_IFACE, "environment": "lab", "fail_mode": "fail-closed"}
    ]
    assert report["forwarding"] == {
        "net.ipv4.ip_forward": "1",
        "net.ipv6.conf.all.forwarding": "1",
    }
    assert [(q["role"], q["queue"], q["bound"]) for q in report["queues"]] == [
        ("verdict", 0, False),
        ("reset", 1, False),
    ]
    assert report["problems"] == [
        "verdict queue 0 has no listener (engine not running)",
        "reset queue 1 has no listener (engine not running)",
    ]
    assert report["python_modules"] == {"nftables": "ok", "netfilterqueue": "ok", "pyroute2": "ok"}
    # The L7 engine's divert: tproxy accepted, the policy routing added by rules apply.
    assert report["l7"]["tproxy"]["available"] is True
    assert report["l7"]["divert_routes"] is True
    assert report["l7"]["bridge_netfilter"] is None


def test_doctor_sees_a_hand_edited_table_and_another_config(run: Run, gateway_lab: Lab) -> None:
    assert run("rules", "apply").exit_code == 0
    gateway_lab.gateway.nft("flush", "chain", "inet", "clawgress", "antispoof")
    report = json.loads(run("doctor", "--json", fail_mode="fail-open").stdout)
    assert report["table"]["matches_render"] is False
    assert report["table"]["live_digest"] != report["table"]["render_digest"]
    assert report["table"]["differences"] == [
        "set fail_closed_ifaces: elements changed",
        "chain antispoof: rule 1 (\"spoofed source\") removed",
        "chain antispoof: rule 2 (\"spoofed source\") removed",
    ]
    assert any("rendered from another configuration" in p for p in report["problems"])


def test_doctor_text_output(run: Run) -> None:
    result = run("doctor")
    assert result.exit_code == 1
    out = result.stdout
    assert out.startswith("queue backend: ")
    assert "table inet clawgress: not loaded" in out
    assert f"  {WORKLOAD_IFACE}: environment lab, fail-closed" in out
    assert "  - table inet clawgress is not loaded (clawgress rules apply)" in out
