"""Bringing the lab up and down, also after crashes, through the API and the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lab_support import MakeLab, assert_gone, lab_pids, owned_namespaces, unique_prefix

from gatewayd.lab import Lab, LabError
from gatewayd.lab import processes as lab_processes
from gatewayd.lab import topology as lab_topology


def test_down_removes_everything_and_is_idempotent(make_lab: MakeLab) -> None:
    lab = make_lab(agents=3).up(engine=False)
    pids = lab_pids(lab)
    assert len(pids) >= 2
    assert owned_namespaces(lab.plan) == sorted(lab.plan.namespaces)
    # resolv.conf for the agents and the gateway (its explicit proxy resolves names).
    assert lab_topology.etc_netns_entries(lab.plan) == sorted(
        [*lab.plan.agent_namespaces, lab.plan.gateway_ns])
    lab.down()
    assert_gone(lab.plan, lab.state_dir, pids)
    lab.down()
    Lab.attach(lab.state_dir, lab.prefix).down()


def test_state_files_and_key_modes(make_lab: MakeLab) -> None:
    lab = make_lab(agents=1, fail_mode="fail-open").up(engine=False)
    for secret in (lab.paths.ca_key, lab.paths.upstream_key, lab.signing_key):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    assert lab.ca_bundle.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "fail_mode: fail-open" in lab.config_path.read_text()
    assert Lab.attach(lab.state_dir).fail_mode == "fail-open"


def test_a_second_up_is_refused_and_replace_rebuilds(make_lab: MakeLab) -> None:
    lab = make_lab(agents=1).up(engine=False)
    first = lab_pids(lab)
    again = Lab(lab.prefix, lab.state_dir, agents=1)
    with pytest.raises(LabError, match="already up"):
        again.up(engine=False)
    assert lab.status()["up"] is True  # the refused up did not touch the running lab
    again.up(engine=False, replace=True)
    assert not any(lab_processes.alive(p) for p in first)
    assert again.status()["up"] is True


def test_a_failed_up_removes_what_it_made(make_lab: MakeLab) -> None:
    # The upstream cannot start: `python` is a program that exits at once.
    lab = make_lab(agents=1, python=shutil.which("false"))
    with pytest.raises(LabError, match="upstream exited at start"):
        lab.up(engine=False)
    assert_gone(lab.plan, lab.state_dir, [])


def test_the_context_manager_always_takes_the_lab_down(make_lab: MakeLab) -> None:
    lab = make_lab(agents=1)
    pids: list[int] = []

    def body() -> None:
        with lab:
            lab.up(engine=False)
            pids.extend(lab_pids(lab))
            raise RuntimeError("the test body failed")

    with pytest.raises(RuntimeError):
        body()
    assert pids
    assert_gone(lab.plan, lab.state_dir, pids)


# Where `up` dies: after the namespaces exist (no links yet), or after the DNS server and
# the upstream were started (namespaces, links, processes, a record with their pids).
CRASH_AT = {
    "links": ("gatewayd.lab.topology", None, "build_links"),
    "processes": ("gatewayd.lab.lab", "Lab", "_wait_ready"),
}


@pytest.mark.parametrize("point", sorted(CRASH_AT))
def test_down_after_up_was_killed_half_way(make_lab: MakeLab, point: str) -> None:
    lab = make_lab(agents=2)
    module, holder, attr = CRASH_AT[point]
    code = textwrap.dedent(f"""
        import importlib, os, signal
        from gatewayd.lab import Lab
        target = importlib.import_module({module!r})
        if {holder!r}:
            target = getattr(target, {holder!r})
        def crash(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        setattr(target, {attr!r}, crash)
        Lab({lab.prefix!r}, {str(lab.state_dir)!r}, agents=2).up(engine=False)
    """)
    done = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL
    assert owned_namespaces(lab.plan) == sorted(lab.plan.namespaces)
    pids = lab_pids(lab)
    if point == "processes":
        assert len(pids) >= 2, "the crash should have left the servers running"
    Lab.attach(lab.state_dir).down()
    assert_gone(lab.plan, lab.state_dir, pids)


def test_down_when_the_state_dir_is_gone(make_lab: MakeLab) -> None:
    lab = make_lab(agents=2).up(engine=False)
    pids = lab_pids(lab)
    shutil.rmtree(lab.state_dir)
    # Only the prefix is known now: processes are found in the lab's namespaces.
    Lab.attach(lab.state_dir, lab.prefix).down()
    assert_gone(lab.plan, lab.state_dir, pids)


def test_down_finds_the_agents_of_a_bigger_lab(make_lab: MakeLab) -> None:
    big = make_lab(agents=4).up(engine=False)
    pids = lab_pids(big)
    shutil.rmtree(big.state_dir)
    Lab(big.prefix, big.state_dir, agents=1).down()
    assert_gone(big.plan, big.state_dir, pids)


def test_the_cli(tmp_path: Path) -> None:
    prefix = unique_prefix()
    state = tmp_path / "state"

    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gatewayd", "lab", *args],
                              capture_output=True, text=True, timeout=120, check=False)

    try:
        up = lab("up", "--no-engine", "--prefix", prefix, "--state", str(state), "--agents", "2")
        assert up.returncode == 0, up.stderr
        assert f"{prefix} is up" in up.stdout
        again = lab("up", "--no-engine", "--prefix", prefix, "--state", str(state))
        assert again.returncode == 2
        assert again.stderr.startswith("error: a lab is already up here")

        status = lab("status", "--json", "--state", str(state))
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["up"] is True
        assert report["prefix"] == prefix
        assert [n["name"] for n in report["namespaces"]] == [
            f"{prefix}-gw", f"{prefix}-up", f"{prefix}-a1", f"{prefix}-a2"]
        assert all(p["alive"] for p in report["processes"])
        assert report["engine"]["alive"] is False
        assert report["config"] == str(state / "gateway.yaml")
        pids = [p["pid"] for p in report["processes"]]

        text = lab("status", "--state", str(state))
        assert "10.77.0.12/24" in text.stdout

        served = lab("exec", "--state", str(state), f"{prefix}-a2", "--",
                     "curl", "-sS", "https://raw.githubusercontent.com/")
        assert served.returncode == 0, served.stderr
        assert json.loads(served.stdout)["client"] == "fd77::12"
        assert lab("exec", "--state", str(state), "a1", "--", "sh", "-c", "exit 3").returncode == 3

        down = lab("down", "--state", str(state))
        assert down.returncode == 0, down.stderr
        assert f"lab {prefix} is down" in down.stdout
        after = json.loads(lab("status", "--json", "--state", str(state),
                               "--prefix", prefix).stdout)
        assert after["up"] is False
        assert not any(n["present"] for n in after["namespaces"])
        assert_gone(Lab(prefix, state).plan, state, pids)
    finally:
        Lab(prefix, state).down()


@pytest.mark.parametrize("fail_mode", ["fail-closed", "fail-open"])
def test_rules_without_an_engine_follow_the_fail_mode(make_lab: MakeLab, fail_mode: str) -> None:
    lab = make_lab(agents=1, fail_mode=fail_mode).up(engine=False)
    lab.apply_rules()
    table = lab.exec("gw", ["nft", "list", "table", "inet", "clawgress"],
                     capture_output=True, text=True, check=False)
    assert table.returncode == 0, table.stderr
    # By address: on fail-closed, DNS to the lab server is refused as well.
    address = lab.addresses["example.com"].v4
    done = lab.exec("a1", ["curl", "-sS", "--max-time", "5", f"http://{address}/"],
                    capture_output=True, text=True, check=False)
    if fail_mode == "fail-open":
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 7, done.stderr  # refused at once, not a time-out (28)
