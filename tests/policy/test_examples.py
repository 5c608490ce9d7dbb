"""Every policy folder under examples/ validates and compiles, quotas included (the demo and
the README use them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatewayd.policy import Guard, compile_plan, parse_documents
from gatewayd.policy.documents import parse_quotas
from gatewayd.policy.sources import read_policy_files

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FOLDERS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_an_example_policy_compiles(folder: Path) -> None:
    files = read_policy_files([folder])
    plan = compile_plan(parse_documents(files), bundle_version=1, guard=Guard.builtin(),
                        quotas=parse_quotas(files))
    assert len(plan) > 0


def test_the_ai_example_reads_bodies_and_carries_a_budget() -> None:
    files = read_policy_files([EXAMPLES / "lab-ai"])
    plan = compile_plan(parse_documents(files), bundle_version=1, guard=Guard.builtin(),
                        quotas=parse_quotas(files))
    assert plan.reads_body and len(plan.quotas) == 1
    assert plan.dlp[("ai", "openai")]["secrets"] == "block"
