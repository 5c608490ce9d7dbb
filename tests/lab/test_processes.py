from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from gatewayd.lab import LabError
from gatewayd.lab.processes import (
    alive,
    bound_queues,
    listening_ports,
    log_tail,
    parse_stat,
    pids_in_namespaces,
    run,
    spawn,
    stat,
    terminate,
    tool,
    wait_until,
)

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0B004D0A:A0C4 0A004E0A:0050 01 00000000:00000000 00:00000000 00000000     0        0 3 1
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000
"""
UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
  1: 354E0A0A:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9 2
  2: 0100007F:1F90 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 9 2
"""
QUEUES = """\
    0  12345     0 2 65531     0     0        0  1
    1  12346     3 2 65531     0     0       17  1
"""


def test_parse_stat_survives_odd_command_names() -> None:
    fields = " ".join(["S", *[str(n) for n in range(18)], "777", "0"])
    assert parse_stat(f"42 (a) b) {fields}") == ("S", 777)
    assert parse_stat(f"42 (plain) {fields}") == ("S", 777)


def test_listening_ports() -> None:
    assert listening_ports(TCP, udp=False) == {80, 443}
    assert listening_ports(TCP6, udp=False) == {80}
    assert listening_ports(UDP, udp=True) == {53}
    assert listening_ports(UDP, udp=False) == set()
    assert listening_ports("", udp=False) == set()


def test_bound_queues() -> None:
    assert bound_queues(QUEUES) == {0, 1}
    assert bound_queues("") == set()


def test_own_process_is_alive_and_a_wrong_start_time_is_not() -> None:
    found = stat(os.getpid())
    assert found is not None
    assert alive(os.getpid(), found[1])
    assert not alive(os.getpid(), found[1] + 1)
    assert not alive(2**22 + 12345)  # above pid_max: never a process


def test_spawn_and_terminate(tmp_path: Path) -> None:
    log = tmp_path / "sleeper.log"
    code = "import sys, time; print('started', flush=True); time.sleep(60)"
    record = spawn("sleeper", [sys.executable, "-c", code], "none", log, os.environ)
    assert record.pid > 1
    assert record.start_time > 0
    assert alive(record.pid, record.start_time)
    assert wait_until(lambda: "started" in log.read_text(), 10)
    assert log_tail(log) == "started"
    assert terminate([(record.pid, record.start_time)]) == []
    assert not alive(record.pid, record.start_time)


def test_terminate_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " print('ready', flush=True); time.sleep(60)")
    log = tmp_path / "stubborn.log"
    record = spawn("stubborn", [sys.executable, "-c", code], "none", log, os.environ)
    assert wait_until(lambda: "ready" in log.read_text(), 10)
    assert terminate([(record.pid, record.start_time)], signal.SIGTERM, timeout=0.2) == []
    assert not alive(record.pid)


def test_terminate_leaves_a_reused_pid_alone() -> None:
    found = stat(os.getpid())
    assert found is not None
    # Our own pid with another start time is "someone else's process": not signalled.
    assert terminate([(os.getpid(), found[1] + 1)]) == []


def test_spawning_something_missing_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot start"):
        spawn("x", [str(tmp_path / "missing")], "none", tmp_path / "x.log", os.environ)


def test_run_reports_the_last_stderr_line() -> None:
    code = "import sys; sys.stderr.write('one\\ntwo: broken\\n'); sys.exit(3)"
    with pytest.raises(LabError, match="doing it failed: two: broken"):
        run([sys.executable, "-c", code], "doing it")
    assert run([sys.executable, "-c", "print('ok')"], "x").stdout == "ok\n"


def test_missing_tools_name_the_set_up_script() -> None:
    with pytest.raises(LabError, match=r"tools/setup\.sh"):
        tool("clawgress-no-such-tool")
    assert tool("sh").endswith("/sh")


def test_no_namespaces_no_pids() -> None:
    assert pids_in_namespaces([]) == {}
    assert pids_in_namespaces(["clawgress-unit-no-such-namespace"]) == {}


def test_log_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert log_tail(tmp_path / "missing.log") == ""
