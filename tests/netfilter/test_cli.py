"""``clawgress rules render``: the one rules command that needs no kernel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("backend", ["native", "xtables"])
def test_render_prints_the_golden_ruleset(run_cli: RunCli, backend: str) -> None:
    result = run_cli("rules", "render", "--backend", backend, config=GOLDEN / "fail-modes.yaml")
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / f"fail-modes.{backend}.nft").read_text(encoding="utf-8")


def test_render_uses_the_configured_backend(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        (GOLDEN / "one-v4.yaml").read_text(encoding="utf-8")
        + "dataplane: {queue_backend: xtables}\n",
        encoding="utf-8",
    )
    result = run_cli("rules", "render", config=config)
    assert result.exit_code == 0, result.output
    assert "# iptables-nft -w -t mangle -I PREROUTING 1" in result.stdout
    assert "queue num" not in result.stdout


def test_render_rejects_unknown_backend(run_cli: RunCli) -> None:
    result = run_cli("rules", "render", "--backend", "ebpf")
    assert result.exit_code == 2
    assert "Invalid value for '--backend'" in result.stderr


def test_render_with_invalid_config_is_one_line_error(
    run_cli: RunCli, expect_error: ExpectError, tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("dataplane: {queue: 1, reset_queue: 1}\n", encoding="utf-8")
    expect_error(run_cli("rules", "render", "--backend", "native", config=config), "must differ")
