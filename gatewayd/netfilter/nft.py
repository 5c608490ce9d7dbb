"""The two ways Clawgress talks to netfilter: libnftables and the iptables-nft tools.

A libnftables context binds its netlink socket to the network namespace of the thread that
creates it, so every call here makes a fresh one: the caller's namespace is the one changed.
Errors come back as ``NetfilterError`` carrying the tool's own first lines.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gatewayd.netfilter.errors import NetfilterError

LIBNFTABLES = "libnftables.so.1"
# How long an iptables call may take before it counts as failed (it waits for the xtables
# lock with -w).
XTABLES_TIMEOUT_S = 30.0
# How many lines of a tool's error output a NetfilterError carries.
ERROR_LINES = 3
# Capability numbers (linux/capability.h).
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

_NFT_LOCATION = re.compile(r"^(?P<where>\S+?):(?P<line>\d+):\d+(?:-\d+)?: (?P<message>Error: .*)$")


def has_capability(cap: int) -> bool:
    """Whether the calling thread has ``cap`` in its effective set."""
    try:
        status = Path("/proc/thread-self/status").read_text(encoding="ascii")
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def _context() -> Any:
    # Without the capability libnftables prints to stderr itself before failing; refuse here.
    if not has_capability(CAP_NET_ADMIN):
        raise NetfilterError("nft needs CAP_NET_ADMIN (run it as root)")
    try:
        import nftables  # noqa: PLC0415 - the distribution's bindings; optional until used
    except ImportError:
        raise NetfilterError(
            "the nftables Python bindings (python3-nftables) are not importable"
        ) from None
    try:
        return nftables.Nftables(sofile=LIBNFTABLES)
    except OSError as exc:
        raise NetfilterError(f"libnftables cannot be loaded: {exc}") from None


def bindings_available() -> tuple[bool, str]:
    """Whether the nftables Python bindings import and libnftables loads (no kernel call)."""
    try:
        import nftables  # noqa: F401, PLC0415
    except ImportError:
        return False, "the nftables Python bindings (python3-nftables) are not importable"
    try:
        ctypes.CDLL(LIBNFTABLES)
    except OSError as exc:
        return False, f"libnftables cannot be loaded: {exc}"
    return True, "ok"


def nft(commands: str, *, json_output: bool = False, dry_run: bool = False) -> str:
    """Run nft ``commands`` as one transaction in the calling thread's network namespace."""
    ctx = _context()
    ctx.set_json_output(json_output)
    ctx.set_dry_run(dry_run)
    if "\n" not in commands.rstrip("\n"):
        rc, output, error = ctx.cmd(commands)
    else:
        # A batch goes through a file: libnftables then reports errors with the right line
        # (from a buffer it shows the first line whatever the error's).
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".nft") as batch:
            batch.write(commands)
            batch.flush()
            rc, output, error = ctx.cmd_from_file(batch.name)
    if rc != 0:
        raise NetfilterError(f"nft: {nft_error_summary(error, commands)}")
    return str(output)


def nft_error_summary(error: str, commands: str) -> str:
    """The first error lines of libnftables output on one line, each with its source line."""
    source = commands.splitlines()
    parts: list[str] = []
    for line in error.splitlines():
        m = _NFT_LOCATION.match(line.strip())
        if not m:
            continue
        number = int(m.group("line"))
        text = source[number - 1].strip() if 0 < number <= len(source) else ""
        parts.append(f"line {number}: {m.group('message')}" + (f" [{text}]" if text else ""))
        if len(parts) == ERROR_LINES:
            break
    if not parts:
        lines = [ln.strip() for ln in error.splitlines()]
        parts = [ln for ln in lines if ln.strip("^ ")][:ERROR_LINES]
    return "; ".join(parts) or "failed without a message"


def tool_path(name: str) -> str | None:
    """The executable ``name`` on PATH or in the sbin directories."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def run_tool(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell) and return the result without judging its exit code."""
    path = tool_path(argv[0])
    if path is None:
        raise NetfilterError(f"{argv[0]} is not installed")
    try:
        return subprocess.run(  # noqa: S603 - argument list from our own rules, no shell
            [path, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=XTABLES_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NetfilterError(f"{argv[0]} did not finish in {XTABLES_TIMEOUT_S:.0f}s") from None
    except OSError as exc:
        raise NetfilterError(f"{argv[0]}: {exc.strerror}") from None


def check_tool(argv: Sequence[str]) -> str:
    """Run ``argv``; its stdout, or a ``NetfilterError`` with the first error lines."""
    done = run_tool(argv)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        detail = "; ".join(lines[:ERROR_LINES]) or f"exit code {done.returncode}"
        raise NetfilterError(f"{' '.join(argv[:1])}: {detail}")
    return done.stdout
