"""The queue backend probe, against the real kernel; it must leave nothing behind."""

from __future__ import annotations

import pytest
from nsutil import Namespace

from gatewayd.config import parse_config
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.probe import probe_capabilities, probe_queue_backend, select_backend

pytestmark = pytest.mark.netns

QUEUE_RULE = (
    "add table inet native_check\n"
    "add chain inet native_check c { type filter hook prerouting priority 0; }\n"
    "add rule inet native_check c queue num 0 bypass\n"
)


def test_probe_finds_a_backend_and_agrees_with_nft(netns: Namespace) -> None:
    with netns.entered():
        caps = probe_capabilities()
        backend = probe_queue_backend(caps)
    assert backend is not None, (caps.native.detail, caps.xtables.detail)
    check = netns.run("nft", "-c", "-f", "-", input=QUEUE_RULE, check=False)
    assert caps.native.available == (check.returncode == 0), (caps.native, check.stderr)
    assert backend == ("native" if caps.native.available else "xtables")


def test_probe_leaves_nothing_behind(netns: Namespace) -> None:
    with netns.entered():
        probe_capabilities()
    assert netns.nft("list", "ruleset").stdout == ""


@pytest.mark.parametrize("requested", ["auto", "native", "xtables"])
def test_configured_backend_is_honoured(netns: Namespace, requested: str) -> None:
    config = parse_config(f"dataplane: {{queue_backend: {requested}}}\n", "test")
    with netns.entered():
        caps = probe_capabilities()
        if requested == "native" and not caps.native.available:
            with pytest.raises(NetfilterError, match="queue_backend is native but the kernel"):
                select_backend(config)
            return
        choice = select_backend(config)
    expected = probe_queue_backend(caps) if requested == "auto" else requested
    assert (choice.requested, choice.backend) == (requested, expected)
