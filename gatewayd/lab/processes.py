"""Processes of the lab: starting them in a namespace, telling whether they live, ending them.

A process is known by its pid and its start time from ``/proc/PID/stat``: a pid the
kernel handed to someone else since is never signalled. Which sockets a namespace listens
on and which NFQUEUEs are bound there are read from ``/proc/PID/net/...`` of a process in
it, so readiness needs no cooperation from the process. The parsers are pure; the rest is
the IO shell.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from gatewayd.lab.errors import LabError
from gatewayd.lab.state import ProcessRecord

NETNS_RUN_DIR = Path("/run/netns")
PROC = Path("/proc")
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
# What is searched besides $PATH for the system tools (sudo and cron often drop sbin).
_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def tool(name: str) -> str:
    """The absolute path of a system tool; ``LabError`` naming its package if missing."""
    found = shutil.which(name) or next(
        (f"{d}/{name}" for d in _SBIN if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if found is None:
        raise LabError(f"{name} is not installed (tools/setup.sh installs what the lab needs)")
    return found


def run(argv: Sequence[str], what: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion; ``LabError`` with its last stderr line if it fails."""
    try:
        done = subprocess.run(  # noqa: S603 - an argument list built by the lab, no shell
            list(argv), capture_output=True, text=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{what}: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        raise LabError(f"{what} failed: {reason}")
    return done


# --- /proc parsers (pure) -------------------------------------------------------------------


def parse_stat(text: str) -> tuple[str, int]:
    """``/proc/PID/stat`` → (state letter, start time in clock ticks)."""
    # The command name (field 2) is in parentheses and may itself contain ") ".
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


def listening_ports(text: str, udp: bool) -> set[int]:
    """Local ports of listening TCP sockets (bound UDP sockets with ``udp``) in the text
    of ``/proc/net/tcp``, ``tcp6``, ``udp`` or ``udp6``."""
    want = _UDP_UNCONNECTED if udp else _TCP_LISTEN
    ports = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == want:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def bound_queues(text: str) -> set[int]:
    """Queue numbers in the text of ``/proc/net/netfilter/nfnetlink_queue``."""
    return {int(line.split()[0]) for line in text.splitlines() if line.split()}


# --- processes ------------------------------------------------------------------------------


def stat(pid: int) -> tuple[str, int] | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie), and is the process that started at
    ``start_time`` when one is given."""
    found = stat(pid)
    if found is None:
        return False
    state, started = found
    if start_time is not None and started != start_time:
        return False
    if state in ("Z", "X"):
        reap(pid)
        return False
    return True


def spawn(
    name: str, argv: Sequence[str], namespace: str, log_path: Path, env: Mapping[str, str]
) -> ProcessRecord:
    """Start ``argv`` (already wrapped for its namespace) in a new session, stdin from
    /dev/null, stdout and stderr appended to ``log_path``."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = os.posix_spawn(
            argv[0], list(argv), dict(env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null_fd, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    except OSError as exc:
        raise LabError(f"cannot start {name} ({argv[0]}): {exc.strerror or exc}") from None
    finally:
        os.close(log_fd)
        os.close(null_fd)
    found = stat(pid)
    return ProcessRecord(name, namespace, pid, found[1] if found else 0)


def terminate(
    targets: Iterable[tuple[int, int | None]],
    sig: int = signal.SIGTERM,
    timeout: float = 3.0,
) -> list[int]:
    """Send ``sig`` to each living ``(pid, start_time)``, wait up to ``timeout`` for them to
    end, then SIGKILL what is left. Returns the pids still alive after all that."""
    own = os.getpid()
    living = [(p, t) for p, t in targets if p not in (own, 1) and alive(p, t)]
    for signum, wait in ((sig, timeout), (signal.SIGKILL, 2.0)):
        for pid, started in living:
            if alive(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        wait_until(functools.partial(_none_alive, list(living)), wait)
        living = [(p, t) for p, t in living if alive(p, t)]
        if not living or signum == signal.SIGKILL:
            break
    return [p for p, _ in living]


def _none_alive(targets: list[tuple[int, int | None]]) -> bool:
    return not any(alive(p, t) for p, t in targets)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pids_in_namespaces(names: Iterable[str]) -> dict[str, list[int]]:
    """Named network namespace → the pids of the processes in it (``ip netns pids``)."""
    by_inode: dict[tuple[int, int], str] = {}
    for name in names:
        with contextlib.suppress(OSError):
            st = os.stat(NETNS_RUN_DIR / name)
            by_inode[(st.st_dev, st.st_ino)] = name
    found: dict[str, list[int]] = {name: [] for name in by_inode.values()}
    if not by_inode:
        return found
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"{entry.path}/ns/net")
        except OSError:
            continue
        ns = by_inode.get((st.st_dev, st.st_ino))
        if ns is not None:
            found[ns].append(int(entry.name))
    return found


def namespace_listens(pid: int, port: int, udp: bool = False) -> bool:
    """Whether the namespace of ``pid`` listens on ``port`` over both IPv4 and IPv6."""
    names = ("udp", "udp6") if udp else ("tcp", "tcp6")
    try:
        tables = [(PROC / str(pid) / "net" / name).read_text() for name in names]
    except OSError:
        return False
    return all(port in listening_ports(table, udp) for table in tables)


def namespace_queues(pid: int) -> set[int]:
    """NFQUEUE numbers bound in the namespace of ``pid``."""
    try:
        return bound_queues((PROC / str(pid) / "net/netfilter/nfnetlink_queue").read_text())
    except OSError:
        return set()


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
