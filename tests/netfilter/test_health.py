from __future__ import annotations

from gatewayd.netfilter.health import Health, InterfaceMode, QueueHealth, TableHealth
from gatewayd.netfilter.probe import BackendChoice, Capabilities, Capability
from gatewayd.netfilter.queuestats import QueueStats

CAPS = Capabilities(Capability(False, "no nft_queue"), Capability(True, "xtables ok"))


def health(**kw: object) -> Health:
    base: dict[str, object] = {
        "capabilities": CAPS,
        "backend": BackendChoice("auto", "xtables", "auto: native unavailable"),
        "backend_error": None,
        "table": TableHealth(True, "abc", "abc", ()),
        "xtables_expected": ("iptables-nft ... 0",),
        "xtables_missing": (),
        "xtables_stray": (),
        "interfaces": (InterfaceMode("wl0", "lab", "fail-open"),),
        "forwarding": {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "0"},
        "queues": (
            QueueHealth("verdict", 0, QueueStats(0, 77, 3, 2, 65531, 1, 2, 40)),
            QueueHealth("reset", 1, None),
        ),
        "tools": {"nft": "/usr/sbin/nft", "unshare": None},
        "modules": {"nftables": "ok"},
        "problems": (),
    }
    base.update(kw)
    return Health(**base)  # type: ignore[arg-type]


def test_table_matches_only_when_loaded_same_digest_and_no_differences() -> None:
    assert TableHealth(True, "a", "a", ()).matches
    assert not TableHealth(True, "a", "b", ()).matches
    assert not TableHealth(True, "a", "a", ("chain x is missing",)).matches
    assert not TableHealth(True, "a", "a", None).matches
    assert not TableHealth(False, None, "a", None).matches


def test_json_report_shape() -> None:
    report = health().to_json()
    assert set(report) == {
        "queue_backend", "table", "xtables_rules", "interfaces", "forwarding", "queues",
        "l7", "tools", "python_modules", "problems", "ok",
    }  # fmt: skip
    assert report["ok"] is True
    assert report["l7"] == {"tproxy": None, "divert_routes": None, "bridge_netfilter": None}
    assert report["queue_backend"] == {
        "configured": "auto",
        "in_use": "xtables",
        "reason": "auto: native unavailable",
        "native": {"available": False, "detail": "no nft_queue"},
        "xtables": {"available": True, "detail": "xtables ok"},
    }
    assert report["table"]["matches_render"] is True
    assert report["interfaces"] == [{"name": "wl0", "environment": "lab", "fail_mode": "fail-open"}]
    assert report["queues"] == [
        {"role": "verdict", "queue": 0, "bound": True, "listener_portid": 77, "waiting": 3,
         "dropped_queue_full": 1, "dropped_user": 2, "id_sequence": 40},
        {"role": "reset", "queue": 1, "bound": False, "listener_portid": None, "waiting": None,
         "dropped_queue_full": None, "dropped_user": None, "id_sequence": None},
    ]  # fmt: skip


def test_json_report_without_backend_gives_the_error_as_reason() -> None:
    report = health(backend=None, backend_error="no queue backend", problems=("x",)).to_json()
    assert report["queue_backend"]["in_use"] is None
    assert report["queue_backend"]["reason"] == "no queue backend"
    assert report["ok"] is False
