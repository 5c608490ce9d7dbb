"""The kernel accepts every golden configuration's render (``nft -c``, nothing applied)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nsutil import Namespace

from gatewayd.config import Config, parse_config
from gatewayd.netfilter.probe import probe_native
from gatewayd.netfilter.render import render_ruleset

pytestmark = pytest.mark.netns

GOLDEN = Path(__file__).parents[2] / "tests" / "netfilter" / "golden"
CONFIGS = sorted(p.stem for p in GOLDEN.glob("*.yaml"))
_ERROR_LINE = re.compile(r"^\S+:(\d+):\d+(?:-\d+)?: Error: ", re.MULTILINE)


def golden_config(name: str) -> Config:
    path = GOLDEN / f"{name}.yaml"
    return parse_config(path.read_text(encoding="utf-8"), str(path))


def test_there_are_configs_to_check() -> None:
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("name", CONFIGS)
def test_kernel_accepts_xtables_render(netns: Namespace, tmp_path: Path, name: str) -> None:
    path = tmp_path / "ruleset.nft"
    path.write_text(render_ruleset(golden_config(name), "xtables").as_file(), encoding="utf-8")
    done = netns.nft("-c", "-f", str(path), check=False)
    assert done.returncode == 0, done.stderr
    assert netns.nft("list", "ruleset").stdout == "", "nft -c must not change anything"


@pytest.mark.parametrize("name", CONFIGS)
def test_kernel_accepts_native_render_where_it_has_nft_queue(
    netns: Namespace, tmp_path: Path, name: str
) -> None:
    with netns.entered():
        native = probe_native()
    text = render_ruleset(golden_config(name), "native").as_file()
    path = tmp_path / "ruleset.nft"
    path.write_text(text, encoding="utf-8")
    done = netns.nft("-c", "-f", str(path), check=False)
    if native.available:
        assert done.returncode == 0, done.stderr
        return
    # Without nft_queue, the queue statements are refused, and nothing else is.
    assert done.returncode != 0
    refused = {int(n) for n in _ERROR_LINE.findall(done.stderr)}
    queue_lines = {
        n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith("queue num")
    }
    assert len(queue_lines) == 2
    assert refused == queue_lines, done.stderr
    assert netns.nft("list", "ruleset").stdout == ""
