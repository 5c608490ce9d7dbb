"""What a render looks like once the kernel has it, learned in a throwaway namespace.

``expected_snapshot(ruleset)`` runs this module as a child process. The child first moves
itself into a new, empty network namespace (``unshare(CLONE_NEWNET)``; it refuses to go on
if that fails), loads the ruleset there, prints the normalized snapshot and exits, and the
namespace goes with it. The host is never touched. ``clawgress doctor`` compares the live
table with this, so a hand-edited table shows up even without a baseline.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

from gatewayd.netfilter.apply import show_json
from gatewayd.netfilter.drift import Snapshot
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.nft import nft
from gatewayd.netfilter.render import TABLE, Ruleset

SCRATCH_MODULE = "gatewayd.netfilter.scratch"
SCRATCH_TIMEOUT_S = 60.0
CLONE_NEWNET = 0x40000000


def expected_snapshot(ruleset: Ruleset) -> Snapshot:
    """The normalized table ``ruleset.nft`` becomes in a fresh namespace."""
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", SCRATCH_MODULE],
            input=ruleset.nft,
            capture_output=True,
            text=True,
            timeout=SCRATCH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NetfilterError("loading the ruleset in a scratch namespace timed out") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise NetfilterError(
            f"scratch namespace: {lines[-1] if lines else f'exit code {done.returncode}'}"
        )
    return Snapshot.from_json(done.stdout)


def _enter_fresh_netns() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetfilterError(f"cannot create a scratch network namespace: {os.strerror(err)}")


def _child() -> int:
    text = sys.stdin.read()
    try:
        _enter_fresh_netns()
        nft(text)
        doc = show_json()
        if doc is None:
            raise NetfilterError(f"table {TABLE} did not load")
    except NetfilterError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(Snapshot.from_nft_json(doc).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(_child())
