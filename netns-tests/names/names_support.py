"""What the name tests share: a lab gateway whose policy speaks of host names.

The gateway is the verdict tests' (``verdict_support.Gateway``: lab, engine, agents,
leases), with ``examples/lab-names/names.yaml`` as its whole policy instead of the lab's
address-based one. a1 is ``researcher`` (api.openai.com over TLS), a2 ``builder`` (code
hosting over TLS), a3 has no lease. Clients here resolve names through the lab resolver
from inside the agent namespace, as an agent would, and TLS clients use Python's ssl with
the lab CA.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import ClassVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "verdict"))

from verdict_support import Gateway, gateway_lab  # noqa: E402

POLICIES = HERE.parents[1] / "examples" / "lab-names"
NAMES_POLICY = ("names.yaml",)


class NamesGateway(Gateway):
    """A lab gateway whose policy is ``names.yaml`` alone (tests may publish it with
    documents of their own, from ``policies/`` beside this file)."""

    included: ClassVar[tuple[Path, ...]] = ()
    policy_dirs: ClassVar[tuple[Path, ...]] = (POLICIES, HERE / "policies")
    base_policy: ClassVar[tuple[str, ...]] = NAMES_POLICY


def names_lab(tmp: Path) -> contextlib.AbstractContextManager[Gateway]:
    """A fail-closed lab with the engine running and the names policy active; always taken
    down, and checked to be gone."""
    return gateway_lab(tmp, kind=NamesGateway)
