"""The lab with the real ruleset and verdict engine: start, stop under the fail mode, restart."""

from __future__ import annotations

import signal

from lab_support import MakeLab

from gatewayd.lab import Lab


def curl_by_address(lab: Lab) -> int:
    address = lab.addresses["example.com"].v4
    done = lab.exec("a1", ["curl", "-sS", "--max-time", "5", f"http://{address}/"],
                    capture_output=True, text=True, check=False)
    return done.returncode


def test_engine_lifecycle(make_lab: MakeLab) -> None:
    lab = make_lab(agents=1, fail_mode="fail-closed").up(engine=True)
    assert lab.engine_alive()
    engine = lab.status()["engine"]
    assert engine["alive"] is True
    assert {0, 1} <= set(engine["queues"])  # the configured queue and reset queue
    table = lab.exec("gw", ["nft", "list", "table", "inet", "clawgress"],
                     capture_output=True, text=True, check=False)
    assert table.returncode == 0, table.stderr

    # Killed: the ruleset stays, and fail-closed refuses new flows at once.
    assert lab.stop_engine(signal.SIGKILL) is True
    assert not lab.engine_alive()
    assert lab.status()["engine"]["queues"] == []
    assert curl_by_address(lab) == 7

    pid = lab.start_engine()
    assert lab.engine_alive()
    assert lab.engine_pid() == pid
    assert lab.stop_engine() is True  # SIGTERM: a clean stop
    assert lab.stop_engine() is False
    assert lab.paths.log("engine").exists()
