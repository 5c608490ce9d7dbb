from __future__ import annotations

import pytest

from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.probe import (
    Capabilities,
    Capability,
    Requested,
    choose_backend,
    probe_queue_backend,
)

YES_NATIVE = Capability(True, "nft accepts queue")
NO_NATIVE = Capability(False, "the kernel refuses nft 'queue' (no nft_queue)")
YES_XT = Capability(True, "iptables-nft and ip6tables-nft accept the NFQUEUE target")
NO_XT = Capability(False, "iptables-nft is not installed")


@pytest.mark.parametrize(
    ("native", "xtables", "expected"),
    [
        (YES_NATIVE, YES_XT, "native"),
        (YES_NATIVE, NO_XT, "native"),
        (NO_NATIVE, YES_XT, "xtables"),
        (NO_NATIVE, NO_XT, None),
    ],
)
def test_probe_prefers_native(native: Capability, xtables: Capability, expected: str) -> None:
    assert probe_queue_backend(Capabilities(native, xtables)) == expected


@pytest.mark.parametrize(
    ("requested", "native", "xtables", "backend"),
    [
        ("auto", YES_NATIVE, YES_XT, "native"),
        ("auto", NO_NATIVE, YES_XT, "xtables"),
        ("native", YES_NATIVE, NO_XT, "native"),
        ("xtables", YES_NATIVE, YES_XT, "xtables"),
        ("xtables", NO_NATIVE, YES_XT, "xtables"),
    ],
)
def test_choice_honours_the_configuration(
    requested: Requested, native: Capability, xtables: Capability, backend: str
) -> None:
    choice = choose_backend(requested, Capabilities(native, xtables))
    assert (choice.requested, choice.backend) == (requested, backend)


def test_auto_fallback_says_why_native_was_not_used() -> None:
    choice = choose_backend("auto", Capabilities(NO_NATIVE, YES_XT))
    assert choice.reason == (
        "auto: native unavailable (the kernel refuses nft 'queue' (no nft_queue));"
        " iptables-nft and ip6tables-nft accept the NFQUEUE target"
    )


def test_forcing_native_on_a_kernel_without_it_is_a_clear_error() -> None:
    with pytest.raises(NetfilterError) as err:
        choose_backend("native", Capabilities(NO_NATIVE, YES_XT))
    assert str(err.value) == (
        "dataplane.queue_backend is native but the kernel refuses nft 'queue' (no nft_queue)"
        " (set it to auto or xtables)"
    )


def test_forcing_xtables_without_the_tools_is_an_error() -> None:
    with pytest.raises(NetfilterError, match="xtables but iptables-nft is not installed"):
        choose_backend("xtables", Capabilities(YES_NATIVE, NO_XT))


def test_no_backend_at_all_names_both_reasons() -> None:
    with pytest.raises(NetfilterError) as err:
        choose_backend("auto", Capabilities(NO_NATIVE, NO_XT))
    assert "native: the kernel refuses" in str(err.value)
    assert "xtables: iptables-nft is not installed" in str(err.value)
